"""The GPU acceptance check's record as text: the Markdown file beside its JSON and the summary
it prints (:mod:`reproduce.gpu_check`)."""
import re


def device_slug(description):
    """A file name for the device: 'GPU 0 (NVIDIA H200)' -> 'nvidia-h200'."""
    name = re.sub(r'^GPU \d+ \((.*)\)$', r'\1', description)
    return re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-') or 'device'


def markdown(record):
    lines = ['# GPU acceptance check: {}'.format(record['device']), '',
             'Measured by `reproduce/gpu_check.py{}` at commit {} on {}; {}.'.format(
                 ' --smoke' if record['smoke'] else '', record['provenance']['commit'],
                 record['provenance']['date'][:10], record['total_seconds_text']), '',
             '| step | status | seconds | |', '|---|---|---|---|']
    for name, step in record['steps'].items():
        note = step.get('reason') or step.get('summary') or '; '.join(step.get('problems', []))
        lines.append('| {} | {} | {:.0f} | {} |'.format(name, step['status'], step['seconds'],
                                                        note or ''))
    if record.get('cudnn'):
        lines += ['', 'cuDNN: {}'.format(record['cudnn'])]
    bench = record['steps']['benchmark'].get('result')
    if bench:
        lines += ['', '## Benchmark', '', '```', record['steps']['benchmark']['report'].rstrip(),
                  '```']
    lines += variant_lines(record['steps'].get('variants', {}))
    levels = record['steps']['concurrency'].get('levels')
    if levels:
        lines += ['', '## Runs per device', '',
                  '| processes | images/s in total | per process | device memory in use |',
                  '|---|---|---|---|']
        for m in levels:
            used = m['device_used_peak_bytes']
            lines.append('| {} | {:.0f} | {} | {} |'.format(
                m['k'], m['images_per_second'],
                ', '.join('{:.0f}'.format(v) for v in m['per_process']),
                '–' if used is None else '{:.1f} GiB'.format(used / 2.0 ** 30)))
        lines += ['', 'Recommended `--per-device`: {}'.format(
            record['steps']['concurrency'].get('recommended_per_device'))]
    return '\n'.join(lines) + '\n'


def variant_lines(variants):
    """The batch-normalisation comparison as a Markdown section (empty when not measured)."""
    runs = variants.get('runs')
    if not runs:
        return []
    parts = list(runs[0]['parts'])
    lines = ['', '## Batch normalisation: synchronised ms per iteration (host ms)', '',
             '| batch norm | precision | ' + ' | '.join(parts) + ' |',
             '|---|---|' + '---|' * len(parts)]
    for run in runs:
        lines.append('| {} | {} | {} |'.format(run['batch_norm'], run['precision'], ' | '.join(
            '{:.2f} ({:.2f})'.format(run['parts'][p]['ms_per_iteration'],
                                     run['parts'][p]['host_ms_per_iteration']) for p in parts)))
    lines += ['', 'Faster by part: {}.'.format('; '.join(
        '{}: {}'.format(precision, ', '.join('{} {}'.format(p, v) for p, v in by_part.items()))
        for precision, by_part in variants['faster'].items())),
        '', 'Default `{}`: {}.'.format(variants['default'], variants['verdict'])]
    return lines


def summary_lines(record, paths):
    lines = ['GPU acceptance check on {} ({}):'.format(record['device'],
                                                        record['total_seconds_text'])]
    for name, step in record['steps'].items():
        extra = step.get('reason') or step.get('summary') or step.get('problem') or ''
        if step.get('problems'):
            extra = '; '.join(step['problems'])
        lines.append('  {:<12} {:<8} {:>5.0f} s  {}'.format(name, step['status'], step['seconds'],
                                                            extra))
    bench = record['steps']['benchmark'].get('result')
    if bench:
        for part, values in bench['parts'].items():
            text = '{:.1f} s/epoch'.format(values['seconds_per_epoch'])
            if 'operations' in values:
                text += ', {} function applications and {} update operations per iteration'.format(
                    values['operations']['function_applications'],
                    values['operations']['update_operations'])
            lines.append('    {:<14} {}'.format(part, text))
    variants = record['steps'].get('variants', {})
    if variants.get('verdict'):
        lines.append('  batch normalisation: {}'.format(variants['verdict']))
    if record.get('cudnn'):
        lines.append('  cuDNN: {}'.format(record['cudnn']))
    recommended = record['steps']['concurrency'].get('recommended_per_device')
    if recommended:
        lines.append('  recommended runs per device: {}'.format(recommended))
    lines.append('written: {}'.format(', '.join(paths)))
    return lines

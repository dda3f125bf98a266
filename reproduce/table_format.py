"""The tables as text: the terminal layout of the paper's tables (paper, this code, difference
per cell) and the Markdown file, from a table's JSON-ready data (:func:`reproduce.tables.build`).
"""

KINDS = ('best', 'last')


def _column_name(table, rate):
    return 'Clothing1M' if table['noise'] == 'real' else '{:g}%'.format(100 * rate)


def _measured(cell, with_n=True):
    if cell['mean'] is None:
        return '–'
    text = '{:.2f}'.format(cell['mean'])
    if cell['n'] > 1:
        text += '±{:.2f}'.format(cell['std'])
    if with_n:
        text += ' ({})'.format(cell['n'])
    return text


def _number(value, signed=False, decimals=2):
    if value is None:
        return '–'
    return ('{:+.%df}' % decimals if signed else '{:.%df}' % decimals).format(value)


def _paper(cell):
    return _number(cell['paper'], decimals=cell.get('paper_decimals', 2))


def _paper_rate(rate, published):
    """The paper's column of ``rate`` (Table 4 has none)."""
    return None if published['rates'] is None else rate


def header_lines(table):
    prov = table['provenance']
    scale = prov['epochs_scale']
    schedule = 'the paper\'s schedule' if scale == 1 else \
        'SHORTENED schedule (--epochs-scale {:g})'.format(scale)
    lines = ['Table {}: {}'.format(table['table'], table['title']) if table['compared_with_paper']
             else 'Table {} layout on the {} data, {} noise (this package\'s small real data set; '
                  'the paper reports no numbers for it)'.format(
                      table['table'], table['dataset'], table['noise']),
             'test accuracy (%), mean ± std over trials (count); {}: step 1 {} epochs, step 2 {} '
             'epochs; trials {}'.format(schedule, prov['epochs']['step1'], prov['epochs']['step2'],
                                        ','.join(map(str, prov['trials_requested'])))]
    if prov.get('settings_changed'):
        lines.append('SETTINGS CHANGED from the defaults: {}'.format(
            ', '.join(prov['settings_changed'])))
    if prov.get('iterations_per_epoch'):
        lines.append('SUBSAMPLED: each epoch trains on a random {} batches of the noisy set'.format(
            prov['iterations_per_epoch']))
    if True in prov.get('tf32', []):
        lines.append('TF32: matrix products on the GPU in TF32, not float32 (--tf32)')
    if prov.get('pretrained_weights') is False:
        lines.append('NOT PRE-TRAINED: ResNet-50 started from random weights (--weights none)')
    if prov['devices']:
        lines.append('measured on {} · commit {} · runs dated {} to {}'.format(
            '; '.join(prov['devices']),
            ', '.join(c[:12] + ('+dirty' if c.endswith('+dirty') else '') for c in prov['commits']),
            prov['run_dates'][0][:10], prov['run_dates'][-1][:10]))
    return lines


def format_terminal(table):
    """The table as the paper lays it out: rows = methods (best, last), columns = noise rates;
    a computed cell shows the paper's number, this code's and their difference."""
    columns = [_column_name(table, r) for r in table['rates']]
    width = max(14, max(len(c) for c in columns) + 2)
    label_width = max(len(r['label']) for r in table['rows']) + 4
    pad = ' ' * (label_width + 9)

    def line(prefix, values):
        return prefix + ''.join(v.rjust(width) for v in values)

    lines = header_lines(table) + ['']
    lines.append(line(' #  ' + 'method'.ljust(label_width) + ' ' * 16, columns))
    for row in table['rows']:
        number = '{:>2}'.format(row['number']) if row['number'] and table[
            'compared_with_paper'] else '  '
        for k, kind in enumerate(KINDS):
            head = ('{}  {}'.format(number, row['label'].ljust(label_width)) if k == 0
                    else ' ' * (label_width + 4)) + kind.ljust(5)
            cells = row[kind]
            if all(c['paper'] is None for c in cells) and row['status'] != 'computed':
                continue
            if row['status'] != 'computed':
                tag = 'quoted' if row['status'] == 'quoted' else 'paper only'
                lines.append(line(head + tag.ljust(11), [_paper(c) for c in cells]))
                continue
            if table['compared_with_paper']:
                lines.append(line(head + 'paper'.ljust(11), [_paper(c) for c in cells]))
                lines.append(line(pad + 'this code'.ljust(11), [_measured(c) for c in cells]))
                lines.append(line(pad + 'difference', [_number(c['diff'], True) for c in cells]))
            else:
                lines.append(line(head + 'this code'.ljust(11), [_measured(c) for c in cells]))
    if table['compared_with_paper']:
        lines += ['', 'paper: the published number; quoted: a method this code does not compute; '
                  'paper only: not run here (--methods); difference: this code minus paper.']
    labels = table['labels']
    if any(entry['corrected']['n'] for entry in labels):
        lines.append('')
        lines.append(line('step-1 labels right (%): noisy'.ljust(label_width + 20),
                          [_measured(e['noisy'], False) for e in labels]))
        lines.append(line('                after correction'.ljust(label_width + 20),
                          [_measured(e['corrected'], False) for e in labels]))
    return '\n'.join(lines) + '\n'


def format_markdown(table):
    columns = [_column_name(table, r) for r in table['rates']]
    lines = ['\n\n'.join(header_lines(table)), '',
             '| # | method | | ' + ' | '.join(columns) + ' |',
             '|---|---|---|' + '---|' * len(columns)]
    for row in table['rows']:
        for kind in KINDS:
            cells = row[kind]
            if all(c['paper'] is None for c in cells) and row['status'] != 'computed':
                continue
            if row['status'] == 'computed':
                texts = []
                for c in cells:
                    text = '**{}**'.format(_measured(c)) if c['mean'] is not None else '–'
                    if c['paper'] is not None:
                        text += ' (paper {}, {})'.format(_paper(c), _number(c['diff'], True))
                    texts.append(text)
            else:
                mark = 'quoted' if row['status'] == 'quoted' else 'paper; not run'
                texts = ['{} ({})'.format(_paper(c), mark) if c['paper'] is not None
                         else '–' for c in cells]
            number = row['number'] if table['compared_with_paper'] else None
            lines.append('| {} | {} | {} | {} |'.format(number or '', row['label'], kind,
                                                         ' | '.join(texts)))
    if any(entry['corrected']['n'] for entry in table['labels']):
        lines += ['', 'Step-1 training labels that equal the clean label (%): noisy → corrected: '
                  + '; '.join('{} {} → {}'.format(col, _measured(e['noisy'], False),
                                                   _measured(e['corrected'], False))
                              for col, e in zip(columns, table['labels']))]
    lines += ['', 'Bold: measured by this code (mean ± std over trials, count in brackets). '
              'Paper numbers are the published ones (results/paper/), not measured here.']
    return '\n'.join(lines) + '\n'

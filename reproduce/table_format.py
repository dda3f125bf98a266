"""The tables as text: the terminal layout of the paper's tables (paper, this code, difference
per cell) and the Markdown file, from a table's JSON-ready data (:func:`reproduce.tables.build`).

A measured cell reads ``mean±std (n)``: the mean and the sample standard deviation (ddof 1) over
its ``n`` trials; a marker after it (:mod:`reproduce.significance`) says that "ours" is
significantly better (``*``) or worse (``†``) than this method in this column. In the Markdown
the best measured cell of each column and kind is bold.
"""
from reproduce import significance

KINDS = ('best', 'last')


def column_name(table, rate):
    """The heading of a table's column: the noise rate ('50%'), or 'Clothing1M'."""
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


def marker(cell):
    """The significance marker of a measured cell ('' when none)."""
    return (cell.get('versus_ours') or {}).get('marker', '')


def _marked(cell, with_n=True):
    mark = marker(cell)
    return _measured(cell, with_n) + (' ' + mark if mark else '')


def best_means(row_cells):
    """Per column, the highest mean among measured cells (None where none is measured);
    ``row_cells`` holds one list of cells per row."""
    best = []
    for column in zip(*row_cells):
        means = [c['mean'] for c in column if c['mean'] is not None]
        best.append(max(means) if means else None)
    return best


def best_of_columns(table):
    """``{kind: [highest measured mean per column]}`` over the computed rows."""
    rows = [r for r in table['rows'] if r['status'] == 'computed']
    return {kind: best_means([r[kind] for r in rows]) if rows else [None] * len(table['rates'])
            for kind in KINDS}


def schedule_text(scale):
    """"the paper's schedule" or 'schedules x0.2' (``--epochs-scale``), for titles."""
    return "the paper's schedule" if scale == 1 else 'schedules x{:g}'.format(scale)


def trials_text(trials):
    """'3 trials (seeds 0, 1, 2)'."""
    trials = list(trials)
    return '{} trial{} (seed{} {})'.format(len(trials), 's' * (len(trials) != 1),
                                          's' * (len(trials) != 1),
                                          ', '.join(map(str, trials)))


def comparisons(table):
    """``[(row, kind, [comparison or None per column])]`` of the rows compared with "ours"."""
    found = []
    for row in table['rows']:
        for kind in KINDS:
            versus = [c.get('versus_ours') for c in row[kind]]
            if any(versus):
                found.append((row, kind, versus))
    return found


def comparison_text(versus):
    """'+1.23, p 0.03125 *' (mean difference ours - other in points, one-sided p that ours is
    better, marker), or '+1.23 (2 trials: too few trials)'."""
    if not versus:
        return '–'
    difference = '{:+.2f}'.format(versus['mean_difference'])
    if versus['p_ours_better'] is None:
        return '{} ({} trial{}: {})'.format(difference, versus['n'], 's' * (versus['n'] != 1),
                                          versus['note'])
    text = '{}, p {}'.format(difference, significance.format_p(versus['p_ours_better']))
    if versus['marker'] == significance.WORSE:
        text += ' (worse: p {})'.format(significance.format_p(versus['p_ours_worse']))
    return text + (' ' + versus['marker'] if versus['marker'] else '')


def caption_lines(table):
    """What the numbers are and what the markers mean."""
    lines = ['Cells: mean ± {}, the number of trials in brackets.'.format(
        table.get('spread', 'standard deviation over trials'))]
    found = comparisons(table)
    if found:
        lines.append(table.get('significance') or significance.rule())
        if all(v is None or v['p_ours_better'] is None for _, _, vs in found for v in vs):
            lines.append('No cell can be marked: every comparison has {} (fewer than {} shared '
                         'trials).'.format(significance.TOO_FEW, significance.MIN_TRIALS))
    return lines


def comparison_markdown(table, columns):
    """The paired comparisons with "ours" as a Markdown table (empty without any)."""
    found = comparisons(table)
    if not found:
        return []
    lines = ['Paired comparison with "ours" over the shared trials: mean difference (ours − '
             'method, points) and the exact one-sided sign-flip p-value that ours is better:', '',
             '| method | | ' + ' | '.join(columns) + ' |', '|---|---|' + '---|' * len(columns)]
    for row, kind, versus in found:
        lines.append('| {} | {} | {} |'.format(row['label'], kind, ' | '.join(
            comparison_text(v) for v in versus)))
    return lines


def _number(value, signed=False, decimals=2):
    if value is None:
        return '–'
    return ('{:+.%df}' % decimals if signed else '{:.%df}' % decimals).format(value)


def _paper(cell):
    return _number(cell['paper'], decimals=cell.get('paper_decimals', 2))


def header_lines(table):
    prov = table['provenance']
    scale = prov['epochs_scale']
    schedule = 'the paper\'s schedule' if scale == 1 else \
        'SHORTENED schedule (--epochs-scale {:g})'.format(scale)
    lines = ['Table {}: {}'.format(table['table'], table['title']) if table['compared_with_paper']
             else 'Table {} layout on the {} data, {} noise (this package\'s small real data set; '
                  'the paper reports no numbers for it)'.format(
                      table['table'], table['dataset'], table['noise']),
             'test accuracy (%), mean ± sample std over trials (count); {}: step 1 {} epochs, '
             'step 2 {} epochs; {}'.format(schedule, prov['epochs']['step1'],
                                           prov['epochs']['step2'],
                                           trials_text(prov['trials_requested']))]
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
    columns = [column_name(table, r) for r in table['rates']]
    texts = [comparison_text(v) for _, _, versus in comparisons(table) for v in versus] + [
        _marked(c) for r in table['rows'] for k in KINDS for c in r[k]]
    width = max(14, max(len(c) for c in columns + texts) + 2)
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
                lines.append(line(pad + 'this code'.ljust(11), [_marked(c) for c in cells]))
                lines.append(line(pad + 'difference', [_number(c['diff'], True) for c in cells]))
            else:
                lines.append(line(head + 'this code'.ljust(11), [_marked(c) for c in cells]))
    lines.append('')
    if table['compared_with_paper']:
        lines.append('paper: the published number; quoted: a method this code does not compute; '
                     'paper only: not run here (--methods); difference: this code minus paper.')
    lines += caption_lines(table)
    found = comparisons(table)
    if found:
        lines += ['', 'ours − method (points), one-sided p that ours is better:']
        for row, kind, versus in found:
            lines.append(line(('  ' + row['label']).ljust(label_width + 4) + kind.ljust(16),
                              [comparison_text(v) for v in versus]))
    labels = table['labels']
    if any(entry['corrected']['n'] for entry in labels):
        lines.append('')
        lines.append(line('step-1 labels right (%): noisy'.ljust(label_width + 20),
                          [_measured(e['noisy'], False) for e in labels]))
        lines.append(line('                after correction'.ljust(label_width + 20),
                          [_measured(e['corrected'], False) for e in labels]))
    return '\n'.join(lines) + '\n'


def format_markdown(table):
    """The table as Markdown: one row per method and kind, the best measured cell of each column
    and kind in bold, the paper's number beside a measured one."""
    columns = [column_name(table, r) for r in table['rates']]
    best = best_of_columns(table)
    lines = ['\n\n'.join(header_lines(table)), '',
             '| method | | ' + ' | '.join(columns) + ' |',
             '|---|---|' + '---|' * len(columns)]
    for row in table['rows']:
        for kind in KINDS:
            cells = row[kind]
            if all(c['paper'] is None for c in cells) and row['status'] != 'computed':
                continue
            if row['status'] == 'computed':
                texts = []
                for c, top in zip(cells, best[kind]):
                    if c['mean'] is None:
                        text = '–'
                    else:
                        text = _measured(c)
                        text = '**{}**'.format(text) if c['mean'] == top else text
                        text += (' ' + marker(c)) if marker(c) else ''
                    if c['paper'] is not None:
                        text += ' (paper {}, {})'.format(_paper(c), _number(c['diff'], True))
                    texts.append(text)
            else:
                mark = 'quoted' if row['status'] == 'quoted' else 'paper; not run'
                texts = ['{} ({})'.format(_paper(c), mark) if c['paper'] is not None
                         else '–' for c in cells]
            lines.append('| {} | {} | {} |'.format(row['label'], kind, ' | '.join(texts)))
    comparison = comparison_markdown(table, columns)
    if comparison:
        lines += [''] + comparison
    if any(entry['corrected']['n'] for entry in table['labels']):
        lines += ['', 'Step-1 training labels that equal the clean label (%): noisy → corrected: '
                  + '; '.join('{} {} → {}'.format(col, _measured(e['noisy'], False),
                                                   _measured(e['corrected'], False))
                              for col, e in zip(columns, table['labels']))]
    lines += ['', ' '.join(caption_lines(table)) + ' Bold: the best measured cell of its column '
              'and kind. Paper numbers are the published ones (results/paper/), not measured '
              'here.']
    return '\n'.join(lines) + '\n'

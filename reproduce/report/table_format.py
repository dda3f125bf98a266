"""The tables as text: the terminal layout of the paper's tables (paper, this code, difference
per cell) and the Markdown file, from a table's data (:func:`reproduce.batch.tables.build`).

A measured cell reads ``mean±std (n)`` (sample std, ddof 1, over n trials), then its significance
marker (``*``: ours better, ``†``: ours worse); in the Markdown the best cell of a column is bold.
"""
from reproduce.report import significance

KINDS = ('best', 'last')


def column_name(table, rate):
    """The heading of a table's column: the noise rate ('50%'), or 'Clothing1M'."""
    return 'Clothing1M' if table['noise'] == 'real' else '{:g}%'.format(100 * rate)


def _measured(cell, with_n=True, trials=0):
    """'mean±std (n)', or '(n of trials)' over fewer than the ``trials`` requested."""
    if cell['mean'] is None:
        return '–'
    text = '{:.2f}'.format(cell['mean'])
    if cell['n'] > 1:
        text += '±{:.2f}'.format(cell['std'])
    if with_n:
        text += ' ({}{})'.format(cell['n'], ' of {}'.format(trials) * (cell['n'] < trials))
    return text


def requested(table):
    """How many trials the table asked for (0 where it does not say)."""
    return len((table.get('provenance') or {}).get('trials_requested') or [])


def marker(cell):
    """The significance marker of a measured cell ('' when none)."""
    return (cell.get('versus_ours') or {}).get('marker', '')


def _marked(cell, trials=0):
    mark = marker(cell)
    return _measured(cell, True, trials) + (' ' + mark if mark else '')


def best_of_columns(table):
    """``{kind: [highest measured mean per column]}`` over the computed rows (None where none)."""
    rows = [r for r in table['rows'] if r['status'] == 'computed']
    return {kind: [max((c['mean'] for c in column if c['mean'] is not None), default=None)
                   for column in zip(*[r[kind] for r in rows])] if rows
            else [None] * len(table['rates']) for kind in KINDS}


#: How the titles name a data set.
DATA_SET_NAMES = {'cifar10': 'CIFAR-10', 'clothing1m': 'Clothing1M',
                  'digits': "scikit-learn's digits"}
#: The data sets whose default schedules are the paper's (at --epochs-scale 1, no --set);
#: every other data set's are this package's own (reproduce/run/hparams.py).
PAPER_SCHEDULES = ('cifar10', 'clothing1m')
#: Where PENCIL's default schedule on a data set comes from, when it is not the paper's.
PENCIL_SOURCES = {'cifar10': "PENCIL's published schedule",
                  'clothing1m': "PENCIL's Clothing1M schedule as recalled, not checked against "
                                "its paper"}
#: The parts that train on step 2's schedule, and how the titles name them.
STEP2_PARTS = (('tanaka', 'step 2'), ('ours', 'step 2'), ('cross_entropy', 'cross entropy'),
               ('forward_t', 'Forward T'))
#: Every part, in the order of the tables (step 1 first).
PART_ORDER = ('step1', 'cross_entropy', 'forward_t', 'tanaka', 'pencil', 'ours')
#: What each computed method trains first (besides itself).
_NEEDS = {'tanaka': ('step1',), 'ours': ('step1',)}


def data_set_name(dataset):
    """'CIFAR-10', 'Clothing1M', "scikit-learn's digits" (else the name itself)."""
    return DATA_SET_NAMES.get(dataset, dataset)


def _join(words):
    words = list(words)
    return words[0] if len(words) == 1 else '{} and {}'.format(', '.join(words[:-1]), words[-1])


def schedule_origin(dataset, scale, changed=False, subsampled=False, plain=False):
    """Whose schedule ran: "the paper's schedule" (CIFAR-10 or Clothing1M at --epochs-scale 1,
    nothing changed), "this package's digits schedule", or 'SHORTENED schedule (--epochs-scale
    0.2 of ...)'; with changed settings or subsampled epochs it says so. ``plain``: in words a
    paper can keep ("... schedule at 0.2 of its epochs, settings changed")."""
    own = "the paper's" if dataset in PAPER_SCHEDULES else "this package's {}".format(dataset)
    text = ('{1} schedule' if scale == 1 else '{1} schedule at {0:g} of its epochs' if plain else
            'SHORTENED schedule (--epochs-scale {0:g} of {1} schedule)').format(scale, own)
    return text + (', settings changed' if plain else ', CHANGED by --set') * bool(changed) + (
        ', each epoch a random subset of the batches' if plain else ', epochs SUBSAMPLED'
    ) * bool(subsampled)


def schedule_text(dataset, scale, settings, parts, changed=False, subsampled=False,
                  epochs=None, plain=False):
    """The schedule of the parts that ran, for titles: 'this package's digits schedule: step 1
    40 epochs (labels from epoch 15, window 5); step 2, cross entropy and Forward T 30 epochs;
    PENCIL 10 + 20 + 20 epochs'. ``settings``: the resolved ``{'step1', 'step2', 'pencil'}``
    settings (or None: epoch counts only, from ``epochs``); ``parts``: the parts that ran (only
    those are named); ``epochs``: ``{part: epochs}`` that ran, which win over ``settings``."""
    settings = settings or {}
    epochs = dict(epochs or {})

    def count(part, setting):
        if part in epochs:
            return epochs[part]
        return (settings.get(setting) or {}).get('epochs')

    pieces = []
    if 'step1' in parts:
        step1 = settings.get('step1') or {}
        text = 'step 1 {} epochs'.format(count('step1', 'step1'))
        if step1.get('begin') is not None and (
                'step1' not in epochs or epochs['step1'] == step1.get('epochs')):
            text += ' (labels from epoch {}, {})'.format(
                step1['begin'], 'mean of all epochs' if step1.get('window') is None
                else 'window {}'.format(step1['window']))
        pieces.append(text)
    step2 = [(part, name) for part, name in STEP2_PARTS if part in parts]
    if step2:
        names = list(dict.fromkeys(name for _, name in step2))
        counts = sorted({count(part, 'step2') for part, _ in step2}, key=str)
        if len(counts) == 1:
            text = '{} {} epochs'.format(_join(names), counts[0])
        else:
            text = '; '.join('{} {} epochs'.format(name, count(part, 'step2'))
                             for part, name in step2)
        if 'step 2' not in names:
            text += " (step 2's schedule)"
        pieces.append(text)
    if 'pencil' in parts:
        total = count('pencil', 'pencil')
        stages = (settings.get('pencil') or {}).get('stages')
        if stages and sum(stages) == total:
            text = 'PENCIL {} epochs (stages {})'.format(total, ' + '.join(map(str, stages)))
        else:
            text = 'PENCIL {} epochs'.format(total)
        if scale == 1 and not changed and dataset in PENCIL_SOURCES:
            text += ' ({})'.format(PENCIL_SOURCES[dataset])
        pieces.append(text)
    origin = schedule_origin(dataset, scale, changed, subsampled, plain)
    return origin + (': ' + '; '.join(pieces) if pieces else '')


def table_dataset(table):
    """The table's data set (a table of the paper's layout without one: the paper's)."""
    if table.get('dataset'):
        return table['dataset']
    from reproduce.report import paper
    return paper.load_paper_table(table['table'])['dataset']


def parts_run(table):
    """The parts that ran for the table, in :data:`PART_ORDER`: those of its runs, else those
    its computed rows need."""
    found = {run.get('part') for run in table.get('runs') or []}
    if not found:
        transition = (table.get('settings') or {}).get('transition') or (
            table.get('provenance') or {}).get('transition')
        for row in table.get('rows', []):
            if row.get('status') == 'computed':
                found.add(row['method'])
                found.update(_NEEDS.get(row['method'], ()))
                if row['method'] == 'forward_t' and transition == 'estimate':
                    found.add('cross_entropy')
    return [part for part in PART_ORDER if part in found] + sorted(
        p for p in found if p not in PART_ORDER and p)


def resolved_settings(table):
    """The table's resolved step-1, step-2 and PENCIL settings, from its recorded settings (the
    data set's defaults, --set, --epochs-scale), or None where they cannot be resolved."""
    settings = table.get('settings') or {}
    prov = table.get('provenance') or {}
    try:
        from reproduce.run.config import SETTING_PARTS, RunConfig
        config = RunConfig(
            dataset=table_dataset(table), noise=table.get('noise'),
            rate=(table.get('rates') or [None])[0] if table.get('noise') != 'real' else None,
            epochs_scale=prov.get('epochs_scale', settings.get('epochs_scale', 1.0)),
            overrides={p: dict(settings.get(p) or {}) for p in SETTING_PARTS},
            weights='none', transition='estimate' if table.get('noise') == 'real' else None)
        return config.settings()
    except (ValueError, KeyError, TypeError, ImportError):
        return None


def run_epochs(table):
    """``{part: epochs}`` of the table's runs (a part whose runs disagree is left out)."""
    found = {}
    for run in table.get('runs') or []:
        found.setdefault(run.get('part'), set()).add(run.get('epochs'))
    return {part: counts.pop() for part, counts in found.items()
            if len(counts) == 1 and None not in counts}


def table_schedule_text(table, plain=False):
    """:func:`schedule_text` of a table: the parts that ran, with the epochs they ran."""
    prov = table.get('provenance') or {}
    ran = prov.get('epochs') or {}
    epochs = {part: ran.get('step2') for part, _ in STEP2_PARTS}
    epochs.update(step1=ran.get('step1'), pencil=ran.get('pencil'))
    epochs = {k: v for k, v in epochs.items() if v is not None}
    epochs.update(run_epochs(table))
    return schedule_text(table_dataset(table), prov.get('epochs_scale', 1),
                         resolved_settings(table), parts_run(table),
                         changed=bool(prov.get('settings_changed')),
                         subsampled=bool(prov.get('iterations_per_epoch')), epochs=epochs,
                         plain=plain)


def table_trials_text(table):
    """'5 trials (seeds 0, 1, 2, 3, 4)' of the trials requested, and which finished where
    that is not all of them."""
    prov = table.get('provenance') or {}
    requested = list(prov.get('trials_requested') or [])
    text = trials_text(requested)
    finished = {run['trial'] for run in table.get('runs') or [] if 'trial' in run}
    if not table.get('runs'):      # no run records: the trials of the measured cells
        finished = {t for row in table.get('rows', []) for k in KINDS
                    for cell in row.get(k, []) for t in cell.get('trials') or []}
        if not finished:
            return text
    finished = sorted(finished)
    if finished != sorted(requested):
        text += '; finished: {}'.format(', '.join(map(str, finished)) or 'none')
    return text


def table_subject(table):
    """What the table measures: 'Table 2 layout: test accuracy (%) for symmetric noise on
    scikit-learn's digits (the paper reports no numbers for this data set)', or for the paper's
    data set 'Table 2: test accuracy (%) for symmetric noise on CIFAR-10, beside the paper's
    numbers (its average of 5 trials)'."""
    dataset = data_set_name(table_dataset(table))
    what = 'test accuracy (%) for {} noise on {}'.format(table['noise'], dataset) \
        if table.get('noise') != 'real' else 'test accuracy (%) on {}'.format(dataset)
    if table.get('compared_with_paper'):
        from reproduce.report import paper
        published = paper.load_paper_table(table['table'])
        return 'Table {}: {}, beside the paper\'s numbers{}'.format(
            table['table'], what, ' (its average of {} trials)'.format(published['trials'])
            if published.get('trials') else '')
    return 'Table {} layout: {} (the paper reports no numbers for this data set)'.format(
        table['table'], what)


def title_text(table):
    """The table's title (its JSON ``title``): what it measures, on what, over which trials, on
    which schedule of the parts that ran."""
    return '{}; {}; {}'.format(table_subject(table), table_trials_text(table),
                               table_schedule_text(table))


def trials_text(trials):
    """'3 trials (seeds 0, 1, 2)'."""
    trials = list(trials)
    plural = 's' * (len(trials) != 1)
    return '{} trial{} (seed{} {})'.format(len(trials), plural, plural, ', '.join(map(str, trials)))


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
            notes = {v['note'] for _, _, vs in found for v in vs if v is not None}
            lines.append('No cell can be marked: every comparison has {} (fewer than {} shared '
                         'trials).'.format(significance.TOO_FEW, significance.MIN_TRIALS)
                         if notes <= {significance.TOO_FEW} else
                         'No cell can be marked: {}.'.format('; '.join(sorted(notes))))
    return lines


def _number(value, signed=False, decimals=2):
    if value is None:
        return '–'
    return ('{:+.%df}' % decimals if signed else '{:.%df}' % decimals).format(value)


def _paper(cell):
    return _number(cell['paper'], decimals=cell.get('paper_decimals', 2))


def header_lines(table):
    """The lines above a table: what it measures, its trials and schedule (the parts that ran),
    what a cell holds, and anything changed from the defaults."""
    prov = table['provenance']
    lines = [table_subject(table),
             table_trials_text(table) + '; ' + table_schedule_text(table),
             'cells: test accuracy (%), mean ± sample std over trials (count)']
    if table.get('dataset') == 'clothing1m' and any(
            r['method'] == 'pencil' and r['status'] == 'computed' for r in table['rows']):
        from reproduce.run.hparams import PENCIL_CLOTHING1M_UNVERIFIED
        lines.append(PENCIL_CLOTHING1M_UNVERIFIED)
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
    n = requested(table)
    texts = [comparison_text(v) for _, _, versus in comparisons(table) for v in versus] + [
        _marked(c, n) for r in table['rows'] for k in KINDS for c in r[k]]
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
                lines.append(line(pad + 'this code'.ljust(11), [_marked(c, n) for c in cells]))
                lines.append(line(pad + 'difference', [_number(c['diff'], True) for c in cells]))
            else:
                lines.append(line(head + 'this code'.ljust(11), [_marked(c, n) for c in cells]))
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
        lines += ['', line('step-1 labels right (%): noisy'.ljust(label_width + 20),
                           [_measured(e['noisy'], False) for e in labels]),
                  line('                after correction'.ljust(label_width + 20),
                       [_measured(e['corrected'], False) for e in labels])]
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
                    text = _measured(c, True, requested(table))
                    if c['mean'] is not None:
                        text = ('**{}**' if c['mean'] == top else '{}').format(text) + (
                            ' ' + marker(c) if marker(c) else '')
                    if c['paper'] is not None:
                        text += ' (paper {}, {})'.format(_paper(c), _number(c['diff'], True))
                    texts.append(text)
            else:
                mark = 'quoted' if row['status'] == 'quoted' else 'paper; not run'
                texts = ['{} ({})'.format(_paper(c), mark) if c['paper'] is not None
                         else '–' for c in cells]
            lines.append('| {} | {} | {} |'.format(row['label'], kind, ' | '.join(texts)))
    found = comparisons(table)
    if found:       # the paired comparisons with "ours"
        lines += ['', 'Paired comparison with "ours" over the shared trials: mean difference (ours '
                  '− method, points) and the exact one-sided sign-flip p-value that ours is '
                  'better:', '', '| method | | ' + ' | '.join(columns) + ' |',
                  '|---|---|' + '---|' * len(columns)]
        lines += ['| {} | {} | {} |'.format(row['label'], kind, ' | '.join(
            comparison_text(v) for v in versus)) for row, kind, versus in found]
    if any(entry['corrected']['n'] for entry in table['labels']):
        lines += ['', 'Step-1 training labels that equal the clean label (%): noisy → corrected: '
                  + '; '.join('{} {} → {}'.format(col, _measured(e['noisy'], False),
                                                   _measured(e['corrected'], False))
                              for col, e in zip(columns, table['labels']))]
    has_paper = any(c['paper'] is not None for r in table['rows'] for k in KINDS for c in r[k])
    lines += ['', ' '.join(caption_lines(table)) + ' Bold: the best measured cell of its column '
              'and kind.' + (' Paper numbers are the published ones (results/paper/), not '
                             'measured here.' if has_paper else '')]
    return '\n'.join(lines) + '\n'

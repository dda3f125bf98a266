"""Write report.md, the one-page reading of a results folder, or README's generated blocks.

    python -m reproduce.report results/digits-x0.2     # (the table scripts write it themselves)
    python -m reproduce.report results/recorded --rewrite   # each table's files from its JSON
    python -m reproduce.report --readme [--check]      # README's blocks from results/recorded

Made from the folder's files only (``*.json`` tables, ``*.png`` figures), with relative links, so
it can be written again at any time and the folder moved or published as is.
"""
import datetime
import json
import os
import re
import sys


from reproduce import REPOSITORY
from reproduce.report import table_files
from reproduce.run import options, provenance, rundir
import atomic_files as atomic

NAME = 'report.md'
#: What the figures of figure3.py show.
FIGURES = {
    'figure3': 'Figure 3: test accuracy per epoch of the second step (mean over trials, band '
               'from the lowest to the highest trial)',
    'step1_label_accuracy': 'Step 1: share of the training labels equal to the clean label, per '
                            'epoch',
    'step1_confusion': 'Step 1: corrected against clean labels (row-normalised, summed over '
                       'trials)',
}
#: The suffix of a table's accuracy-against-noise figure (``table2_noise.png``).
NOISE_FIGURE = table_files.NOISE_FIGURE


#: The damaged files :func:`tables_in` has said it skips (once each).
_SKIPPED = set()


def tables_in(directory):
    """``[(stem, table)]`` of the table JSON files of ``directory`` (sorted by name)."""
    found = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith('.json'):
            continue
        path = os.path.join(directory, name)
        reason = rundir.problem(path)
        if reason and path not in _SKIPPED:
            _SKIPPED.add(path)
            sys.stderr.write('skipped {}: damaged ({})\n'.format(path, reason))
        table = rundir.read_json(path)
        if isinstance(table, dict) and isinstance(table.get('rows'), list) and 'table' in table:
            found.append((name[:-len('.json')], table))
    return found


def _settings_lines(table):
    settings = table.get('settings') or {}
    lines = ['| setting | value |', '|---|---|']
    lines += ['| {} | {} |'.format(k, json.dumps(v) if not isinstance(v, str) else v)
              for k, v in sorted(settings.items())]
    return lines


def _provenance_lines(table):
    prov = table.get('provenance') or {}
    lines = []

    def add(name, value):
        if value not in (None, [], {}, ''):
            lines.append('- {}: {}'.format(name, value))

    add('runs measured at commit', ', '.join(prov.get('commits', [])))
    add('devices', '; '.join(prov.get('devices', [])))
    add('run dates', ' to '.join(d[:19] for d in prov.get('run_dates', [])))
    add('trials requested (seeds)', ', '.join(map(str, prov.get('trials_requested', []))))
    add('seeds', prov.get('seeds'))
    add('epochs', ', '.join('{} {}'.format(k, v) for k, v in (prov.get('epochs') or {}).items()))
    add('schedule scale (--epochs-scale)', prov.get('epochs_scale'))
    add('settings changed (--set)', ', '.join(prov.get('settings_changed') or []))
    add('training hours, all runs', None if prov.get('train_hours') is None else
        '{:.2f}'.format(prov['train_hours']))
    for version in prov.get('versions', []):
        add('library versions', ', '.join('{} {}'.format(k, v)
                                          for k, v in sorted(json.loads(version).items())))
    for platform in prov.get('platforms', []):
        add('numerics platform', '; '.join('{} {}'.format(k, v)
                                           for k, v in platform_of(platform or {}).items()))
    add('table gathered at commit', prov.get('table_commit'))
    add('table written', prov.get('table_written'))
    if table.get('platform_spread'):
        add('spread across CPU numerics settings', 'recorded ({} settings)'.format(
            len(table['platform_spread'].get('settings', []))))
    return lines


# ----------------------------------------------------------------------------------------------
# What each table is, and the summary


#: The roles of a folder's tables, in the order of the report.
MAIN, SIDE, REGRESSION = 'main', 'side', 'regression'
SECTION_TITLES = {SIDE: 'Side experiments', REGRESSION: 'Regression reference'}


def role(table):
    """'regression' (a recorded regression reference: its spread across CPU numerics settings),
    'main' (the table as its script makes it by default, "ours" computed; at any schedule
    scale) or 'side' (another variant: Forward T's matrix, the Lmix weight, an interpretation
    choice, changed settings, or without "ours")."""
    from reproduce.report import table_export
    if table.get('platform_spread'):
        return REGRESSION
    ours = any(r['method'] == 'ours' and r['status'] == 'computed' for r in table['rows'])
    variant = [w for w in table_export.table_variant(table)
               if not re.match(r'^[xi][0-9.]+$', w)]
    return MAIN if ours and not variant else SIDE


def ordered(tables):
    """``tables`` (``[(stem, table)]``) in the report's order: the main tables (by table
    number), the side experiments, the regression references."""
    rank = {MAIN: 0, SIDE: 1, REGRESSION: 2}
    return sorted(tables, key=lambda item: (rank[role(item[1])], item[1]['table'], item[0]))


def _methods_text(table):
    return ', '.join(short_label(r['label']) for r in table['rows'] if r['status'] == 'computed')


def short_label(label):
    """A row label without its reference number ('Forward T (true T)')."""
    return re.sub(r'\s*\[\d+\]', '', label)


def _columns_text(table):
    if table['noise'] == 'real':
        return 'real noise'
    return '{} noise at {}'.format(table['noise'], ', '.join(
        '{:g}%'.format(round(100 * r, 4)) for r in table['rates']))


def platform_of(prov_platform):
    """A numerics platform (:func:`reproduce.run.provenance.numerics_key`) as short texts:
    ``{'BLAS': ..., 'numpy SIMD': ..., 'libraries': ...}`` (or ``{'GPU': ...}``)."""
    found = {}
    if prov_platform.get('gpu'):
        found['GPU'] = ', '.join('{} {}'.format(k, v)
                                 for k, v in sorted(prov_platform['gpu'].items()))
    blas = prov_platform.get('blas') or []
    if blas:
        found['BLAS'] = '; '.join(
            '{} {} ({} kernel, {} thread{}; {})'.format(
                b.get('internal_api'), b.get('version'), b.get('architecture'),
                b.get('num_threads'), 's' * (b.get('num_threads') != 1), b.get('loaded_by'))
            for b in blas)
    simd = prov_platform.get('numpy_simd')
    if simd:
        dispatched = simd.get('dispatched') or []
        found['numpy SIMD'] = 'baseline {}; {} dispatched targets up to {}'.format(
            ', '.join(simd.get('baseline') or []), len(dispatched),
            dispatched[-1] if dispatched else 'none')
    versions = prov_platform.get('versions') or {}
    found['libraries'] = ', '.join('{} {}'.format(k, v) for k, v in sorted(versions.items())
                                   if v is not None)
    return found


def _platform_table(tables):
    """The summary's platform table: one row per distinct numerics platform, with the tables
    measured on it."""
    rows = []
    for stem, table in tables:
        prov = table.get('provenance') or {}
        for platform in prov.get('platforms') or [None]:
            described = platform_of(platform or {})
            key = (tuple(prov.get('devices') or []), json.dumps(described, sort_keys=True),
                   tuple(prov.get('exact_cpu') or []))
            for row in rows:
                if row['key'] == key:
                    row['tables'].append(stem)
                    break
            else:
                rows.append({'key': key, 'tables': [stem], 'described': described,
                             'devices': prov.get('devices') or [],
                             'exact': prov.get('exact_cpu') or []})
    fields = ['BLAS', 'numpy SIMD', 'GPU', 'libraries']
    fields = [f for f in fields if any(f in r['described'] for r in rows)]
    lines = ['| tables | device | exact CPU mode | ' + ' | '.join(fields) + ' |',
             '|---|---|---|' + '---|' * len(fields)]
    for row in rows:
        lines.append('| {} | {} | {} | {} |'.format(
            ', '.join(row['tables']), '; '.join(row['devices']) or '–',
            ', '.join('yes' if e else 'no' for e in row['exact']) or '–',
            ' | '.join(row['described'].get(f, '–') for f in fields)))
    return lines


def _what_ran_table(tables):
    from reproduce.report import table_format
    lines = ['| table | role | data set | noise | methods | trials | schedule |',
             '|---|---|---|---|---|---|---|']
    for stem, table in tables:
        lines.append('| [{0}](#{1}) | {2} | {3} | {4} | {5} | {6} | {7} |'.format(
            stem, anchor(stem), {MAIN: 'result', SIDE: 'side experiment',
                                 REGRESSION: 'regression reference'}[role(table)],
            table_format.data_set_name(table_format.table_dataset(table)),
            _columns_text(table), _methods_text(table), table_format.table_trials_text(table),
            table_format.table_schedule_text(table)))
    return lines


def anchor(stem):
    """The Markdown heading anchor of a table's section."""
    return re.sub(r'[^a-z0-9_ -]', '', stem.lower()).replace(' ', '-')


def findings_lines(tables):
    """The main tables' findings: per column and kind, ours and its paired difference with each
    other method (exact one-sided sign-flip p, marker), and step 1's labels."""
    from reproduce.report import significance, table_format
    lines = []
    for stem, table in tables:
        if role(table) != MAIN:
            continue
        rows = {r['method']: r for r in table['rows'] if r['status'] == 'computed'}
        others = [m for m in rows if m != 'ours']
        lines += ['**{}** ({}): ours and ours − method in points, with the one-sided p that ours '
                  'is better:'.format(stem, _columns_text(table)), '',
                  '| column | kind | ours | ' + ' | '.join(
                      '− ' + short_label(rows[m]['label']) for m in others) + ' |',
                  '|---|---|---|' + '---|' * len(others)]
        for k, rate in enumerate(table['rates']):
            for kind in table_format.KINDS:
                ours = rows['ours'][kind][k]
                lines.append('| {} | {} | {} | {} |'.format(
                    table_format.column_name(table, rate), kind,
                    table_format._measured(ours), ' | '.join(
                        table_format.comparison_text(rows[m][kind][k].get('versus_ours'))
                        for m in others)))
        labels = [e for e in table.get('labels', []) if e['corrected']['n']]
        if labels:
            lines += ['', "Step 1's training labels equal to the clean label: " + '; '.join(
                '{} noisy {} % → corrected {} %'.format(
                    table_format.column_name(table, e['rate']),
                    table_format._measured(e['noisy'], False),
                    table_format._measured(e['corrected'], False)) for e in labels) + '.']
        lines.append('')
    if lines:
        lines += [significance.rule(), '']
    return lines


def build_report(directory):
    """The text of ``directory``'s report: a summary (what ran, on what, its schedules and
    trials, the platform, the main findings with their paired p-values), then the main tables
    (Tables 2 and 3), the other figures, the side experiments and the regression reference,
    each table with its settings and provenance."""
    title = os.path.basename(os.path.normpath(os.path.abspath(directory)))
    tables = ordered(tables_in(directory))
    images = sorted(n[:-len('.png')] for n in os.listdir(directory) if n.endswith('.png'))
    stamp = '{} at commit {}'.format(
        datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        (provenance.git_commit() or 'unknown')[:19])
    lines = ['# Results in `{}`'.format(title), '',
             'Gathered by `python -m reproduce.report` from the files of this folder ({}). '
             'Every number was measured by this package\'s code, except those marked as the '
             'paper\'s (results/paper/).'.format(stamp), '']
    if not tables and not images:
        return '\n'.join(lines + ['Nothing to report yet: no table or figure in this folder.',
                                  ''])
    if tables:
        lines += ['## Summary', '', '**What ran.**', ''] + _what_ran_table(tables) + [
            '', '**Platform** (the numerics of every run; commits and dates under each '
                'table\'s provenance).', ''] + _platform_table(tables) + ['']
        findings = findings_lines(tables)
        if findings:
            lines += ['**Main findings.**', ''] + findings
    shown = set()
    groups = [(MAIN, [t for t in tables if role(t[1]) == MAIN]),
              (SIDE, [t for t in tables if role(t[1]) == SIDE]),
              (REGRESSION, [t for t in tables if role(t[1]) == REGRESSION])]
    for group, members in groups:
        if group == SIDE:
            lines += _figures_section(directory, images, shown)
        if not members:
            continue
        numbers = sorted({t['table'] for _, t in members})
        heading = SECTION_TITLES.get(group) or ('Table {}'.format(numbers[0]) if len(
            numbers) == 1 else 'Tables {} and {}'.format(
                ', '.join(map(str, numbers[:-1])), numbers[-1]))
        lines += ['## {}'.format(heading), '']
        if group == REGRESSION:
            lines += ['The configuration the test suite checks (`--check`, README "Regression '
                      'checks"): it exists to catch a change in what the code computes, not '
                      'to compare the methods. Its file is shown as written.', '']
        for stem, table in members:
            lines += ['### {}'.format(stem), '',
                      'Files: ' + ', '.join('[{0}]({0})'.format(stem + ext) for ext in (
                          '.json', '.md', '.tex', '.csv')
                          if os.path.exists(os.path.join(directory, stem + ext))), '']
            lines += [demote(table_files.markdown_file(table)), '']
            figure = stem + NOISE_FIGURE
            if figure in images:
                lines += ['![{}: {}]({}.png)'.format(
                    stem, 'test accuracy per method' if len(table['rates']) == 1 else
                    'test accuracy against noise rate', figure),
                          '', 'PDF: [{0}.pdf]({0}.pdf)'.format(figure), '']
                shown.add(figure)
            lines += ['#### Settings and provenance of {}'.format(stem), ''] + \
                _settings_lines(table) + [''] + _provenance_lines(table) + ['']
    return '\n'.join(lines)


def demote(text, levels=2):
    """``text`` with every Markdown heading ``levels`` deeper (a file's '## X' inside a
    report section)."""
    return re.sub(r'^(#+) ', lambda m: '#' * (len(m.group(1)) + levels) + ' ', text,
                  flags=re.MULTILINE)


def _figures_section(directory, images, shown):
    others = [name for name in images if name not in shown and not name.endswith(NOISE_FIGURE)]
    lines = []
    if others:
        lines += ['## Figures', '']
        for name in others:
            lines += ['### {}'.format(FIGURES.get(name, name)), '',
                      '![{0}]({0}.png)'.format(name), '']
            if os.path.exists(os.path.join(directory, name + '.pdf')):
                lines += ['PDF: [{0}.pdf]({0}.pdf)'.format(name), '']
            shown.add(name)
    return lines


# ----------------------------------------------------------------------------------------------
# README's measured numbers, generated from the recorded files

#: The folder README's results come from, and README itself.
RECORDED = os.path.join(REPOSITORY, 'results', 'recorded')
README = os.path.join(REPOSITORY, 'README.md')
#: README's generated blocks: the text between ``<!-- results:begin NAME -->`` and
#: ``<!-- results:end NAME -->`` (a whole section, or a phrase inside a sentence).
BLOCK = re.compile(r'(<!-- results:begin (?P<name>[a-z0-9-]+) -->)(?P<body>.*?)'
                   r'(<!-- results:end (?P=name) -->)', re.DOTALL)
WORDS = {1: 'one', 2: 'two', 3: 'three', 4: 'four', 5: 'five', 6: 'six', 7: 'seven',
         8: 'eight', 9: 'nine', 10: 'ten'}


def _word(n):
    return WORDS.get(n, str(n))


def _rate(rate):
    return '{:g} %'.format(round(100 * rate, 4))


def _range(values, digits=1, unit=''):
    """'0.7-1.3' (or one number when they round alike)."""
    low, high = ('{:.{d}f}'.format(v, d=digits) for v in (min(values), max(values)))
    return (low if low == high else '{}-{}'.format(low, high)) + unit


def _cell(cell, spaced=True):
    """'90.33 ± 0.78' (no ± for one trial or a spread of exactly 0)."""
    if cell['mean'] is None:
        return '–'
    text = '{:.2f}'.format(cell['mean'])
    if cell['n'] > 1 and cell['std']:
        text += (' ± {:.2f}' if spaced else '±{:.2f}').format(cell['std'])
    return text


def _row(table, method):
    return next((r for r in table['rows'] if r['method'] == method and
                 r['status'] == 'computed'), None)


def _paired(a, b):
    """Per shared trial, a − b (points)."""
    mine = dict(zip(a.get('trials') or [], a.get('values') or []))
    theirs = dict(zip(b.get('trials') or [], b.get('values') or []))
    return [mine[t] - theirs[t] for t in sorted(set(mine) & set(theirs))]


def _minutes(table):
    """Wall-clock minutes from the first run's start (its finish less its training time) to
    the last run's finish, and the training minutes of all runs."""
    runs = table.get('runs') or []
    if not runs:
        return None, None
    ends = [datetime.datetime.fromisoformat(r['provenance']['date']).timestamp() for r in runs]
    starts = [end - r['train_seconds'] for end, r in zip(ends, runs)]
    return (max(ends) - min(starts)) / 60, sum(r['train_seconds'] for r in runs) / 60


def _blas_text(table):
    """"OpenBLAS's Cooperlake kernel, 2 threads per run" from the runs' numerics platform."""
    kernels = set()
    for platform in (table.get('provenance') or {}).get('platforms') or []:
        for blas in (platform or {}).get('blas') or []:
            if blas.get('loaded_by') == 'numpy.libs':
                kernels.add((blas.get('architecture'), blas.get('num_threads')))
    return '; '.join("OpenBLAS's {} kernel (numpy's) with {} thread{} per run".format(
        kernel, threads, 's' * (threads != 1)) for kernel, threads in sorted(kernels, key=str))


def _commits(tables, key):
    found = []
    for table in tables:
        prov = table.get('provenance') or {}
        values = prov.get('commits') if key == 'commits' else [prov.get('table_commit')]
        found += [str(c)[:7] for c in values or [] if c and str(c)[:7] not in found]
    return ', '.join(found)


def _digits_sizes():
    """(training, validation, test) images of the digits data as this package splits them."""
    from datasets.digits import load_digits
    data = load_digits(split_seed=0)
    return len(data.train_y), len(data.val_y), len(data.test_y)


def _rounded_list(values):
    return ' and '.join('{:.1f} %'.format(v) for v in values)


def _columns_table(columns, rows):
    """Markdown lines of ``rows`` (a table's rows) over ``columns`` ((table, rate index, rate)):
    best and last of each column with their markers, '–' where a table lacks the method."""
    from reproduce.report import table_format
    lines = ['| method | ' + ' | '.join(
        '{} {} {}'.format(t['noise'], _rate(rate), kind) if kind == 'best' else kind
        for t, _, rate in columns for kind in table_format.KINDS) + ' |',
        '| --- ' * (1 + 2 * len(columns)) + '|']
    for row in rows:
        cells = []
        for t, k, _ in columns:
            measured = _row(t, row['method'])
            for kind in table_format.KINDS:
                cell = measured[kind][k] if measured else None
                mark = table_format.marker(cell) if cell else ''
                cells.append(_cell(cell) + (' ' + mark if mark else '') if cell else '–')
        lines.append('| {} | {} |'.format(short_label(row['label']), ' | '.join(cells)))
    return lines


def results_block(directory=RECORDED):
    """The body of README's "Results" section, from the recorded tables of ``directory``."""
    from reproduce.report import regression, significance, table_format
    found = dict(tables_in(directory))
    main = [t for _, t in ordered(found.items()) if role(t) == MAIN]
    side = [t for _, t in ordered(found.items()) if role(t) == SIDE]
    refs = [(s, t) for s, t in ordered(found.items()) if role(t) == REGRESSION]
    stems = {id(t): s for s, t in found.items()}
    lines = ['Only numbers measured by this code are shown here; each comes with how it was run. '
             'This section is generated from the files in `results/recorded/` by `python -m '
             'reproduce.report --readme` (`tests/test_readme_results.py` fails when it and the '
             'files disagree); `results/recorded/report.md` shows every table with its paired '
             'comparisons, its figure, settings and provenance (commit, device, platform, '
             'library versions, epochs, seeds, dates).', '']
    if main:
        lines += _main_lines(main, stems, significance, table_format)
    if side:
        lines += _side_lines(side, main, stems, significance, table_format)
    for stem, table in refs:
        lines += _reference_lines(stem, table, regression, table_format)
    return '\n'.join(lines).rstrip('\n')


def _files(stems):
    common = os.path.commonprefix(stems)
    rest = [s[len(common):] for s in stems]
    if len(stems) > 1 and all(rest):
        return '`results/recorded/{}{{{}}}.*`'.format(common, ','.join(rest))
    return ', '.join('`results/recorded/{}.*`'.format(s) for s in stems)


def _main_lines(main, stems, significance, table_format):
    first = main[0]
    prov = first['provenance']
    dataset = table_format.table_dataset(first)
    columns = [(t, k, rate) for t in main for k, rate in enumerate(t['rates'])]
    ours = [(t, k) for t, k, _ in columns if _row(t, 'ours')]
    methods = [r for r in first['rows'] if r['status'] == 'computed']
    trials = prov['trials_requested']
    head = '### {}, {}, every computed row ({})'.format(
        dataset[0].upper() + dataset[1:], 'CPU' if all(
            d.startswith('CPU') for t in main for d in t['provenance']['devices']) else 'GPU',
        _files([stems[id(t)] for t in main]))
    lines = [head, '']
    where = ''
    if dataset == 'digits':
        sizes = _digits_sizes()
        where = ' ({:,} training, {:,} validation, {:,} test images)'.format(*sizes)
    spans = ['Table {}: {:.1f} min ({:.1f} min of training in all runs)'.format(
        t['table'], *_minutes(t)) for t in main if _minutes(t)[0] is not None]
    lines.append(
        '{}{}, {}, {} computed methods, {} trials {} (every seed = the trial number), {}. '
        'Runs on {}, {}, at commit {} on {}, tables gathered at {}. Wall time of the runs, from '
        "the first run's start to the last one's finish: {}. Made by {}. Test accuracy in %, "
        'mean ± sample standard deviation (ddof 1) over the {} trials; "best" is the test '
        'accuracy at the epoch of highest validation accuracy; `*`: ours is better in this '
        'column by the exact paired sign-flip test (one-sided p < {:g}; with {} trials the '
        'smallest possible p is 1/{} = {:g}, so `*` means ours won on all {} seeds):'.format(
            table_format.data_set_name(dataset), where, ' and '.join(
                '{} {}'.format(_rate(rate), t['noise']) + ' noise' for t, _, rate in columns),
            _word(len(methods)), _word(len(trials)), '{}-{}'.format(trials[0], trials[-1])
            if trials == list(range(trials[0], trials[-1] + 1)) else ', '.join(map(str, trials)),
            table_format.table_schedule_text(first).replace(
                'schedule', "schedule (`reproduce/run/hparams.py`, not the paper's)", 1)
            if dataset not in table_format.PAPER_SCHEDULES
            else table_format.table_schedule_text(first),
            '; '.join(sorted({d for t in main for d in t['provenance']['devices']})),
            _blas_text(first), _commits(main, 'commits'),
            ', '.join(sorted({d[:10] for t in main for d in t['provenance']['run_dates']})),
            _commits(main, 'table'), '; '.join(spans), ' and '.join(
                '`python reproduce/table{}.py --dataset {} --rates {} --trials {} --jobs 2`'
                .format(t['table'], dataset, ','.join('{:g}'.format(r) for r in t['rates']),
                        len(t['provenance']['trials_requested'])) for t in main),
            _word(len(trials)), significance.LEVEL, len(trials), 2 ** len(trials),
            1 / 2 ** len(trials), _word(len(trials))))
    lines += [''] + _columns_table(columns, methods)
    lines.append('')
    tanaka = [(t, k) for t, k in ours if _row(t, 'tanaka')]
    sentences = []
    if tanaka:
        sentences.append('Ours − Tanaka et al. over the shared trials: {} (best, last).'.format(
            ', '.join(' and '.join('{:+.2f} (p {})'.format(
                v['mean_difference'], significance.format_p(v['p_ours_better']))
                for v in (_row(t, 'tanaka')[kind][k]['versus_ours']
                          for kind in table_format.KINDS)) + ' at {} {}'.format(
                _rate(t['rates'][k]), t['noise']) for t, k in tanaka)))
    labels = [(t, e) for t in main for e in t.get('labels', []) if e['corrected']['n']]
    if labels:
        sentences.append("Step 1's labels: {}.".format(', '.join(
            '{} → {} % right at {} {} noise'.format(_cell(e['noisy']), _cell(e['corrected']),
                                                     _rate(e['rate']), t['noise'])
            for t, e in labels)))
    sentences.append('Each folder\'s `report.md` (`results/recorded/report.md`) shows every '
                     'table with its paired comparisons, its figure, settings and provenance.')
    lines += [' '.join(sentences), '']
    lines += [_what_they_show(main, ours, labels, significance, table_format), '']
    return lines


def _what_they_show(main, ours, labels, significance, table_format):
    """The findings paragraph, every figure computed from the tables."""
    parts = []
    if labels:
        parts.append('step 1 raises the share of right training labels from {} to {}'.format(
            _rounded_list([e['noisy']['mean'] for _, e in labels]),
            _rounded_list([e['corrected']['mean'] for _, e in labels])))
    gains = {}
    for method in ('tanaka', 'ours'):
        means, seeds = [], []
        for t, k in ours:
            if _row(t, method) and _row(t, 'cross_entropy'):
                for kind in table_format.KINDS:
                    a, b = _row(t, method)[kind][k], _row(t, 'cross_entropy')[kind][k]
                    means.append(a['mean'] - b['mean'])
                    seeds += _paired(a, b)
        if means:
            gains[method] = (means, seeds)
    if gains:
        names = {'tanaka': "Tanaka et al.'s second step", 'ours': 'ours'}
        text = ('training on the corrected labels beats cross entropy on the noisy labels by {} '
                'on average over the columns and kinds ({})'.format(
                    _range([v for m in gains.values() for v in m[0]], unit=' points'),
                    ', '.join('{} {}'.format(names[m], _range(g[0])) for m, g in gains.items())))
        every = all(min(g[1]) > 0 for g in gains.values())
        text += (', and on every seed, where the gain goes down to {}'.format(' and '.join(
            '{:.1f} points for {}'.format(min(g[1]), names[m]) for m, g in gains.items()))
            if every else ', though not on every seed ({})'.format(', '.join(
                '{} of {} for {}'.format(sum(d > 0 for d in g[1]), len(g[1]), names[m])
                for m, g in gains.items())))
        parts.append(text)
    text = 'What they show: ' + '; '.join(parts) + '.' if parts else ''
    tanaka = [(t, k) for t, k in ours if _row(t, 'tanaka')]
    if tanaka:
        cells = [(_row(t, 'tanaka')[kind][k]['versus_ours'],
                  _paired(_row(t, 'ours')[kind][k], _row(t, 'tanaka')[kind][k]))
                 for t, k in tanaka for kind in table_format.KINDS]
        means = [v['mean_difference'] for v, _ in cells]
        test_images = _test_images(main)
        per_image = 100.0 / test_images if test_images else None
        ahead = min(sum(d >= -1e-9 for d in diffs) for _, diffs in cells)
        n = min(len(diffs) for _, diffs in cells)
        worst = min(min(diffs) for _, diffs in cells)
        significant = [v for v, _ in cells if v['p_ours_better'] is not None
                       and v['p_ours_better'] < significance.LEVEL]
        settings = 'in both settings' if len(tanaka) == 2 else 'in every setting' \
            if all(m > 0 for m in means) else ''
        sentence = ' "Ours" is {} Tanaka et al.\'s second step {} by {}'.format(
            'ahead of' if all(m > 0 for m in means) else 'within', settings,
            _range(means, unit=' points') if all(m > 0 for m in means) else
            _range(means, unit=' points'))
        if per_image:
            sentence += ' ({} to {} test images out of {})'.format(
                _word(int(round(min(means) / per_image))),
                _word(int(round(max(means) / per_image))), test_images)
        sentence += ', ahead or level on at least {} of {} seeds'.format(_word(ahead), _word(n))
        if worst < 0:
            sentence += ' and behind by {} at most'.format(
                '{} test image{}'.format(_word(int(round(-worst / per_image))),
                                         's' * (int(round(-worst / per_image)) != 1))
                if per_image else '{:.2f} points'.format(-worst))
        if significant:
            sentence += ', significantly at {:g} in {} of {} cells.'.format(
                significance.LEVEL, len(significant), len(cells))
        else:
            sentence += (', but not significantly at {:g} (the smallest p is {}): these runs do '
                         "not establish the paper's improvement; the CIFAR-10 tables on a GPU "
                         'are the test of that.'.format(significance.LEVEL, significance.format_p(
                             min(v['p_ours_better'] for v, _ in cells))))
        text += sentence
    pencil = [(t, run) for t in main for run in t.get('runs') or [] if run['part'] == 'pencil'
              and run.get('labels')]
    if pencil and all(run['labels']['corrected_accuracy'] == run['labels']['noisy_accuracy']
                      for _, run in pencil):
        stages = (table_format.resolved_settings(main[0]) or {}).get('pencil', {}).get('stages')
        text += (" PENCIL's labels do not move on digits (its label accuracy stays at the noisy "
                 "labels' {} in every trial): with the official code's loss scaling a sample's "
                 'label logits move by about 0.47 x (y^d - f) per visit at this batch size, and '
                 'the {} stage-2 epochs of the digits schedule are too few to overcome the '
                 'initial 10 x one-hot; the digits settings of PENCIL are this package\'s untuned '
                 'scaling of the CIFAR-10 ones (`hparams.PENCIL_DIGITS`), so this says nothing '
                 'about PENCIL on CIFAR-10.'.format(
                     _rounded_list([e['noisy']['mean'] for t in main for e in t['labels']]),
                     stages[1] if stages else 'stage-2'))
    if table_format.table_dataset(main[0]) not in table_format.PAPER_SCHEDULES:
        text += (" These are not the paper's numbers and are not comparable to them (other data, "
                 'network and schedule).')
    return text.strip()


def _test_images(tables):
    """The number of test images, where every test accuracy is a multiple of 100 / N."""
    from reproduce.report import table_format
    if all(table_format.table_dataset(t) == 'digits' for t in tables):
        return _digits_sizes()[2]
    return None


def _side_lines(side, main, stems, significance, table_format):
    lines = []
    estimated = [t for t in side if (t.get('settings') or {}).get('transition') == 'estimate']
    others = [t for t in side if t not in estimated]
    if estimated:
        first = estimated[0]
        same = []
        if main:
            for what, get in (('trials', lambda t: t['provenance']['trials_requested']),
                              ('run commit', lambda t: t['provenance']['commits']),
                              ('CPU', lambda t: t['provenance']['devices']),
                              ('numerics platform', lambda t: t['provenance']['platforms'])):
                if all(get(t) == get(main[0]) for t in estimated):
                    same.append(what)
        spans = [_minutes(t)[0] for t in estimated]
        lines += ['Forward T with the *estimated* matrix ({}): the same {} as above, `--methods '
                  'cross_entropy,forward_t --transition estimate`, {}; the runs took {} min '
                  'per table:'.format(
                      _files([stems[id(t)] for t in estimated]), ', '.join(same) or 'data',
                      table_format.table_schedule_text(first),
                      _range([s for s in spans if s is not None])), '']
        columns = [(t, k, rate) for t in estimated for k, rate in enumerate(t['rates'])]
        lines += _columns_table(
            columns, [r for r in first['rows'] if r['status'] == 'computed'])
        lines.append('')
        sentences = []
        if not any(_row(t, 'ours') for t in estimated):
            sentences.append('(No markers: "ours" is not part of these tables.)')
        pairs = []
        for t in estimated:
            reference = next((m for m in main if m['table'] == t['table']
                              and m['rates'] == t['rates']), None)
            if reference and _row(reference, 'forward_t') and _row(t, 'forward_t'):
                for k, rate in enumerate(t['rates']):
                    for kind in table_format.KINDS:
                        pairs.append((t, rate, kind, significance.compare(
                            _row(t, 'forward_t')[kind][k], _row(reference, 'forward_t')[kind][k]),
                            _row(t, 'forward_t')[kind][k], _row(reference, 'forward_t')[kind][k]))
        if pairs:
            by_column = {}
            for t, rate, kind, v, est, true in pairs:
                by_column.setdefault((t['table'], rate, t['noise']), []).append((v, est, true))
            sentences.append(
                'Estimated − true matrix, paired over the shared trials (best and last): {}.'
                .format('; '.join('{} at {} {} (sample std {} with the estimated matrix, {} '
                                  'with the true one)'.format(
                                      ' and '.join('{:+.2f} (two-sided p {})'.format(
                                          v['mean_difference'],
                                          significance.format_p(v['p_two_sided']))
                                          for v, _, _ in found), _rate(rate), noise,
                                      ' and '.join('{:.2f}'.format(e['std']) for _, e, _ in found),
                                      ' and '.join('{:.2f}'.format(t['std']) for _, _, t in found))
                                  for (_, rate, noise), found in by_column.items())))
            if all(v['p_two_sided'] is None or v['p_two_sided'] >= significance.LEVEL
                   for _, _, _, v, _, _ in pairs):
                sentences.append('{} trials do not separate the true and the estimated '
                                 'matrix.'.format(_word(min(v['n'] for *_, v, _, _ in pairs))
                                                  .capitalize()))
        lines += [' '.join(sentences), '']
    for t in others:
        lines += ['Side experiment {}: {}.'.format(_files([stems[id(t)]]), t['title']), '']
    return lines


def _reference_lines(stem, table, regression, table_format):
    prov = table['provenance']
    spread = table.get('platform_spread') or {}
    settings = spread.get('settings') or []
    exact = prov.get('exact_cpu') == [True]
    return ['### The regression reference (`results/recorded/{}.{{json,md}}`)'.format(stem), '',
            'The configuration the test suite checks (see "Regression checks"): {}, {} noise at '
            '{}, {} ({}), {}; {}, recorded{} at {}; its numbers under each of {} CPU numerics '
            'settings ({} distinct results) are in the Markdown file. It exists to catch a '
            'change in what the code computes, not to say anything about the methods.'.format(
                table_format.data_set_name(table_format.table_dataset(table)), table['noise'],
                ', '.join(_rate(r) for r in table['rates']),
                'every computed method' if all(r['status'] == 'computed' for r in table['rows'])
                else _methods_text(table), _methods_text(table),
                table_format.table_trials_text(table), table_format.table_schedule_text(table),
                ' in exact CPU mode' if exact else '', _commits([table], 'commits'),
                _word(len(settings)), _word(len(regression.distinct_settings(spread)))), '']


def platform_spread_phrase(directory=RECORDED):
    """README's phrase on how far the CPU numerics settings moved the regression reference:
    'test accuracies by up to 2.00 points (300 test images: ...), ...'."""
    from reproduce.report import regression
    refs = [t for _, t in tables_in(directory) if role(t) == REGRESSION]
    if not refs:
        return ''
    cells = refs[0]['platform_spread']['cells']
    reference = refs[0]['platform_spread']['reference']
    accuracy = max(c['max'] - c['min'] for c in cells if c['quantity'] in regression.KINDS)
    labels = max((c['max'] - c['min'] for c in cells if c['quantity'] == 'label_accuracy'
                  and c['part'] == 'step1'), default=0.0)
    losses = {c['part']: 100 * (c['max'] - c['min']) / c['values'][reference]
              for c in cells if c['quantity'] == 'final_loss'}
    largest = max(losses, key=losses.get)
    rest = max(v for k, v in losses.items() if k != largest)
    images = _test_images(refs)
    return ('test accuracies by up to {:.2f} points{}, step 1\'s label accuracy by up to {:.2f} '
            'points, and the final training losses by at most {:.1f} % of their value, except '
            '{}\'s ({:.1f} %)'.format(
                accuracy, ' ({} test images: one image is {:.2f} points)'.format(
                    images, 100.0 / images) if images else '', labels, rest,
                {'tanaka': "Tanaka et al.'s second step", 'ours': 'ours', 'step1': 'step 1',
                 'pencil': 'PENCIL', 'cross_entropy': 'cross entropy',
                 'forward_t': 'Forward T'}.get(largest, largest), losses[largest]))


def label_update_phrase(directory=RECORDED):
    """README's phrase on step 1's label accuracy of the regression reference: "55 % instead of
    about 83 %" (the noisy labels' and the corrected ones')."""
    refs = [t for _, t in tables_in(directory) if role(t) == REGRESSION]
    if not refs or not refs[0].get('labels'):
        return ''
    entry = refs[0]['labels'][0]
    return '{:.0f} % instead of about {:.0f} %'.format(entry['noisy']['mean'],
                                                       entry['corrected']['mean'])


def ours_loss_phrase(directory=RECORDED):
    """README's phrase on the final training loss of "ours" in the regression reference."""
    refs = [t for _, t in tables_in(directory) if role(t) == REGRESSION]
    for signal in (refs[0].get('signals') or []) if refs else []:
        if signal['part'] == 'ours' and signal['quantity'] == 'final_loss':
            return 'about {:.1f}'.format(signal['cells'][0]['mean'])
    return ''


def demo_phrase(directory=RECORDED):
    """README's sentence on what ``make demo`` printed from a fresh clone (its table kept in
    ``results/recorded/demo``): step 1's labels, ours against each other method per kind."""
    from reproduce.report import significance
    stems = tables_in(os.path.join(directory, 'demo'))
    if not stems:
        return ''
    table = stems[0][1]
    labels = table['labels'][0]
    ours = _row(table, 'ours')
    parts = []
    for method in ('cross_entropy', 'tanaka'):
        row = _row(table, method)
        if not (ours and row):
            continue
        found = []
        for kind in ('best', 'last'):
            c = significance.compare(ours[kind][0], row[kind][0])
            found.append('{:+.2f} {} (p {})'.format(c['mean_difference'], kind,
                                                     significance.format_p(c['p_ours_better'])))
        parts.append('{} by {}'.format(row['label'].split(' [')[0], ' and '.join(found)))
    return ('step 1 raised the share of right training labels from {:.1f} % to {:.1f} %, and ours '
            'was ahead of {}'.format(labels['noisy']['mean'], labels['corrected']['mean'],
                                     '; of '.join(parts)))


def readme_blocks(directory=RECORDED):
    """``{name: text}`` of README's generated blocks."""
    return {'results': '\n' + results_block(directory) + '\n',
            'platform-spread': platform_spread_phrase(directory),
            'label-update': label_update_phrase(directory),
            'ours-loss': ours_loss_phrase(directory),
            'demo': demo_phrase(directory)}


def update_readme(text, blocks):
    """README ``text`` with each generated block replaced by ``blocks[name]``; raises
    ValueError for a block README has that is not generated, or one generated that README
    lacks."""
    seen = set()

    def replace(match):
        name = match.group('name')
        if name not in blocks:
            raise ValueError('README has a block {!r} that reproduce.report.page does not '
                             'generate'.format(name))
        seen.add(name)
        return match.group(1) + blocks[name] + match.group(4)

    updated = BLOCK.sub(replace, text)
    missing = sorted(set(blocks) - seen)
    if missing:
        raise ValueError('README lacks the generated block(s) {} (<!-- results:begin NAME --> '
                         '... <!-- results:end NAME -->)'.format(', '.join(missing)))
    return updated


def write_report(directory):
    """Writes ``directory/report.md`` atomically; returns its path."""
    path = os.path.join(directory, NAME)
    atomic.write_text(path, build_report(directory))
    return path


def main(argv=None):
    p = options.Parser(description=__doc__.split('\n\n')[0])
    p.add_argument('directory', nargs='?', help='a results folder (tables and figures written '
                   'by the table and figure scripts); with --readme, results/recorded')
    p.add_argument('--rewrite', action='store_true',
                   help="write every table's files (.md, .tex, .csv, references.bib, figure) "
                        'again from its JSON with this code, its title brought up to date, '
                        'then the report; nothing is run')
    p.add_argument('--readme', action='store_true',
                   help="write README.md's generated blocks (<!-- results:begin NAME -->) from "
                        'the recorded files')
    p.add_argument('--check', action='store_true',
                   help='with --readme: write nothing, exit 1 when README differs')
    args = p.parse_args(argv)
    if args.readme:
        return readme_main(args.directory or RECORDED, args.check)
    if not args.directory:
        p.error('give a results folder (or --readme)')
    if not os.path.isdir(args.directory):
        sys.stderr.write('error: {} is not a folder\n'.format(args.directory))
        return 2
    try:
        written = []
        if args.rewrite:
            for stem, _ in tables_in(args.directory):
                written += table_files.rewrite_from_json(os.path.join(args.directory, stem + '.json'))
        written.append(write_report(args.directory))
    except (OSError, ValueError) as error:
        from reproduce.run import preflight
        sys.stderr.write('error: {}\n'.format(preflight.describe(error)
                                               if isinstance(error, OSError) else error))
        return 1
    unique = [p for k, p in enumerate(written) if p not in written[:k]]
    sys.stdout.write('written: {}\n'.format(', '.join(os.path.relpath(p) for p in unique)))
    return 0


def readme_main(directory, check, readme=README):
    """``--readme``: README's generated blocks from ``directory``; returns the exit status."""
    with open(readme) as f:
        text = f.read()
    try:
        updated = update_readme(text, readme_blocks(directory))
    except ValueError as error:
        sys.stderr.write('error: {}\n'.format(error))
        return 2
    if updated == text:
        sys.stdout.write('{}: its generated blocks agree with {}\n'.format(
            os.path.relpath(readme), os.path.relpath(directory)))
        return 0
    if check:
        sys.stdout.write('{}: its generated blocks differ from {}: run python -m '
                         'reproduce.report --readme\n'.format(os.path.relpath(readme),
                                                               os.path.relpath(directory)))
        return 1
    atomic.write_text(readme, updated)
    sys.stdout.write('written: {}\n'.format(os.path.relpath(readme)))
    return 0


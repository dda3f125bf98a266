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

from reproduce.report import table_files, table_format
from reproduce.run import options, preflight, provenance, rundir
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
#: The damaged files :func:`tables_in` has said it skips (once each).
_SKIPPED = set()


def tables_in(directory):
    """``[(stem, table)]`` of the table JSON files of ``directory`` (sorted by name); a partial
    table (``<stem>.partial.json``) only where its complete one is not there."""
    found, names = [], sorted(os.listdir(directory))
    for name in names:
        complete = re.sub(r'\.partial\.json$', '.json', name)
        if not name.endswith('.json') or complete != name and complete in names:
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
    return ['| setting | value |', '|---|---|'] + [
        '| {} | {} |'.format(k, v if isinstance(v, str) else json.dumps(v))
        for k, v in sorted((table.get('settings') or {}).items())]


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
    ran = table_format.parts_run(table)     # the epochs of the parts that ran only
    add('epochs', ', '.join('{} {}'.format(k, v) for k, v in (prov.get('epochs') or {}).items()
                            if k in ran or k == 'step2' and set(ran) - {'step1', 'pencil'}))
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


#: The roles of a folder's tables, in the order of the report.
MAIN, SIDE, REGRESSION = 'main', 'side', 'regression'
SECTION_TITLES = {SIDE: 'Side experiments', REGRESSION: 'Regression reference'}


def role(table):
    """'regression' (its spread across CPU numerics settings is recorded), 'main' (its script's
    default at any schedule scale, "ours" computed) or 'side' (any other variant)."""
    from reproduce.report import table_export
    if table.get('platform_spread'):
        return REGRESSION
    ours = any(r['method'] == 'ours' and r['status'] == 'computed' for r in table['rows'])
    variant = [w for w in table_export.table_variant(table) if not re.match(r'^[xi][0-9.]+$', w)]
    return MAIN if ours and not variant else SIDE


def ordered(tables):
    """``tables`` (``[(stem, table)]``) in the report's order: main, side, regression."""
    return sorted(tables, key=lambda item: ((MAIN, SIDE, REGRESSION).index(role(item[1])),
                                            item[1]['table'], item[0]))


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
    if prov_platform.get('blas'):
        found['BLAS'] = '; '.join(
            '{} {} ({} kernel, {} thread{}; {})'.format(
                b.get('internal_api'), b.get('version'), b.get('architecture'),
                b.get('num_threads'), 's' * (b.get('num_threads') != 1), b.get('loaded_by'))
            for b in prov_platform['blas'])
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
    """The summary's platform table: one row per distinct numerics platform."""
    by_key = {}
    for stem, table in tables:
        prov = table.get('provenance') or {}
        for platform in prov.get('platforms') or [None]:
            described = platform_of(platform or {})
            devices, exact = prov.get('devices') or [], prov.get('exact_cpu') or []
            by_key.setdefault((tuple(devices), json.dumps(described, sort_keys=True),
                               tuple(exact)), {'tables': [], 'described': described,
                                               'devices': devices, 'exact': exact}
                              )['tables'].append(stem)
    rows = list(by_key.values())
    fields = [f for f in ('BLAS', 'numpy SIMD', 'GPU', 'libraries')
              if any(f in r['described'] for r in rows)]
    lines = ['| tables | device | exact CPU mode | ' + ' | '.join(fields) + ' |',
             '|---|---|---|' + '---|' * len(fields)]
    for row in rows:
        lines.append('| {} | {} | {} | {} |'.format(
            ', '.join(row['tables']), '; '.join(row['devices']) or '–',
            ', '.join('yes' if e else 'no' for e in row['exact']) or '–',
            ' | '.join(row['described'].get(f, '–') for f in fields)))
    return lines


def _what_ran_table(tables):
    lines = ['| table | role | data set | noise | methods | trials | schedule |',
             '|---|---|---|---|---|---|---|']
    for stem, table in tables:
        lines.append('| [{0}](#{1}) | {2} | {3} | {4} | {5} | {6} | {7} |'.format(
            stem, anchor(stem), {MAIN: 'result', SIDE: 'side experiment',
                                 REGRESSION: 'regression reference'}[role(table)],
            table_format.data_set_name(table_format.table_dataset(table)),
            _columns_text(table), ', '.join(short_label(r['label']) for r in table['rows']
                                            if r['status'] == 'computed'),
            table_format.table_trials_text(table),
            table_format.table_schedule_text(table)))
    return lines


def anchor(stem):
    """The Markdown heading anchor of a table's section."""
    return re.sub(r'[^a-z0-9_ -]', '', stem.lower()).replace(' ', '-')


def findings_lines(tables):
    """The main tables' findings: per column and kind, ours and its paired difference with each
    other method, and step 1's labels."""
    from reproduce.report import significance
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
    """The text of ``directory``'s report: a summary, then the main tables, the other figures,
    the side experiments and the regression reference."""
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
        return '\n'.join(lines + ['Nothing to report yet: no table or figure in this folder.', ''])
    if tables:
        lines += ['## Summary', '', '**What ran.**', ''] + _what_ran_table(tables) + [
            '', '**Platform** (the numerics of every run; commits and dates under each '
                'table\'s provenance).', ''] + _platform_table(tables) + ['']
        findings = findings_lines(tables)
        if findings:
            lines += ['**Main findings.**', ''] + findings
    figures = [name for name in images if not name.endswith(table_files.NOISE_FIGURE)]
    for group in (MAIN, SIDE, REGRESSION):
        members = [t for t in tables if role(t[1]) == group]
        if group == SIDE and figures:     # the figures no table shows, before the side tables
            lines += ['## Figures', '']
            for name in figures:
                lines += ['### {}'.format(FIGURES.get(name, name)), '',
                          '![{0}]({0}.png)'.format(name), '']
                if os.path.exists(os.path.join(directory, name + '.pdf')):
                    lines += ['PDF: [{0}.pdf]({0}.pdf)'.format(name), '']
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
            figure = stem + table_files.NOISE_FIGURE
            if figure in images:
                lines += ['![{}: {}]({}.png)'.format(
                    stem, 'test accuracy per method' if len(table['rates']) == 1 else
                    'test accuracy against noise rate', figure),
                          '', 'PDF: [{0}.pdf]({0}.pdf)'.format(figure), '']
            lines += ['#### Settings and provenance of {}'.format(stem), ''] + \
                _settings_lines(table) + [''] + _provenance_lines(table) + ['']
    return '\n'.join(lines)


def demote(text, levels=2):
    """``text`` with every Markdown heading ``levels`` deeper."""
    return re.sub(r'^(#+) ', lambda m: '#' * (len(m.group(1)) + levels) + ' ', text,
                  flags=re.MULTILINE)


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
        from reproduce.report import readme
        return readme.readme_main(args.directory or readme.RECORDED, args.check)
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
        sys.stderr.write('error: {}\n'.format(preflight.describe(error)
                                               if isinstance(error, OSError) else error))
        return 1
    sys.stdout.write('written: {}\n'.format(', '.join(map(preflight.shown,
                                                           dict.fromkeys(written)))))
    return 0

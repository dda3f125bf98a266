"""One ``report.md`` per results folder: every table in it (its Markdown, its accuracy-against-noise
figure), every other figure (embedded images), and each table's settings and provenance, readable
on a code-hosting site without tools.

    python -m reproduce.report results/digits-x0.2      # (the table scripts write it themselves)

It is made from the files in the folder only (``*.json`` tables, ``*.png`` figures), so it can be
written again at any time; links are relative, so the folder can be moved or published as is.
"""
import datetime
import json
import os
import sys

if __package__ in (None, ''):  # run as a file: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from reproduce import options, provenance, rundir  # noqa: E402
from reproduce.table_format import format_markdown  # noqa: E402
from updaters import atomic  # noqa: E402

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
NOISE_FIGURE = '_noise'


def tables_in(directory):
    """``[(stem, table)]`` of the table JSON files of ``directory`` (sorted by name)."""
    found = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith('.json'):
            continue
        table = rundir.read_json(os.path.join(directory, name))
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
        add('numerics platform', json.dumps(platform, sort_keys=True))
    add('table gathered at commit', prov.get('table_commit'))
    add('table written', prov.get('table_written'))
    if table.get('platform_spread'):
        add('spread across CPU numerics settings', 'recorded ({} settings)'.format(
            len(table['platform_spread'].get('settings', []))))
    return lines


def build_report(directory):
    """The text of ``directory``'s report."""
    title = os.path.basename(os.path.normpath(os.path.abspath(directory)))
    tables = tables_in(directory)
    images = sorted(n[:-len('.png')] for n in os.listdir(directory) if n.endswith('.png'))
    stamp = '{} at commit {}'.format(
        datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        (provenance.git_commit() or 'unknown')[:19])
    lines = ['# Results in `{}`'.format(title), '',
             'Gathered by `python -m reproduce.report` from the files of this folder ({}). '
             'Every number was measured by this package\'s code, except those marked as the '
             'paper\'s (results/paper/).'.format(stamp), '']
    if tables:
        lines += ['Tables: ' + ', '.join('[{0}](#{0})'.format(stem) for stem, _ in tables), '']
    shown = set()
    for stem, table in tables:
        lines += ['## {}'.format(stem), '',
                  'Files: ' + ', '.join('[{0}]({0})'.format(stem + ext) for ext in (
                      '.json', '.md', '.tex', '.csv')
                      if os.path.exists(os.path.join(directory, stem + ext))), '']
        lines += [format_markdown(table), '']
        figure = stem + NOISE_FIGURE
        if figure in images:
            lines += ['![{}: test accuracy against noise rate]({}.png)'.format(stem, figure),
                      '', 'PDF: [{0}.pdf]({0}.pdf)'.format(figure), '']
            shown.add(figure)
        lines += ['### Settings of {}'.format(stem), ''] + _settings_lines(table) + ['']
        lines += ['### Provenance of {}'.format(stem), ''] + _provenance_lines(table) + ['']
    others = [name for name in images if name not in shown]
    if others:
        lines += ['## Figures', '']
        for name in others:
            lines += ['### {}'.format(FIGURES.get(name, name)), '',
                      '![{0}]({0}.png)'.format(name), '']
            if os.path.exists(os.path.join(directory, name + '.pdf')):
                lines += ['PDF: [{0}.pdf]({0}.pdf)'.format(name), '']
    if not tables and not images:
        lines += ['Nothing to report yet: no table or figure in this folder.', '']
    return '\n'.join(lines)


def write_report(directory):
    """Writes ``directory/report.md`` atomically; returns its path."""
    path = os.path.join(directory, NAME)
    atomic.write_text(path, build_report(directory))
    return path


def main(argv=None):
    p = options.Parser(description=__doc__.split('\n\n')[0])
    p.add_argument('directory', help='a results folder (tables and figures written by the '
                                     'table and figure scripts)')
    args = p.parse_args(argv)
    if not os.path.isdir(args.directory):
        sys.stderr.write('error: {} is not a folder\n'.format(args.directory))
        return 2
    try:
        path = write_report(args.directory)
    except OSError as error:
        from reproduce import preflight
        sys.stderr.write('error: {}\n'.format(preflight.describe(error)))
        return 1
    sys.stdout.write('written: {}\n'.format(os.path.relpath(path)))
    return 0


if __name__ == '__main__':
    sys.exit(main())

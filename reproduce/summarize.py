"""Gather finished runs into mean/std per (data set, noise, rate) and method, as JSON and Markdown.

    python -m reproduce.summarize RUN_DIR [RUN_DIR ...] --name NAME

writes ``results/recorded/NAME.json`` (every finished part's numbers with its provenance, the
aggregates as the tables make them, each other method's paired comparison with ours) and
``NAME.md`` (with the markers). Only finished parts are read; nothing is recomputed.
"""
import os
import sys

from reproduce import REPOSITORY
from reproduce.report import aggregate, significance
from reproduce.report.aggregate import KINDS
from reproduce.run import options, preflight
from reproduce.run.methods import NAMES as METHODS
import atomic_files as atomic


def summarize(run_dirs):
    """Per (data set, noise, rate): per method the statistics (percent) of best and last test
    accuracy over trials, and step 1's label accuracy before and after correction."""
    found = aggregate.gather(aggregate.runs_of_directories(run_dirs))
    rows = []
    for key in found.keys():
        row = dict(zip(('dataset', 'noise', 'rate'), key))
        cells = {'{}/{}'.format(m, k): found.cell(m, key, k) for m in METHODS for k in KINDS}
        row.update((name, cell) for name, cell in cells.items() if cell['n'])
        compare_with_ours(row)
        if key in found.labels:
            row['labels_noisy'] = found.label_cell(key, 'noisy')
            row['labels_corrected'] = found.label_cell(key, 'corrected')
        rows.append(row)
    return {'cells': rows, 'runs': found.parts, 'unit': 'percent', 'std': aggregate.STD_CONVENTION}


def compare_with_ours(row):
    """Adds to each other method's cell of a summary row its paired comparison with ours in the
    same kind (``versus_ours``, :func:`reproduce.report.significance.compare`), when ours is there."""
    for kind in KINDS:
        ours = row.get('ours/' + kind)
        for method in METHODS:
            other = row.get('{}/{}'.format(method, kind))
            if ours is not None and other is not None and method != 'ours':
                other['versus_ours'] = significance.compare(ours, other)


def markdown(summary):
    def cell(row, name):
        v = row.get(name)
        if v is None:
            return '–'
        return '{:.2f} ± {:.2f} ({}){}'.format(
            v['mean'], v['std'], v['n'],
            (' ' + v['versus_ours']['marker']) if v.get('versus_ours', {}).get('marker') else '')

    methods = [m for m in METHODS if any('{}/best'.format(m) in r for r in summary['cells'])]
    lines = ['| data | noise | rate | labels noisy → corrected | '
             + ' | '.join('{} best | {} last'.format(m, m) for m in methods) + ' |',
             '| --- ' * (4 + 2 * len(methods)) + '|']
    for row in summary['cells']:
        lines.append('| {} | {} | {:g}% | {} → {} | {} |'.format(
            row['dataset'], row['noise'], 100 * row['rate'], cell(row, 'labels_noisy'),
            cell(row, 'labels_corrected'),
            ' | '.join('{} | {}'.format(cell(row, m + '/best'), cell(row, m + '/last'))
                       for m in methods)))
    return '\n'.join(lines) + '\n'


def main(argv=None):
    p = options.Parser(description=__doc__.split('\n\n')[0])
    p.add_argument('runs', nargs='+', help='run directories made by reproduce.experiment')
    p.add_argument('--name', required=True, type=options.file_name,
                   help='file name (without extension) under --dest; an existing one is kept')
    p.add_argument('--dest', default=os.path.join(REPOSITORY, 'results', 'recorded'))
    args = p.parse_args(argv)
    paths = [os.path.join(args.dest, args.name + ext) for ext in ('.json', '.md')]
    try:
        preflight.folder(args.dest, '--dest')
        taken = [path for path in paths if os.path.exists(path)]
        if taken:
            raise ValueError('{} exists and is kept: choose another --name, or delete it '
                             'first'.format(taken[0]))
    except ValueError as error:
        p.exit(2, 'error: {}\n'.format(error))
    try:
        summary = summarize(args.runs)
        text = markdown(summary)
        atomic.write_json(paths[0], summary)
        atomic.write_text(paths[1],
                          'Test accuracy in % (mean ± sample std over trials, count); label '
                          'accuracy of the training labels before and after step 1. ' +
                          significance.rule() + '\n\n' + text)
    except FileNotFoundError as error:
        sys.exit('error: {}'.format(error))
    except KeyboardInterrupt:
        written = [path for path in paths if os.path.exists(path)]
        p.exit(130, 'interrupted: {}\n'.format(
            'wrote {} only'.format(written[0]) if written else 'nothing written'))
    print(text)


if __name__ == '__main__':
    main()

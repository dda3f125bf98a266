"""Gather finished runs into mean/std per (data set, noise, rate, method), as JSON and Markdown.

    python -m reproduce.summarize RUN_DIR [RUN_DIR ...] --name NAME

reads every ``<run>/<part>/result.json`` made by :mod:`reproduce.experiment` and writes
``results/recorded/NAME.json`` (every run's numbers with its provenance, and the aggregates) and
``NAME.md`` (the table). Only finished parts are read; nothing is recomputed.
"""
import argparse
import collections
import json
import os
import sys

import numpy

from updaters import atomic

PARTS = ('cross_entropy', 'tanaka', 'ours')
_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_run(run_dir):
    """{part: result dict} of the finished parts of one run directory."""
    found = {}
    for part in PARTS + ('step1',):
        path = os.path.join(run_dir, part, 'result.json')
        if os.path.exists(path):
            with open(path) as f:
                found[part] = json.load(f)
    if not found:
        raise FileNotFoundError('{} holds no finished run (no */result.json)'.format(run_dir))
    return found


def _key(result):
    c = result['config']
    return c['dataset'], c['noise'], c['rate']


def summarize(run_dirs):
    """Per setting and method: mean and std over trials of best/last test accuracy (and, for
    step 1, of the label accuracy before and after correction)."""
    cells = collections.defaultdict(lambda: collections.defaultdict(list))
    runs = []
    for run_dir in run_dirs:
        parts = read_run(run_dir)
        runs.append({'run': os.path.basename(os.path.normpath(run_dir)),
                     'parts': {p: brief(r) for p, r in parts.items()}})
        for part, result in parts.items():
            cell = cells[_key(result)]
            if part == 'step1':
                cell['labels_noisy'].append(result['labels']['noisy_accuracy'])
                cell['labels_corrected'].append(result['labels']['corrected_accuracy'])
            else:
                cell[part + '/best'].append(result['best_test'])
                cell[part + '/last'].append(result['last_test'])
    table = []
    for (dataset, kind, rate), cell in sorted(cells.items()):
        row = {'dataset': dataset, 'noise': kind, 'rate': rate}
        for name, values in sorted(cell.items()):
            row[name] = {'mean': float(numpy.mean(values)), 'std': float(numpy.std(values)),
                         'n': len(values), 'values': values}
        table.append(row)
    return {'cells': table, 'runs': runs}


def brief(result):
    """The numbers and provenance of one part's ``result.json`` that tables and summaries keep."""
    entry = {k: result[k] for k in ('best_test', 'last_test', 'epochs', 'train_seconds')}
    entry['best_epoch'] = result['accuracy']['best']['epoch']
    entry['seeds'] = {k: v for k, v in result['config'].items() if k.endswith('_seed')}
    entry['provenance'] = result['provenance']
    if 'labels' in result:
        entry['labels'] = result['labels']
    return entry


def markdown(summary):
    def cell(row, name):
        v = row.get(name)
        return '–' if v is None else '{:.2f} ± {:.2f}'.format(100 * v['mean'], 100 * v['std'])

    lines = ['| data | noise | rate | trials | labels noisy → corrected | '
             + ' | '.join('{} best | {} last'.format(p, p) for p in PARTS) + ' |',
             '| --- ' * (5 + 2 * len(PARTS)) + '|']
    for row in summary['cells']:
        n = max(v['n'] for k, v in row.items() if isinstance(v, dict))
        lines.append('| {} | {} | {:.0%} | {} | {} → {} | {} |'.format(
            row['dataset'], row['noise'], row['rate'], n, cell(row, 'labels_noisy'),
            cell(row, 'labels_corrected'),
            ' | '.join('{} | {}'.format(cell(row, p + '/best'), cell(row, p + '/last'))
                       for p in PARTS)))
    return '\n'.join(lines) + '\n'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('runs', nargs='+', help='run directories made by reproduce.experiment')
    p.add_argument('--name', required=True, help='file name (without extension) under --dest')
    p.add_argument('--dest', default=os.path.join(_HERE, 'results', 'recorded'))
    args = p.parse_args(argv)
    try:
        summary = summarize(args.runs)
    except FileNotFoundError as error:
        sys.exit('error: {}'.format(error))
    atomic.write_json(os.path.join(args.dest, args.name + '.json'), summary)
    text = markdown(summary)
    atomic.write_text(os.path.join(args.dest, args.name + '.md'),
                      'Test accuracy in % (mean ± std over trials); label accuracy of the '
                      'training labels before and after step 1.\n\n' + text)
    print(text)


if __name__ == '__main__':
    main()

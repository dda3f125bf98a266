"""Figure 3 of the paper (step 2's test accuracy per epoch at 90 % symmetric and 30 % asymmetric
noise), with step 1's label accuracy per epoch and the confusion matrix of its corrected labels.

    python reproduce/figure3.py                       # after table2.py and table3.py: draws
    python reproduce/figure3.py --dataset digits --epochs-scale 0.3 --trials 1 --train

Its runs are those of table2.py and table3.py (same root, names and rows), so after the tables it
only draws (where --out holds none of them it stops, unless --train). Writes figure3,
step1_label_accuracy and step1_confusion (.png, .pdf) to the results folder.
"""
import os
import sys

import chainer_compat  # noqa: F401  (before numpy: exact CPU mode pins its numerics first)
import numpy

from reproduce.batch import cli, runner, tables
from reproduce.report import aggregate, page as report
from reproduce.run import options, preflight, rundir
from reproduce.run.methods import METHODS, NAMES

PANELS = ((2, '(a) {:g}% symmetric noise'), (3, '(b) {:g}% asymmetric noise'))


def step2_panels(units_by_panel, methods):
    """Plot input of Figure 3: per panel, per method, the test curve of every trial."""
    panels = []
    for title, units in units_by_panel:
        curves = {METHODS[m].label: aggregate.curves([u.run_dir for u in units if m in u.parts], m)
                  for m in methods}
        panels.append({'title': title, 'curves': {k: v for k, v in curves.items() if v}})
    return panels


def label_accuracy_series(units):
    """Step 1's label accuracy per epoch of the planned runs, by noise setting."""
    series = {}                  # by noise kind, then rate: the keys are made in that order
    for unit in sorted((u for u in units if 'step1' in u.parts),
                       key=lambda u: (u.config.noise, u.config.rate)):
        c = unit.config
        series.setdefault('{} {:g}%'.format(c.noise, round(100 * c.rate, 4)), []).extend(
            aggregate.label_histories([unit.run_dir]))
    return {k: v for k, v in series.items() if v}


def confusion_matrices(units_by_panel, n_classes):
    """Per panel: corrected (step 1's hard labels) against clean labels, summed over trials."""
    from reproduce.report import plots
    matrices = []
    for title, units in units_by_panel:
        counts = numpy.zeros((n_classes, n_classes), dtype=numpy.int64)
        trials = 0
        for unit in (u for u in units if 'step1' in u.parts):
            path = os.path.join(unit.run_dir, 'step1', rundir.LABELS)
            if rundir.problem(path):
                aggregate.skipped(path, rundir.problem(path))
            elif os.path.exists(path):
                with numpy.load(path) as f:
                    counts += plots.confusion_counts(f['clean'], f['hard'], n_classes)
                trials += 1
        if trials:
            matrices.append(('{} ({} trial{})'.format(title, trials, 's' * (trials > 1)), counts))
    return matrices


def parser():
    return cli.table_parser(__doc__.split('\n\n')[0], (options.TABLE, cli.FIGURE),
                            defaults={'trials': 5})


def make_figures(args, stream=None):
    """Runs what is missing, draws the three figures; returns (written paths, failed units)."""
    from reproduce.report import plots
    trials = list(range(args.trials))
    by_panel, units = [], []
    for number, title in PANELS:
        noise = tables.NOISE[number]
        rate = getattr(args, noise + '_rate')
        if rate is not None:
            panel_units = runner.plan(tables.base_config(args, noise), [rate], trials,
                                      args.methods or tables.paper_rows(number), args.out)
            by_panel.append((title.format(100 * rate), panel_units))
            units += panel_units
    failed = tables.run_units(units, args, stream)
    if failed is None:
        return [], []
    config = units[0].config
    directory = tables.results_dir(args, config)

    written = []
    panels = step2_panels(by_panel, [m for m in NAMES if any(m in u.parts for u in units)])
    if any(p['curves'] for p in panels):
        written += plots.plot_step2_curves(
            panels, os.path.join(directory, 'figure3'),
            title='Figure 3: test accuracy of the second step')
    series = label_accuracy_series(units)
    if series:
        written += plots.plot_label_accuracy(
            series, os.path.join(directory, 'step1_label_accuracy'),
            title='Step 1: training labels equal to the clean label')
    matrices = confusion_matrices(by_panel, config.spec.n_classes)
    if matrices:
        written += plots.plot_confusion(
            matrices, [str(k) for k in range(config.spec.n_classes)],
            os.path.join(directory, 'step1_confusion'),
            title='Step 1: corrected against clean training labels')
    if written:
        written.append(report.write_report(directory))
    return written, failed


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    args.gather_command = cli.gather_command(p, args, os.path.abspath(__file__))
    if args.symmetric_rate is None and args.asymmetric_rate is None:
        sys.stderr.write('figure3.py: --symmetric-rate and --asymmetric-rate are both none: '
                         'give a rate to at least one panel\n')
        return 2
    for note in options.merge_notes(args, ('methods', 'devices')):
        sys.stderr.write(note + '\n')
    status, made = preflight.guarded(lambda: make_figures(args))
    if status or args.print_commands or args.plan or args.sbatch:
        return status
    written, failed = made
    sys.stdout.write('figures written: {}\n'.format(', '.join(map(preflight.shown, written)))
                     if written else 'nothing written: no finished epochs to draw yet\n')
    if failed:
        sys.stdout.write('{} run(s) failed; run the same command again to resume them\n'.format(
            len(failed)))
    return 0 if written and not failed else 1


if __name__ == '__main__':
    sys.exit(main())

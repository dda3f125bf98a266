"""Figure 3 of the paper: test accuracy per epoch of step 2 at 90 % symmetric and 30 % asymmetric
noise, one line per method (mean over trials, band from lowest to highest trial). Beside it, two
figures the paper lacks: step 1's label accuracy per epoch for every noise setting of the planned
runs, and the confusion matrix of corrected against clean labels.

    python reproduce/figure3.py                       # makes the runs it needs, or reuses them
    python reproduce/figure3.py --dataset digits --epochs-scale 0.3 --trials 1

The runs are the same as those of reproduce/table2.py and table3.py (same output root, same
names), so after the tables this only draws. Files: results/<dataset>[-x<scale>]/figure3.png and
.pdf, step1_label_accuracy.png/.pdf, step1_confusion.png/.pdf.
"""
import os
import sys

if __package__ in (None, ''):  # run as a file: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import chainer_compat  # noqa: F401,E402  (before chainer)
import numpy  # noqa: E402

from reproduce import aggregate, cli, options, preflight, report, rundir, runner, tables  # noqa: E402,E501
from reproduce.methods import METHODS, NAMES  # noqa: E402
from reproduce.table_format import (PART_ORDER, data_set_name, schedule_text,  # noqa: E402
                                    trials_text)

PANELS = (('symmetric', '(a) {:g}% symmetric noise'), ('asymmetric', '(b) {:g}% asymmetric noise'))


def step2_panels(units_by_panel, methods):
    """Plot input of Figure 3: per panel, per method, the test curve of every trial."""
    panels = []
    for title, units in units_by_panel:
        curves = {}
        for method in methods:
            found = aggregate.curves([u.run_dir for u in units if method in u.parts], method)
            if found:
                curves[METHODS[method].label] = found
        panels.append({'title': title, 'curves': curves})
    return panels


def label_accuracy_series(units):
    """Step 1's label accuracy per epoch of the planned runs, by noise setting."""
    series = {}                  # by noise kind, then rate: the keys are made in that order
    for unit in sorted(units, key=lambda u: (u.config.noise, u.config.rate)):
        if 'step1' not in unit.parts:
            continue
        c = unit.config
        setting = '{} {:g}%'.format(c.noise, round(100 * c.rate, 4))
        series.setdefault(setting, []).extend(aggregate.label_histories([unit.run_dir]))
    return {k: v for k, v in series.items() if v}


def confusion_matrices(units_by_panel, n_classes):
    """Per panel: corrected (step 1's hard labels) against clean labels, summed over trials."""
    from reproduce import plots
    matrices = []
    for title, units in units_by_panel:
        counts = numpy.zeros((n_classes, n_classes), dtype=numpy.int64)
        trials = 0
        for unit in units:
            path = os.path.join(unit.run_dir, 'step1', rundir.LABELS)
            if 'step1' in unit.parts and os.path.exists(path):
                with numpy.load(path) as f:
                    counts += plots.confusion_counts(f['clean'], f['hard'], n_classes)
                trials += 1
        if trials:
            matrices.append(('{} ({} trial{})'.format(title, trials, 's' * (trials > 1)), counts))
    return matrices


def parser():
    return cli.table_parser(__doc__.split('\n\n')[0], (options.TABLE, cli.FIGURE))


def make_figures(args, stream=None):
    """Runs what is missing (unless gathering only), draws the three figures; returns
    (written paths, failed units)."""
    from reproduce import plots
    trials = list(range(args.trials))
    rates = {'symmetric': args.symmetric_rate, 'asymmetric': args.asymmetric_rate}
    by_panel, units = [], []
    for noise, title in PANELS:
        if rates[noise] is None:
            continue
        base = tables.base_config(args, noise)
        panel_units = runner.plan(base, [rates[noise]], trials, args.methods, args.out)
        by_panel.append((title.format(100 * rates[noise]), panel_units))
        units += panel_units
    failed = tables.run_units(units, args, stream)
    if failed is None:
        return [], []
    config = units[0].config
    directory = tables.results_dir(args, config)

    def about(parts):
        """The data set, trials and the schedule of ``parts``, for a figure's title."""
        schedule = schedule_text(config.dataset, config.epochs_scale, config.settings(), parts,
                                 changed=any(config.overrides.values()),
                                 subsampled=bool(config.iterations_per_epoch))
        return '{}, {}; {}'.format(data_set_name(config.dataset), trials_text(trials), schedule)

    ran = [part for part in PART_ORDER if any(part in u.parts for u in units)]
    written = []
    panels = step2_panels(by_panel, [m for m in NAMES if m in args.methods])
    if any(p['curves'] for p in panels):
        written += plots.plot_step2_curves(
            panels, os.path.join(directory, 'figure3'),
            title='Figure 3: test accuracy of the second step, {}'.format(about(ran)))
    series = label_accuracy_series(units)
    if series:
        written += plots.plot_label_accuracy(
            series, os.path.join(directory, 'step1_label_accuracy'),
            title='Step 1: training labels equal to the clean label, {}'.format(
                about(['step1'])))
    matrices = confusion_matrices(by_panel, config.spec.n_classes)
    if matrices:
        written += plots.plot_confusion(
            matrices, [str(k) for k in range(config.spec.n_classes)],
            os.path.join(directory, 'step1_confusion'),
            title='Step 1: corrected against clean training labels, {}'.format(
                about(['step1'])))
    if written:
        written.append(report.write_report(directory))
    return written, failed


def main(argv=None):
    args = parser().parse_args(argv)
    args.trials = args.trials or 5
    if args.symmetric_rate is None and args.asymmetric_rate is None:
        sys.stderr.write('figure3.py: --symmetric-rate and --asymmetric-rate are both none: '
                         'give a rate to at least one panel\n')
        return 2
    for note in options.merge_notes(args, ('methods', 'devices')):
        sys.stderr.write(note + '\n')
    def work():
        tables.check_places(args)
        return make_figures(args)

    status, made = preflight.guarded(work)
    if status:
        return status
    written, failed = made
    if args.print_commands or args.plan:
        return 0
    if written:
        sys.stdout.write('figures written: {}\n'.format(', '.join(os.path.relpath(p)
                                                                 for p in written)))
    else:
        sys.stdout.write('no finished epochs to draw yet\n')
    if failed:
        sys.stdout.write('{} run(s) failed; run the same command again to resume them\n'.format(
            len(failed)))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

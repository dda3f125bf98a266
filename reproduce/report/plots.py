"""Plots of measured runs: step-2 test-accuracy curves (Figure 3), step-1 label accuracy,
confusion matrices of the corrected labels, and a table's accuracy against noise rate.

``figure_*`` returns the matplotlib figure; ``plot_*`` writes it atomically as
``<path_stem>.png`` and ``.pdf`` and returns the two paths. Accuracies come in as fractions in
[0, 1] and are plotted in %; a method's trials are drawn as their mean over their common prefix
of epochs (a run may still be going), with a band from their minimum to their maximum.
"""
import os

import matplotlib

matplotlib.use('Agg')  # before pyplot is imported: no display is needed or used
import matplotlib.pyplot as plt
import numpy

from reproduce.report import paper
import atomic_files as atomic

FORMATS = ('png', 'pdf')
DPI = 150


def _to_numpy(array):
    """A host numpy copy of ``array`` (numpy, list, or a CuPy array with ``.get()``)."""
    cupy = hasattr(array, 'get') and not isinstance(array, (numpy.ndarray, dict))
    return numpy.asarray(array.get() if cupy else array)


def _save(fig, path_stem):
    """Write ``fig`` as PNG and PDF beside each other, each atomically; close it; return paths.

    ``path_stem`` may end in ``.png`` or ``.pdf``."""
    stem, ext = os.path.splitext(os.fspath(path_stem))
    if ext.lower().lstrip('.') not in FORMATS:
        stem = os.fspath(path_stem)
    paths = ['{}.{}'.format(stem, fmt) for fmt in FORMATS]
    try:
        for path, fmt in zip(paths, FORMATS):
            with atomic.atomic_path(path) as tmp:   # no creation date: same data, same PDF
                fig.savefig(tmp, format=fmt, dpi=DPI, bbox_inches='tight',
                            metadata={'CreationDate': None} if fmt == 'pdf' else None)
    finally:
        plt.close(fig)
    return paths


def _mean_band(trials):
    """Epochs and the mean, minimum and maximum accuracy in % of ``trials`` (``[(epochs,
    accuracies in [0, 1])]``) over their common prefix (their epochs must agree), and their
    number; ``None`` when no trial has a point yet."""
    pairs = []
    for epochs, accuracies in trials:
        epochs = numpy.asarray(_to_numpy(epochs), dtype=numpy.float64).ravel()
        accuracies = numpy.asarray(_to_numpy(accuracies), dtype=numpy.float64).ravel()
        if epochs.shape != accuracies.shape:
            raise ValueError('a trial has {} epochs but {} accuracies'.format(
                epochs.size, accuracies.size))
        if accuracies.size and (numpy.nanmin(accuracies) < 0 or numpy.nanmax(accuracies) > 1):
            raise ValueError('accuracies are fractions in [0, 1] (plotted as %); got values in '
                             '[{}, {}]'.format(numpy.nanmin(accuracies), numpy.nanmax(accuracies)))
        if epochs.size:
            pairs.append((epochs, accuracies))
    if not pairs:
        return None
    n = min(e.size for e, _ in pairs)
    x = pairs[0][0][:n]
    for e, _ in pairs[1:]:
        if not numpy.array_equal(e[:n], x):
            raise ValueError('trials disagree on their epochs: {} vs {}'.format(
                x.tolist(), e[:n].tolist()))
    y = 100.0 * numpy.stack([a[:n] for _, a in pairs])
    return x, y.mean(axis=0), y.min(axis=0), y.max(axis=0), len(pairs)


def _draw_curves(ax, curves, colors):
    """One mean line (and min-max band over >1 trials) per label of ``curves`` on ``ax``."""
    for label, trials in curves.items():
        stats = _mean_band(trials)
        if stats is None:
            continue
        x, mean, low, high, n_trials = stats
        color = colors.setdefault(label, 'C{}'.format(len(colors) % 10))
        shown = label if n_trials == 1 else '{} (mean of {})'.format(label, n_trials)
        ax.plot(x, mean, color=color, linewidth=1.2, label=shown,
                marker='o' if x.size == 1 else None)
        if n_trials > 1:
            ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
    ax.set_xlabel('epoch')
    ax.grid(True, alpha=0.3)
    if ax.get_lines():
        ax.legend(fontsize='small')


def plot_step2_curves(panels, path_stem, title=None):
    """:func:`figure_step2_curves` written as PNG and PDF; returns the two paths."""
    return _save(figure_step2_curves(panels, title), path_stem)


def figure_step2_curves(panels, title=None):
    """Test accuracy (%) per epoch of the second step, one subplot per panel (as Figure 3).

    ``panels``: ``[{"title": str, "curves": {method_label: [(epochs, test_accuracy) per
    trial]}}]``; a method keeps its colour across panels."""
    if not panels:
        raise ValueError('no panels to plot')
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.8), squeeze=False)
    colors = {}
    for ax, panel in zip(axes[0], panels):
        _draw_curves(ax, panel['curves'], colors)
        ax.set_title(panel.get('title', ''))
        ax.set_ylabel('test accuracy (%)')
    if title:
        fig.suptitle(title, fontsize='medium')
    fig.tight_layout()
    return fig


def plot_label_accuracy(series, path_stem, title=None):
    """:func:`figure_label_accuracy` written as PNG and PDF; returns the two paths."""
    return _save(figure_label_accuracy(series, title), path_stem)


def figure_label_accuracy(series, title=None):
    """Accuracy (%) of the corrected labels against the clean labels per epoch of the first step.

    ``series``: ``{setting_label: [(epochs, accuracy) per trial]}``."""
    if not series:
        raise ValueError('no series to plot')
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    _draw_curves(ax, series, {})
    ax.set_ylabel('label accuracy (%)')
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def confusion_counts(clean, corrected, n_classes):
    """``n_classes x n_classes`` int64 counts: entry ``[i, j]`` is the number of samples whose clean
    label is ``i`` and whose corrected (or noisy) label is ``j`` (two 1-D integer arrays)."""
    clean, corrected = _to_numpy(clean), _to_numpy(corrected)
    if clean.ndim != 1 or corrected.shape != clean.shape:
        raise ValueError('expected two 1-D label arrays of the same length, got shapes {} and {}'
                         .format(clean.shape, corrected.shape))
    for name, labels in (('clean', clean), ('corrected', corrected)):
        if labels.size and not numpy.issubdtype(labels.dtype, numpy.integer):
            raise ValueError('{} labels must be integers, got {}'.format(name, labels.dtype))
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError('{} labels must lie in [0, {}), got [{}, {}]'.format(
                name, n_classes, labels.min(), labels.max()))
    flat = clean.astype(numpy.int64) * n_classes + corrected.astype(numpy.int64)
    return numpy.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _row_percent(counts):
    """Each row of ``counts`` as % of its total (an all-zero row stays zero)."""
    counts = numpy.asarray(counts, dtype=numpy.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return 100.0 * numpy.divide(counts, totals, out=numpy.zeros_like(counts), where=totals > 0)


def plot_confusion(matrices, class_names, path_stem, title=None):
    """:func:`figure_confusion` written as PNG and PDF; returns the two paths."""
    return _save(figure_confusion(matrices, class_names, title), path_stem)


def figure_confusion(matrices, class_names, title=None):
    """Row-normalised confusion matrices side by side, the percentage written in every cell.

    ``matrices``: ``[(title, counts)]``, ``counts`` from :func:`confusion_counts`."""
    if not matrices:
        raise ValueError('no matrices to plot')
    c = len(class_names)
    checked = []
    for panel, counts in matrices:
        counts = _to_numpy(counts)
        if counts.shape != (c, c):
            raise ValueError('{!r}: expected a {}x{} matrix, got shape {}'.format(
                panel, c, c, counts.shape))
        checked.append((panel, _row_percent(counts)))
    fig, axes = plt.subplots(1, len(checked), figsize=(4.8 * len(checked) + 0.8, 4.6),
                             squeeze=False, layout='constrained')
    image = None
    for k, (ax, (panel, percent)) in enumerate(zip(axes[0], checked)):
        image = ax.imshow(percent, cmap='Blues', vmin=0.0, vmax=100.0)
        fontsize = 6 if c <= 10 else 4
        for i in range(c):
            for j in range(c):
                ax.text(j, i, '{:.1f}'.format(percent[i, j]), ha='center', va='center',
                        fontsize=fontsize, color='white' if percent[i, j] > 60 else 'black')
        ax.set_xticks(range(c))
        ax.set_yticks(range(c))
        ax.set_xticklabels(class_names, rotation=45, ha='right', fontsize='small')
        ax.set_yticklabels(class_names, fontsize='small')
        ax.set_xlabel('corrected label')
        if k == 0:
            ax.set_ylabel('clean label')
        ax.set_title(panel)
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label='% of the clean class')
    if title:
        fig.suptitle(title, fontsize='medium')
    return fig


#: A method keeps its colour in every figure (the order of the paper's rows).
METHOD_COLORS = {m: 'C{}'.format(k) for k, m in enumerate(paper.METHODS)}
#: How far apart the methods are drawn at one noise rate (share of the rates' span).
DODGE = 0.012
#: The dot plot: how far apart trials of equal accuracy are set (in method slots), and where
#: the mean ± std and the paper's number sit beside a method's trials.
TIE_STEP = 0.1
MEAN_OFFSET = 0.3
PAPER_OFFSET = -0.3
KIND_TITLES = {'best': 'best (test accuracy at the best validation epoch)',
               'last': 'last (test accuracy after the last epoch)'}


def table_about(table, width=110, noise=True):
    """"scikit-learn's digits, symmetric noise, 5 trials (seeds 0, 1, 2, 3, 4); ...": what a
    table's figure shows, for its title (wrapped at ``width`` characters)."""
    import textwrap
    from reproduce.report import table_format
    text = '{}{}, {}; {}'.format(
        table_format.data_set_name(table_format.table_dataset(table)),
        ', {} noise'.format(table['noise']) if noise else '',
        table_format.table_trials_text(table), table_format.table_schedule_text(table))
    return '\n'.join(textwrap.wrap(text, width))


def table_name(table):
    """'Table 2', or 'Table 2 layout' for a data set the paper has no numbers for."""
    return 'Table {}{}'.format(table['table'], '' if table.get('compared_with_paper')
                               else ' layout')


def plot_accuracy_vs_noise(table, path_stem):
    """:func:`figure_accuracy_vs_noise` written as PNG and PDF; returns the two paths."""
    return _save(figure_accuracy_vs_noise(table), path_stem)


def _drawn_rows(table):
    return [row for row in table['rows'] if any(
        c['mean'] is not None or c['paper'] is not None for k in ('best', 'last') for c in row[k])]


def tie_offsets(values, step=TIE_STEP):
    """Offsets along the method axis that set equal ``values`` side by side, centred on 0."""
    groups = {}
    for k, value in enumerate(values):
        groups.setdefault(round(float(value), 9), []).append(k)
    offsets = [0.0] * len(values)
    for members in groups.values():
        for j, k in enumerate(members):
            offsets[k] = (j - (len(members) - 1) / 2.0) * step
    return offsets


def figure_accuracy_vs_noise(table):
    """Test accuracy (%) of a table (:func:`reproduce.batch.tables.build`) at its noise rates, two
    panels (best, last): with one rate :func:`figure_dot_plot`; with several, a line per method
    with error bars, the paper's numbers hollow ("<label> (paper)"); ValueError without rates."""
    if table['noise'] == 'real':
        raise ValueError('Table {} has no noise rates to plot against'.format(table['table']))
    if len(table['rates']) == 1:
        return figure_dot_plot(table)
    rates = 100.0 * numpy.asarray(table['rates'], dtype=numpy.float64)
    drawn = _drawn_rows(table)
    # each method a little to the side, so that error bars at one rate do not hide each other
    span = float(rates.max() - rates.min()) or 10.0
    offsets = {row['method']: (k - (len(drawn) - 1) / 2.0) * DODGE * span
               for k, row in enumerate(drawn)}
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.2), sharey=True, squeeze=False)
    for ax, kind in zip(axes[0], ('best', 'last')):
        for row in drawn:
            color = METHOD_COLORS.get(row['method'], 'k')
            cells = row[kind]
            shifted = rates + offsets[row['method']]
            measured = [(r, c['mean'], c['std'] or 0.0) for r, c in zip(shifted, cells)
                        if c['mean'] is not None]
            if measured:
                x, y, err = map(numpy.asarray, zip(*measured))
                ax.errorbar(x, y, yerr=err, color=color, marker='o', markersize=4, capsize=3,
                            linewidth=1.2, label=row['label'])
            published = [(r, c['paper']) for r, c in zip(shifted, cells)
                         if c['paper'] is not None]
            if published:
                x, y = map(numpy.asarray, zip(*published))
                ax.plot(x, y, linestyle='none', marker='o', markersize=7, markerfacecolor='none',
                        markeredgecolor=color, color=color, label=row['label'] + ' (paper)')
        ax.set_title(KIND_TITLES[kind], fontsize='medium')
        ax.set_xlabel('noise rate (%)')
        ax.set_xticks(rates)
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel('test accuracy (%)')
    names = [r['label'] for r in drawn]
    entries = sorted(zip(*axes[0][0].get_legend_handles_labels()), key=lambda e: (
        names.index(e[1].replace(' (paper)', '')), e[1].endswith('(paper)')))
    if entries:
        fig.legend(*map(list, zip(*entries)), loc='center left', bbox_to_anchor=(1.0, 0.5),
                   fontsize='small')
    fig.suptitle('{}: test accuracy against noise rate; {}'.format(
        table_name(table), table_about(table)), fontsize='medium')
    has_paper = any(c['paper'] is not None for row in drawn for k in ('best', 'last')
                    for c in row[k])
    fig.text(0.5, -0.02, 'lines: this code, mean with error bars of the sample std (ddof 1) over '
             'trials, each method set a little apart at its rate so that the bars stay visible; '
             + ('hollow markers: the paper\'s numbers' if has_paper else
                'the paper has no numbers for this data set'),
             ha='center', fontsize='small')
    fig.tight_layout()
    return fig


def figure_dot_plot(table):
    """Test accuracy (%) at a table's one noise rate, a dot plot per method, two panels (best,
    last): each trial a dot (line labelled with the row label), beside them the mean ± sample
    std ("<label> (mean ± std)") and the paper's number, hollow ("<label> (paper)")."""
    from matplotlib.lines import Line2D
    drawn = _drawn_rows(table)
    rate, noise = table['rates'][0], table['noise']
    at = '{:g}% {} noise'.format(round(100 * rate, 4), noise)
    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 2.2 + 1.5 * len(drawn)), 4.4), sharey=True,
                             squeeze=False)
    has_paper = False
    for ax, kind in zip(axes[0], ('best', 'last')):
        for slot, row in enumerate(drawn):
            color = METHOD_COLORS.get(row['method'], 'k')
            cell = row[kind][0]
            values = list(cell.get('values') or [])
            if values:
                x = [slot + o for o in tie_offsets(values)]
                ax.plot(x, values, linestyle='none', marker='o', markersize=5, alpha=0.85,
                        color=color, label=row['label'])
            if cell['mean'] is not None:
                ax.errorbar([slot + MEAN_OFFSET], [cell['mean']], yerr=[cell['std'] or 0.0],
                            color='k', marker='_', markersize=12, capsize=3, linewidth=1.2,
                            label=row['label'] + ' (mean ± std)')
            if cell['paper'] is not None:
                has_paper = True
                ax.plot([slot + PAPER_OFFSET], [cell['paper']], linestyle='none', marker='o',
                        markersize=8, markerfacecolor='none', markeredgecolor=color,
                        color=color, label=row['label'] + ' (paper)')
        ax.set_title(KIND_TITLES[kind], fontsize='medium')
        ax.set_xticks(range(len(drawn)))
        ax.set_xticklabels([row['label'] for row in drawn], rotation=20, ha='right',
                           fontsize='small')
        ax.set_xlim(-0.6, len(drawn) - 0.4)
        ax.set_xlabel('method (every point at {})'.format(at))
        ax.grid(True, axis='y', alpha=0.3)
    axes[0][0].set_ylabel('test accuracy (%)')
    handles = [Line2D([], [], linestyle='none', marker='o', color='0.4', label='one trial'),
               Line2D([], [], color='k', marker='_', markersize=12,
                      label='mean ± sample std (ddof 1)')]
    if has_paper:
        handles.append(Line2D([], [], linestyle='none', marker='o', markersize=8,
                              markerfacecolor='none', markeredgecolor='0.4',
                              label="the paper's number"))
    fig.legend(handles=handles, loc='center left', bbox_to_anchor=(1.0, 0.5), fontsize='small')
    fig.suptitle('{}: test accuracy at {}, per method; {}'.format(
        table_name(table), at, table_about(table, noise=False)), fontsize='medium')
    fig.text(0.5, -0.04, 'Each dot: one trial (seed) of the method at {}; trials of equal '
             'accuracy are set side by side. Black: the mean ± sample standard deviation '
             '(ddof 1) over the trials. {}'.format(
                 at, 'Hollow circles: the paper\'s numbers.' if has_paper else
                 'The paper has no numbers for this data set.'),
             ha='center', fontsize='small', wrap=True)
    fig.tight_layout()
    return fig

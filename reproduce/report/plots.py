"""Plots of measured runs: step-2 test-accuracy curves (Figure 3), step-1 label accuracy,
confusion matrices of the corrected labels, and a table's accuracy against noise rate.

``figure_*`` returns the matplotlib figure; ``plot_*`` writes it atomically as
``<path_stem>.png`` and ``.pdf`` and returns the two paths. Accuracies come in as fractions in
[0, 1] and are plotted in %; a method's trials are drawn as their mean over their common prefix
of epochs (a run may still be going), with a band from their minimum to their maximum.
Figures are a column (3.5 in) or a page (7 in) wide, with short titles: what ran and on which
schedule is said in report.md, not in the figure."""
import os
import re

import matplotlib

matplotlib.use('Agg')  # before pyplot is imported: no display is needed or used
import matplotlib.pyplot as plt
import numpy

from reproduce.report import paper
import atomic_files as atomic

FORMATS = ('png', 'pdf')
DPI = 200
COLUMN, PAGE = 3.5, 7.0      # figure widths in inches
plt.rcParams.update({'font.size': 8, 'axes.titlesize': 8, 'figure.titlesize': 9,
                     'legend.fontsize': 7, 'xtick.labelsize': 7, 'ytick.labelsize': 7})


def _short(label, clause=False):
    """A row label without its reference number ('Tanaka et al.'); with ``clause``, a title's
    first clause only (up to its first ', ' or '; ': the data set and schedule go to report.md)."""
    label = re.sub(r'\s*\[\d+\]', '', label or '')
    return re.split(r', |; ', label)[0] if clause else label


def _to_numpy(array):
    """A host numpy copy of ``array`` (numpy, list, or a CuPy array with ``.get()``)."""
    cupy = hasattr(array, 'get') and not isinstance(array, (numpy.ndarray, dict))
    return numpy.asarray(array.get() if cupy else array)


def _save(fig, path_stem):
    """Write ``fig`` as PNG and PDF beside each other, each atomically (``path_stem`` may end in
    ``.png`` or ``.pdf``); close it; return paths."""
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
        shown = _short(label) + ('' if n_trials == 1 else ' (mean of {})'.format(n_trials))
        ax.plot(x, mean, color=color, linewidth=1.2, label=shown,
                marker='o' if x.size == 1 else None)
        if n_trials > 1:
            ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
    ax.set_xlabel('epoch')
    ax.grid(True, alpha=0.3)
    if ax.get_lines():
        ax.legend()


def plot_step2_curves(panels, path_stem, title=None):
    """:func:`figure_step2_curves` written as PNG and PDF; returns the two paths."""
    return _save(figure_step2_curves(panels, title), path_stem)


def figure_step2_curves(panels, title=None):
    """Test accuracy (%) per epoch of the second step, one subplot per panel (as Figure 3).

    ``panels``: ``[{"title": str, "curves": {method_label: [(epochs, test_accuracy) per
    trial]}}]``; a method keeps its colour across panels."""
    if not panels:
        raise ValueError('no panels to plot')
    fig, axes = plt.subplots(1, len(panels), figsize=(COLUMN if len(panels) == 1 else PAGE,
                                                      2.8), squeeze=False, layout='constrained')
    colors = {}
    for ax, panel in zip(axes[0], panels):
        _draw_curves(ax, panel['curves'], colors)
        ax.set_title(panel.get('title', ''))
        ax.set_ylabel('test accuracy (%)')
    if title:
        fig.suptitle(_short(title, True))
    return fig


def plot_label_accuracy(series, path_stem, title=None):
    """:func:`figure_label_accuracy` written as PNG and PDF; returns the two paths."""
    return _save(figure_label_accuracy(series, title), path_stem)


def figure_label_accuracy(series, title=None):
    """Accuracy (%) of the corrected labels against the clean labels per epoch of the first step.

    ``series``: ``{setting_label: [(epochs, accuracy) per trial]}``."""
    if not series:
        raise ValueError('no series to plot')
    fig, ax = plt.subplots(figsize=(COLUMN, 2.6), layout='constrained')
    _draw_curves(ax, series, {})
    ax.set_ylabel('label accuracy (%)')
    ax.set_title(_short(title, True))
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
    fig, axes = plt.subplots(1, len(checked), figsize=(COLUMN if len(checked) == 1 else PAGE,
                                                       3.3 if len(checked) == 1 else 3.6),
                             squeeze=False, layout='constrained')
    image = None
    for k, (ax, (panel, percent)) in enumerate(zip(axes[0], checked)):
        image = ax.imshow(percent, cmap='Blues', vmin=0.0, vmax=100.0)
        fontsize = 5 if c <= 10 else 3
        for i in range(c):
            for j in range(c):
                ax.text(j, i, '{:.1f}'.format(percent[i, j]), ha='center', va='center',
                        fontsize=fontsize, color='white' if percent[i, j] > 60 else 'black')
        ax.set_xticks(range(c))
        ax.set_yticks(range(c))
        turn = max(map(len, class_names)) > 2      # long names ('airplane') slanted
        ax.set_xticklabels(class_names, rotation=45 * turn, ha='right' if turn else 'center')
        ax.set_yticklabels(class_names)
        ax.set_xlabel('corrected label')
        if k == 0:
            ax.set_ylabel('clean label')
        ax.set_title(panel)
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label='% of the clean class')
    if title:
        fig.suptitle(_short(title, True))
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
KIND_TITLES = {'best': 'best (at the best validation epoch)', 'last': 'last (after the last epoch)'}


def rate_text(rate):
    """'50 %' of a noise rate (a fraction)."""
    return '{:g} %'.format(round(100 * rate, 4))


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


def _table_axes(table, title):
    """A page-wide figure of two panels (best, last) sharing the accuracy axis, titled
    'Table <n>: <title>'."""
    fig, axes = plt.subplots(1, 2, figsize=(PAGE, 2.9), sharey=True, squeeze=False,
                             layout='constrained')
    for ax, kind in zip(axes[0], ('best', 'last')):
        ax.set_title(KIND_TITLES[kind])
        ax.grid(True, axis='y', alpha=0.3)
    axes[0][0].set_ylabel('test accuracy (%)')
    fig.suptitle('Table {}: {}'.format(table['table'], title))
    return fig, axes[0]


def figure_accuracy_vs_noise(table):
    """Test accuracy (%) of a table (:func:`reproduce.batch.tables.build`) at its noise rates, two
    panels (best, last): with one rate :func:`figure_dot_plot`; with several, a line per method
    with error bars (mean ± std over trials), the paper's numbers hollow ("<label> (paper)");
    ValueError without rates."""
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
    fig, axes = _table_axes(table, 'test accuracy against noise rate')
    for ax, kind in zip(axes, ('best', 'last')):
        for row in drawn:
            color = METHOD_COLORS.get(row['method'], 'k')
            cells = row[kind]
            shifted = rates + offsets[row['method']]
            measured = [(r, c['mean'], c['std'] or 0.0) for r, c in zip(shifted, cells)
                        if c['mean'] is not None]
            if measured:
                x, y, err = map(numpy.asarray, zip(*measured))
                ax.errorbar(x, y, yerr=err, color=color, marker='o', markersize=3, capsize=2,
                            linewidth=1.0, label=_short(row['label']))
            published = [(r, c['paper']) for r, c in zip(shifted, cells) if c['paper'] is not None]
            if published:
                x, y = map(numpy.asarray, zip(*published))
                ax.plot(x, y, linestyle='none', marker='o', markersize=5, markerfacecolor='none',
                        markeredgecolor=color, color=color,
                        label=_short(row['label']) + ' (paper)')
        ax.set_xlabel('noise rate')
        ax.set_xticks(rates, [rate_text(r) for r in table['rates']])
    names = [_short(r['label']) for r in drawn]
    entries = sorted(zip(*axes[0].get_legend_handles_labels()), key=lambda e: (
        names.index(e[1].replace(' (paper)', '')), e[1].endswith('(paper)')))
    if entries:
        fig.legend(*map(list, zip(*entries)), loc='outside lower center', ncol=4)
    return fig


def figure_dot_plot(table):
    """Test accuracy (%) at a table's one noise rate, a dot plot per method, two panels (best,
    last): each trial a dot (line labelled with the row label), beside them the mean ± sample
    std ("<label> (mean ± std)") and the paper's number, hollow ("<label> (paper)")."""
    from matplotlib.lines import Line2D
    drawn = _drawn_rows(table)
    fig, axes = _table_axes(table, 'test accuracy at {} {} noise'.format(
        rate_text(table['rates'][0]), table['noise']))
    has_paper = False
    for ax, kind in zip(axes, ('best', 'last')):
        for slot, row in enumerate(drawn):
            color = METHOD_COLORS.get(row['method'], 'k')
            cell = row[kind][0]
            values = list(cell.get('values') or [])
            if values:
                x = [slot + o for o in tie_offsets(values)]
                ax.plot(x, values, linestyle='none', marker='o', markersize=3, alpha=0.85,
                        color=color, label=row['label'])
            if cell['mean'] is not None:
                ax.errorbar([slot + MEAN_OFFSET], [cell['mean']], yerr=[cell['std'] or 0.0],
                            color='k', marker='_', markersize=8, capsize=2, linewidth=1.0,
                            label=row['label'] + ' (mean ± std)')
            if cell['paper'] is not None:
                has_paper = True
                ax.plot([slot + PAPER_OFFSET], [cell['paper']], linestyle='none', marker='o',
                        markersize=5, markerfacecolor='none', markeredgecolor=color,
                        color=color, label=row['label'] + ' (paper)')
        ax.set_xticks(range(len(drawn)), [_short(row['label']) for row in drawn], rotation=20,
                      ha='right')
        ax.set_xlim(-0.6, len(drawn) - 0.4)
    handles = [Line2D([], [], linestyle='none', marker='o', markersize=3, color='0.4',
                      label='one trial'),
               Line2D([], [], color='k', marker='_', markersize=8, label='mean ± std')]
    if has_paper:
        handles.append(Line2D([], [], linestyle='none', marker='o', markersize=5,
                              markerfacecolor='none', markeredgecolor='0.4',
                              label="the paper's number"))
    fig.legend(handles=handles, loc='outside lower center', ncol=len(handles))
    return fig

"""reproduce.report.plots: what each figure shows (axes, lines, bands, labels, titles, read back from the
matplotlib figure), files written atomically as PNG + PDF, and the confusion counts."""
import os

import numpy
import pytest

from reproduce.report import plots

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def _check_written(paths, directory, stem):
    assert paths == [os.path.join(directory, stem + '.png'), os.path.join(directory, stem + '.pdf')]
    with open(paths[0], 'rb') as f:
        assert f.read(8) == PNG_MAGIC
    with open(paths[1], 'rb') as f:
        assert f.read(5) == b'%PDF-'
    for path in paths:
        assert os.path.getsize(path) > 1000
    # nothing else (no temporary file) is left in the folder
    assert sorted(os.listdir(directory)) == sorted(os.path.basename(p) for p in paths)


def test_step2_curves_with_unequal_trials(tmp_path):
    rng = numpy.random.RandomState(0)
    epochs = numpy.arange(1, 121)
    panels = [
        {'title': 'CIFAR-10, 90% symmetric',
         'curves': {'Our method': [(epochs, rng.uniform(0.5, 0.6, 120)),
                                   (epochs[:80], rng.uniform(0.5, 0.6, 80))],  # unfinished
                    'Tanaka et al. [6]': [(list(epochs), list(rng.uniform(0.4, 0.6, 120)))]}},
        {'title': 'CIFAR-10, 30% asymmetric',
         'curves': {'Our method': [(epochs[:1], [0.9])],       # one point only
                    'Cross Entropy': [([], [])]}},              # nothing yet: omitted
    ]
    fig = plots.figure_step2_curves(panels, title='Figure 3: test accuracy, digits, 2 trials; '
                                                  'SHORTENED schedule (--epochs-scale 0.2)')
    left, right = fig.axes
    assert fig._suptitle.get_text() == 'Figure 3: test accuracy'    # the first clause only
    assert fig.get_size_inches()[0] == plots.PAGE                   # two panels: a page wide
    assert left.get_title() == 'CIFAR-10, 90% symmetric' and left.get_xlabel() == 'epoch'
    assert left.get_ylabel() == 'test accuracy (%)'
    labels = [line.get_label() for line in left.get_lines()]
    assert labels == ['Our method (mean of 2)', 'Tanaka et al.']    # no reference number
    mean = left.get_lines()[0]
    assert len(mean.get_xdata()) == 80                   # the trials' common prefix
    numpy.testing.assert_allclose(mean.get_ydata(), 100 * numpy.mean(
        [panels[0]['curves']['Our method'][0][1][:80],
         panels[0]['curves']['Our method'][1][1]], axis=0))
    assert len(left.collections) == 1                    # one min-max band: the 2-trial method
    assert [line.get_label() for line in right.get_lines()] == ['Our method']  # CE omitted
    assert right.get_lines()[0].get_marker() == 'o'      # a single point is drawn as a marker
    colours = {line.get_label(): line.get_color() for ax in fig.axes for line in ax.get_lines()}
    assert colours['Our method (mean of 2)'] == colours['Our method']   # kept across panels
    paths = plots.plot_step2_curves(panels, str(tmp_path / 'figure3'))
    _check_written(paths, str(tmp_path), 'figure3')


def test_mean_band_uses_the_common_prefix():
    x, mean, low, high, n = plots._mean_band([([1, 2, 3], [0.1, 0.2, 0.3]), ([1, 2], [0.3, 0.4])])
    assert n == 2
    numpy.testing.assert_allclose(x, [1, 2])
    numpy.testing.assert_allclose(mean, [20.0, 30.0])
    numpy.testing.assert_allclose(low, [10.0, 20.0])
    numpy.testing.assert_allclose(high, [30.0, 40.0])
    assert plots._mean_band([([], [])]) is None
    with pytest.raises(ValueError, match='fractions'):
        plots._mean_band([([1, 2], [50.0, 60.0])])
    with pytest.raises(ValueError, match='disagree'):
        plots._mean_band([([1, 2], [0.1, 0.2]), ([2, 3], [0.1, 0.2])])


def test_label_accuracy_plot(tmp_path):
    epochs = numpy.arange(1, 71)
    series = {'sym 50%': [(epochs, numpy.linspace(0.5, 0.9, 70)),
                          (epochs, numpy.linspace(0.5, 0.88, 70))],
              'asym 40%': [(epochs[:30], numpy.linspace(0.6, 0.8, 30))]}
    fig = plots.figure_label_accuracy(series, title='step 1')
    (ax,) = fig.axes
    assert ax.get_title() == 'step 1' and ax.get_ylabel() == 'label accuracy (%)'
    assert fig.get_size_inches()[0] == plots.COLUMN
    assert [line.get_label() for line in ax.get_lines()] == ['sym 50% (mean of 2)', 'asym 40%']
    assert ax.get_lines()[0].get_ydata()[-1] == pytest.approx(89.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        'sym 50% (mean of 2)', 'asym 40%']
    out = tmp_path / 'sub'   # the folder is created
    paths = plots.plot_label_accuracy(series, str(out / 'labels.png'), title='step 1')
    _check_written(paths, str(out), 'labels')


def test_confusion_counts_match_a_loop():
    rng = numpy.random.RandomState(1)
    n_classes = 10
    clean = rng.randint(0, n_classes, 5000)
    corrected = numpy.where(rng.uniform(size=5000) < 0.3, rng.randint(0, n_classes, 5000), clean)
    expected = numpy.zeros((n_classes, n_classes), dtype=numpy.int64)
    for a, b in zip(clean, corrected):
        expected[a, b] += 1
    counts = plots.confusion_counts(clean, corrected, n_classes)
    numpy.testing.assert_array_equal(counts, expected)
    assert counts.dtype == numpy.int64 and counts.sum() == 5000
    # a class that never occurs still gets its row and column
    numpy.testing.assert_array_equal(plots.confusion_counts([0, 0, 2], [0, 2, 2], 4),
                                     [[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    with pytest.raises(ValueError):
        plots.confusion_counts([0, 10], [0, 1], 10)
    with pytest.raises(ValueError):
        plots.confusion_counts([0, 1], [0], 10)
    with pytest.raises(ValueError):
        plots.confusion_counts([0.5, 1.0], [0, 1], 10)


def test_confusion_plot(tmp_path):
    rng = numpy.random.RandomState(2)
    names = ['airplane', 'automobile', 'bird', 'cat', 'deer',
             'dog', 'frog', 'horse', 'ship', 'truck']
    clean = rng.randint(0, 10, 2000)
    noisy = numpy.where(rng.uniform(size=2000) < 0.4, rng.randint(0, 10, 2000), clean)
    counts = plots.confusion_counts(clean, noisy, 10)
    counts[4] = 0  # an empty row is drawn as zeros, not NaN
    matrices = [('noisy', counts), ('corrected', plots.confusion_counts(clean, clean, 10))]
    fig = plots.figure_confusion(matrices, names)
    noisy_ax, corrected_ax = fig.axes[:2]
    assert noisy_ax.get_title() == 'noisy' and noisy_ax.get_ylabel() == 'clean label'
    assert [t.get_text() for t in noisy_ax.get_xticklabels()] == names
    image = noisy_ax.get_images()[0].get_array()
    numpy.testing.assert_allclose(image, plots._row_percent(counts))
    assert numpy.diag(corrected_ax.get_images()[0].get_array()).min() == 100.0
    assert len(noisy_ax.texts) == 100                    # the percentage in every cell
    paths = plots.plot_confusion(matrices, names, str(tmp_path / 'confusion'))
    _check_written(paths, str(tmp_path), 'confusion')
    percent = plots._row_percent(counts)
    numpy.testing.assert_allclose(percent[numpy.arange(10) != 4].sum(axis=1), 100.0)
    assert not percent[4].any()
    with pytest.raises(ValueError, match='matrix'):
        plots.plot_confusion([('bad', counts[:5])], names, str(tmp_path / 'bad'))


def test_the_confusion_figure_keeps_its_title_above_the_panel_titles():
    fig = plots.figure_confusion([('(a) one', numpy.eye(3)), ('(b) two', numpy.eye(3))],
                                 ['0', '1', '2'], title='Step 1: labels, digits, 5 trials')
    try:
        assert fig._suptitle.get_text() == 'Step 1: labels'
        assert [ax.get_title() for ax in fig.axes[:2]] == ['(a) one', '(b) two']
    finally:
        plots.plt.close(fig)


def test_a_table_is_written_without_its_figure_where_matplotlib_is_missing(tmp_path, monkeypatch,
                                                                            capsys):
    """A GPU node without matplotlib (the carried bundle has none) still gets the table's
    Markdown, LaTeX and CSV; the figure is left out with one line saying why."""
    import json
    import sys
    from reproduce.report import table_files
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, 'results', 'recorded', 'digits_cpu_table2.json')) as f:
        table = json.load(f)
    monkeypatch.setitem(sys.modules, 'matplotlib', None)        # import matplotlib fails
    monkeypatch.delitem(sys.modules, 'reproduce.report.plots', raising=False)
    import reproduce.report
    monkeypatch.delattr(reproduce.report, 'plots', raising=False)
    paths = table_files.write_outputs(table, str(tmp_path), 'table2')
    assert sorted(os.path.basename(p) for p in paths) == ['references.bib', 'table2.csv',
                                                         'table2.md', 'table2.tex']
    assert all(os.path.exists(p) for p in paths)
    assert 'figure not written: matplotlib is not importable here' in capsys.readouterr().err

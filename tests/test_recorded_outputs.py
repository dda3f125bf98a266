"""Every label says what ran (issue 24): titles and headers for the digits, CIFAR-10 and shortened
schedules, tables without step 1, PENCIL's stages; the single-rate dot plot; unique LaTeX labels
and the .bib; report.md's order; and the recorded files in results/recorded/ as the current code
writes them from their JSON (nothing is trained here)."""
import copy
import json
import os
import re

import pytest

from reproduce.batch import tables
from reproduce.report import page as report, plots, table_export, table_files, table_format
from reproduce.run.config import RunConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDED = os.path.join(ROOT, 'results', 'recorded')
ALL_PARTS = list(table_format.PART_ORDER)


def recorded(stem):
    with open(os.path.join(RECORDED, stem + '.json')) as f:
        return json.load(f)


def read(name):
    with open(os.path.join(RECORDED, name)) as f:
        return f.read()


STEMS = [stem for stem, _ in report.tables_in(RECORDED)]


# ----------------------------------------------------------------------------------------------
# Titles and headers


def test_the_schedule_is_the_papers_only_on_its_data_sets_at_scale_one():
    cifar = table_format.schedule_text('cifar10', 1, RunConfig(dataset='cifar10').settings(),
                                       ALL_PARTS)
    assert cifar.startswith("the paper's schedule: step 1 200 epochs (labels from epoch 70, "
                            'window 10); step 2, cross entropy and Forward T 120 epochs; ')
    assert "PENCIL 320 epochs (stages 70 + 130 + 120) (PENCIL's published schedule)" in cifar
    short = RunConfig(dataset='cifar10', epochs_scale=0.2)
    text = table_format.schedule_text('cifar10', 0.2, short.settings(), ALL_PARTS)
    assert text.startswith("SHORTENED schedule (--epochs-scale 0.2 of the paper's schedule): "
                           'step 1 40 epochs')
    assert "the paper's schedule:" not in text and 'PENCIL 64 epochs (stages 14 + 26 + 24)' in text
    changed = table_format.schedule_text('cifar10', 1, RunConfig(dataset='cifar10').settings(),
                                         ALL_PARTS, changed=True)
    assert changed.startswith("the paper's schedule, CHANGED by --set:")
    digits = table_format.schedule_text('digits', 1, RunConfig(dataset='digits').settings(),
                                        ALL_PARTS)
    assert digits == ("this package's digits schedule: step 1 40 epochs (labels from epoch 15, "
                      'window 5); step 2, cross entropy and Forward T 30 epochs; PENCIL 50 epochs '
                      '(stages 10 + 20 + 20)')
    assert "paper's" not in digits


def test_only_the_parts_that_ran_are_named():
    settings = RunConfig(dataset='digits').settings()
    text = table_format.schedule_text('digits', 1, settings, ['cross_entropy', 'forward_t'])
    assert text == ("this package's digits schedule: cross entropy and Forward T 30 epochs "
                    "(step 2's schedule)")
    assert table_format.schedule_text('digits', 1, settings, ['pencil']).endswith(
        'PENCIL 50 epochs (stages 10 + 20 + 20)')
    # the epochs the runs recorded win over the settings
    assert 'step 1 7 epochs' in table_format.schedule_text('digits', 1, settings, ['step1'],
                                                           epochs={'step1': 7})


@pytest.mark.parametrize('stem', STEMS)
def test_every_recorded_title_and_header_says_what_ran(stem):
    table = recorded(stem)
    assert table['title'] == table_format.title_text(table)
    header = '\n'.join(table_format.header_lines(table))
    for text in (table['title'], header, table_export.latex_caption(table)):
        assert 'CIFAR-10' not in text and "paper's schedule" not in text
        assert "scikit-learn's digits" in text and "this package's digits schedule" in text
    trials = table['provenance']['trials_requested']
    assert table_format.trials_text(trials) in table['title']
    parts = {run['part'] for run in table['runs']}
    assert ('step 1' in table['title']) == ('step1' in parts)
    assert ('PENCIL' in table['title']) == ('pencil' in parts)
    if 'pencil' in parts:
        stages = table_format.resolved_settings(table)['pencil']['stages']
        assert 'stages {}'.format(' + '.join(map(str, stages))) in header
    scale = table['provenance']['epochs_scale']
    assert ('SHORTENED' in table['title']) == (scale != 1)


def test_the_estimated_t_tables_name_no_step_1():
    for stem in ('digits_cpu_estimated_t_table2', 'digits_cpu_estimated_t_table3'):
        table = recorded(stem)
        assert {run['part'] for run in table['runs']} == {'cross_entropy', 'forward_t'}
        for text in (table['title'], read(stem + '.md'), read(stem + '.tex')):
            assert 'step 1' not in text and '40 epochs' not in text and 'PENCIL' not in text
            assert 'cross entropy and Forward T 30 epochs' in text


def test_pencils_schedule_is_in_the_headers():
    assert 'PENCIL 50 epochs (stages 10 + 20 + 20)' in read('digits_cpu_table2.md')
    assert 'PENCIL 10 epochs (stages 2 + 4 + 4)' in read('digits_regression_table2.md')


# ----------------------------------------------------------------------------------------------
# The single-rate figure: a dot plot per method


def test_one_noise_rate_is_a_dot_plot_with_every_trial():
    table = recorded('digits_cpu_table3')
    fig = plots.figure_accuracy_vs_noise(table)
    try:
        axes = [ax for ax in fig.axes if ax.get_title()]
        rows = [r for r in table['rows'] if r['status'] == 'computed']
        for ax, kind in zip(axes, table_format.KINDS):
            assert ax.get_xlabel() == ''        # the ticks are the methods, without "[6]"
            assert [t.get_text() for t in ax.get_xticklabels()] == [
                report.short_label(r['label']) for r in rows]
            assert list(ax.get_xticks()) == list(range(len(rows)))
            dots = {line.get_label(): line for line in ax.get_lines()}
            bars = {c.get_label(): c for c in ax.containers}
            for slot, row in enumerate(rows):
                cell = row[kind][0]
                line = dots[row['label']]
                assert len(line.get_xdata()) == cell['n'] == len(cell['values'])  # each trial
                assert sorted(line.get_ydata()) == pytest.approx(sorted(cell['values']))
                assert all(abs(x - slot) < 0.3 for x in line.get_xdata())   # in its own slot
                # equal accuracies stand side by side: no two dots in one place
                points = set(zip(line.get_xdata(), line.get_ydata()))
                assert len(points) == cell['n']
                mean = bars[row['label'] + ' (mean ± std)'].lines[0]
                assert mean.get_ydata() == pytest.approx([cell['mean']])
                assert mean.get_xdata() == pytest.approx([slot + plots.MEAN_OFFSET])
                assert line.get_color() == plots.METHOD_COLORS[row['method']]
        # a short title, a page wide; the legend says what a dot and a bar are
        assert fig.texts == [fig._suptitle] and fig.get_size_inches()[0] == plots.PAGE
        assert fig._suptitle.get_text() == 'Table 3: test accuracy at 40 % asymmetric noise'
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert legend == ['one trial', 'mean ± std']
    finally:
        plots.plt.close(fig)


def test_the_dot_plot_shows_the_papers_number_when_there_is_one():
    table = copy.deepcopy(recorded('digits_cpu_table3'))
    for row in table['rows']:
        for kind in table_format.KINDS:
            row[kind][0]['paper'] = 90.0
    fig = plots.figure_accuracy_vs_noise(table)
    try:
        ax = fig.axes[0]
        paper = [line for line in ax.get_lines() if line.get_label().endswith('(paper)')]
        assert len(paper) == len(table['rows'])
        assert all(line.get_markerfacecolor() == 'none' for line in paper)
        assert "the paper's number" in [t.get_text() for t in fig.legends[0].get_texts()]
    finally:
        plots.plt.close(fig)


def test_tie_offsets_set_equal_values_side_by_side():
    offsets = plots.tie_offsets([90.0, 91.0, 90.0, 90.0])
    assert offsets[1] == 0.0
    assert sorted(offsets[k] for k in (0, 2, 3)) == pytest.approx(
        [-plots.TIE_STEP, 0.0, plots.TIE_STEP])


# ----------------------------------------------------------------------------------------------
# LaTeX


def test_latex_labels_are_unique_and_name_table_data_set_and_variant():
    labels = {}
    for name in sorted(os.listdir(RECORDED)):
        if name.endswith('.tex'):
            found = re.findall(r'\\label\{([^}]*)\}', read(name))
            assert len(found) == 1
            labels.setdefault(found[0], []).append(name)
    assert all(len(names) == 1 for names in labels.values()), labels
    assert labels['tab:table2-digits'] == ['digits_cpu_table2.tex']
    assert labels['tab:table2-digits-estimated-t'] == ['digits_cpu_estimated_t_table2.tex']
    assert labels['tab:table3-digits-estimated-t'] == ['digits_cpu_estimated_t_table3.tex']
    assert table_export.latex_label(recorded('digits_regression_table2')) == \
        'tab:table2-digits-x0.2'


def test_latex_caption_stands_apart_from_the_rule_and_cites_from_the_bib():
    bib = read(table_export.BIB_NAME)
    assert bib == table_export.format_bib()
    keys = set(re.findall(r'@\w+\{([^,]+),', bib))
    for name in sorted(os.listdir(RECORDED)):
        if not name.endswith('.tex'):
            continue
        text = read(name)
        assert not re.search(r'\[\d+\]', text)                      # no literal "[5]"
        cited = set(re.findall(r'\\cite\{([^}]*)\}', text))
        assert cited and cited <= keys
        lines = text.splitlines()
        rule = lines.index(r'\toprule')
        assert lines[rule - 2].startswith(r'\vspace') and lines[rule - 1].startswith(
            r'\begin{tabular}')
        caption = re.search(r'\\caption\{(.*)\}\n', text).group(1)
        for word in ('layout', 'SHORTENED', '--', '-{}', 'ddof', 'commit', 'Measured on'):
            assert word not in caption, (name, word)     # no flags and no provenance


# ----------------------------------------------------------------------------------------------
# report.md and the recorded files


def test_report_reads_summary_tables_side_experiments_then_the_regression_reference():
    text = read('report.md')
    headings = [line for line in text.splitlines() if line.startswith('## ')]
    assert headings == ['## Summary', '## Tables 2 and 3', '## Side experiments',
                        '## Regression reference']
    summary = text.split('## Tables 2 and 3')[0]
    assert '| tables | device | exact CPU mode |' in summary and '{"blas"' not in text
    assert 'p 0.0009766 *' in summary and '**Main findings.**' in summary
    order = [text.index('### ' + stem + '\n') for stem in (
        'digits_cpu_table2', 'digits_cpu_table3', 'digits_cpu_estimated_t_table2',
        'digits_cpu_estimated_t_table3', 'digits_regression_table2')]
    assert order == sorted(order)
    regression = text.split('## Regression reference')[1]
    # the provenance names the epochs of the parts that ran only
    estimated_t = text.split('### digits_cpu_estimated_t_table2\n')[1].split('\n### ')[0]
    assert '- epochs: step2 30\n' in estimated_t
    assert '- epochs: pencil 50, step1 40, step2 30\n' in text
    as_written = read('digits_regression_table2.md')
    assert as_written.strip() in re.sub(r'^##(#+) ', r'\1 ', regression, flags=re.MULTILINE)
    assert as_written == table_files.markdown_file(recorded('digits_regression_table2'))


def test_a_partial_table_is_left_out_beside_its_complete_one(tmp_path):
    for name in ('table2.json', 'table2.partial.json', 'table3.partial.json'):
        (tmp_path / name).write_text(json.dumps(recorded('digits_cpu_table2')))
    assert [stem for stem, _ in report.tables_in(str(tmp_path))] == ['table2',
                                                                     'table3.partial']


@pytest.mark.parametrize('stem', STEMS)
def test_recorded_files_are_what_the_code_writes_from_their_json(stem):
    """python -m reproduce.report results/recorded --rewrite leaves them as they are."""
    table = recorded(stem)
    assert read(stem + '.md') == table_files.markdown_file(table)
    if table.get('platform_spread'):
        return
    assert read(stem + '.tex') == table_export.format_latex(table)
    assert read(stem + '.csv') == table_export.format_csv(table)
    assert os.path.exists(os.path.join(RECORDED, stem + '_noise.png'))


def test_rewrite_from_json_changes_only_the_title(tmp_path):
    table = recorded('digits_cpu_estimated_t_table2')
    stale = dict(table, title='Test accuracy for symmetric noise on CIFAR-10 (average of 5 '
                              'trials)')
    path = tmp_path / 'digits_cpu_estimated_t_table2.json'
    path.write_text(json.dumps(stale, indent=1, sort_keys=True) + '\n')
    written = table_files.rewrite_from_json(str(path))
    assert str(path) in written and json.loads(path.read_text()) == table
    names = sorted(os.path.basename(p) for p in written)
    assert names == sorted(['digits_cpu_estimated_t_table2' + ext for ext in (
        '.json', '.md', '.tex', '.csv', '_noise.png', '_noise.pdf')] + ['references.bib'])
    assert table_files.rewrite_from_json(str(path))[0].endswith('.md')   # the JSON is left alone

"""What a table script writes besides its JSON, read back: the Markdown (bold only where best,
trials as a count and seeds, markers), the LaTeX (booktabs) and the CSV parsed back against the
JSON, the accuracy-against-noise figure's lines and labels, and the folder's report.md."""
import copy
import csv
import io
import os
import re

import numpy
import pytest

from reproduce.batch import tables
from reproduce.run.config import RunConfig
from reproduce.report import (aggregate, page as report, plots, significance, table_export,
                              table_format)

RATES = [0.3, 0.5, 0.9]
TRIALS = [0, 1, 2, 3, 4]


def measured_values(method, rate, kind, trial):
    """Made-up accuracies: "ours" beats cross entropy in every trial, Tanaka et al. is ours
    minus noise around zero (no significant difference)."""
    base = {'cross_entropy': 80.0, 'tanaka': 88.0, 'ours': 88.5}[method]
    wiggle = {'cross_entropy': 0.3, 'tanaka': [0.9, -0.8, 0.4, -0.6, 0.2][trial], 'ours': 0.0}
    return base - 20 * rate - (1.0 if kind == 'last' else 0.0) + 0.1 * trial + (
        wiggle[method] if method != 'cross_entropy' else 0.3 * (trial % 2))


@pytest.fixture
def table(monkeypatch):
    """Table 2 on CIFAR-10 with three computed methods over five trials (the others quoted or
    not run), built by tables.build from made-up finished numbers."""
    found = aggregate.Gathered()
    for method in ('cross_entropy', 'tanaka', 'ours'):
        for rate in RATES:
            cell = found.cells.setdefault((method, rate), {'best': [], 'last': [], 'trials': []})
            for trial in TRIALS:
                for kind in tables.KINDS:
                    cell[kind].append(measured_values(method, rate, kind, trial))
                cell['trials'].append(trial)
    monkeypatch.setattr(aggregate, 'gather', lambda runs: found)
    config = RunConfig(dataset='cifar10', noise='symmetric', rate=RATES[0])
    return tables.build(2, [], RATES, TRIALS, ['cross_entropy', 'tanaka', 'ours'], config)


def cell_of(table, method, kind, rate):
    row = next(r for r in table['rows'] if r['method'] == method)
    return row[kind][table['rates'].index(rate)]


def test_the_json_holds_trials_spread_convention_and_comparisons(table):
    ours = cell_of(table, 'ours', 'best', 0.5)
    assert ours['trials'] == TRIALS and ours['n'] == 5
    assert ours['std'] == pytest.approx(numpy.std(ours['values'], ddof=1))
    assert 'ddof 1' in table['spread']
    versus = cell_of(table, 'cross_entropy', 'best', 0.5)['versus_ours']
    assert versus['p_ours_better'] == 1 / 32 and versus['marker'] == significance.BETTER
    assert not cell_of(table, 'tanaka', 'best', 0.5)['versus_ours']['marker']
    assert 'versus_ours' not in ours


def test_markdown_bolds_only_the_best_cell_and_names_trials_and_markers(table):
    text = table_format.format_markdown(table)
    assert '| # |' not in text and '5 trials (seeds 0, 1, 2, 3, 4)' in text
    rows = [line for line in text.splitlines() if line.startswith('| ')]
    body = {tuple(c.strip() for c in line.strip('|').split('|')[:2]): line for line in rows}
    assert body[('Our method', 'best')].count('**') == 2 * len(RATES)
    for method in ('Cross Entropy', 'Tanaka et al. [6]'):
        measured = [line for key, line in body.items() if key[0] == method][0]
        assert '**' not in measured
    ce_best = body[('Cross Entropy', 'best')]
    assert ce_best.count('(3 trials)') == 0 and ce_best.count(' *') == len(RATES)
    assert 'sign-flip' in text and 'ddof 1' in text
    assert 'Paired comparison' in text and 'p 0.03125 *' in text


def test_terminal_shows_markers_and_the_paired_differences(table):
    text = table_format.format_terminal(table)
    assert 'ours − method' in text and 'p 0.03125 *' in text
    assert '5 trials (seeds 0, 1, 2, 3, 4)' in text


LATEX_CELL = re.compile(r'^(\\textbf\{)?([0-9.]+)(?: \$\\pm\$ ([0-9.]+))?\}?(\$\^\{(\*|\\dagger)\}\$)?$')


def parse_latex(text):
    """``{(method label, kind, source): [(mean, std, bold, marker) or paper value]}`` of the
    tabular, and its column names."""
    assert text.count(r'\begin{tabular}') == 1 and text.count(r'\end{tabular}') == 1
    body = text.split(r'\midrule')[1].split(r'\bottomrule')[0]
    header = text.split(r'\toprule')[1].split(r'\midrule')[0]
    columns = [c.strip() for c in header.strip().rstrip('\\').split('&')][2:]
    rows, label = {}, None
    for line in body.strip().splitlines():
        if line.strip() == r'\addlinespace':
            continue
        assert line.endswith(r'\\'), line
        fields = [f.strip() for f in line[:-2].split(' & ')]
        label = fields[0] or label
        kind, source = fields[1], 'measured'
        if kind.endswith('(paper)'):
            kind, source = kind[:-len(' (paper)')], 'paper'
        values = []
        for field in fields[2:]:
            if source == 'paper':
                values.append(None if field == '--' else float(field))
                continue
            match = LATEX_CELL.match(field)
            assert match, field
            values.append((float(match.group(2)), float(match.group(3) or 0),
                           bool(match.group(1)), match.group(5) or ''))
        rows[(label, kind, source)] = values
    return columns, rows


def test_latex_parses_back_to_the_json(table):
    text = table_export.format_latex(table)
    assert text.count('{') == text.count('}')
    for command in (r'\toprule', r'\midrule', r'\bottomrule', r'\caption{', r'\label{'):
        assert command in text
    caption = re.search(r'\\caption\{(.*)\}\n', text).group(1)
    assert caption.startswith("Test accuracy (\\%) for symmetric noise on CIFAR-10, beside the "
                              "paper's numbers (its average of 5 trials). Mean $\\pm$ sample "
                              'standard deviation over 5 trials (seeds 0, 1, 2, 3, 4). Schedule: '
                              "the paper's schedule: step 1 200 epochs")
    for word in ('layout', 'SHORTENED', '--', '-{}', 'ddof', 'commit', 'Table 2'):
        assert word not in caption          # a caption a paper can keep: no flags, provenance
    short = copy.deepcopy(table)
    short['provenance'].update(epochs_scale=0.2, settings_changed=['step2.lr=0.1'])
    assert "Schedule: the paper's schedule at 0.2 of its epochs, settings changed: step 1 " \
        in table_export.latex_caption(short)
    columns, rows = parse_latex(text)
    assert columns == [r'30\%', r'50\%', r'90\%']
    for row in table['rows']:
        label = table_export.latex_method(row['label'])
        for kind in tables.KINDS:
            if row['status'] == 'computed':
                parsed = rows[(label, kind, 'measured')]
                best = table_format.best_of_columns(table)[kind]
                for (mean, std, bold, mark), cell, top in zip(parsed, row[kind], best):
                    assert mean == pytest.approx(cell['mean'], abs=0.005)
                    assert std == pytest.approx(cell['std'], abs=0.005)
                    assert bold == (cell['mean'] == top)
                    assert mark == {'*': '*', '†': r'\dagger', '': ''}[
                        table_format.marker(cell)]
            papers = [c['paper'] for c in row[kind]]
            if any(p is not None for p in papers):
                assert rows[(label, kind, 'paper')] == pytest.approx(papers)
    # a row of the paper not run here (PENCIL) is there with its numbers only
    pencil = table_export.latex_method('PENCIL [3]')
    assert pencil == r'PENCIL~\cite{yi2019pencil}'
    assert (pencil, 'best', 'paper') in rows and (pencil, 'best', 'measured') not in rows


def test_csv_parses_back_to_the_json(table):
    text = table_export.format_csv(table)
    read = list(csv.DictReader(io.StringIO(text)))
    assert tuple(read[0]) == table_export.CSV_FIELDS
    measured = {}
    for line in read:
        key = (line['method'], line['kind'], float(line['rate']))
        if line['source'] == 'measured':
            measured.setdefault(key, []).append((int(line['trial']), float(line['value'])))
        else:
            assert line['source'] == 'paper' and line['trial'] == ''
            assert float(line['value']) == cell_of(table, key[0], key[1], key[2])['paper']
    computed = [r for r in table['rows'] if r['status'] == 'computed']
    assert len(measured) == len(computed) * 2 * len(RATES)
    for (method, kind, rate), pairs in measured.items():
        cell = cell_of(table, method, kind, rate)
        assert [t for t, _ in pairs] == cell['trials']
        assert [v for _, v in pairs] == cell['values']          # full precision
        assert numpy.mean([v for _, v in pairs]) == pytest.approx(cell['mean'])


def test_the_noise_figure_draws_every_method_and_the_papers_numbers(table):
    fig = plots.figure_accuracy_vs_noise(table)
    try:
        # a short title (what ran and on which schedule is in report.md), a page wide
        assert fig._suptitle.get_text() == 'Table 2: test accuracy against noise rate'
        assert fig.get_size_inches()[0] == plots.PAGE and fig.texts == [fig._suptitle]
        axes = [ax for ax in fig.axes if ax.get_title()]
        assert [ax.get_title().split()[0] for ax in axes] == ['best', 'last']
        for ax, kind in zip(axes, tables.KINDS):
            assert ax.get_xlabel() == 'noise rate'
            assert [t.get_text() for t in ax.get_xticklabels()] == ['30 %', '50 %', '90 %']
            bars = {c.get_label(): c for c in ax.containers}
            for method in ('cross_entropy', 'tanaka', 'ours'):
                row = next(r for r in table['rows'] if r['method'] == method)
                line = bars[plots._short(row['label'])].lines[0]
                assert line.get_ydata() == pytest.approx([c['mean'] for c in row[kind]])
                assert line.get_xdata() == pytest.approx([100 * r for r in RATES], abs=2.0)
                assert line.get_color() == plots.METHOD_COLORS[method]
            paper = {line.get_label(): line for line in ax.get_lines()
                     if line.get_label().endswith('(paper)')}
            ours = paper['Our method (paper)']
            assert ours.get_markerfacecolor() == 'none'
            assert ours.get_markeredgecolor() == plots.METHOD_COLORS['ours']
            assert ours.get_ydata() == pytest.approx(
                [c['paper'] for c in next(r for r in table['rows']
                                          if r['method'] == 'ours')[kind]])
            assert 'PENCIL (paper)' in paper and 'PENCIL' not in bars   # not run here
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert 'Our method' in legend and 'Our method (paper)' in legend
        assert 'Tanaka et al.' in legend and not any('[' in t for t in legend)
    finally:
        plots.plt.close(fig)


def test_the_noise_figure_says_when_the_paper_has_no_numbers(table):
    bare = copy.deepcopy(table)
    for row in bare['rows']:
        for kind in tables.KINDS:
            for cell in row[kind]:
                cell['paper'] = None
    fig = plots.figure_accuracy_vs_noise(bare)
    try:
        assert not any('(paper)' in t.get_text() for t in fig.legends[0].get_texts())
        assert not any(line.get_label().endswith('(paper)')
                       for ax in fig.axes for line in ax.get_lines())
    finally:
        plots.plt.close(fig)


def test_clothing1m_has_no_noise_figure(table):
    with pytest.raises(ValueError, match='no noise rates'):
        plots.figure_accuracy_vs_noise(dict(table, noise='real', table=4))


def test_write_puts_every_format_and_the_report_in_the_folder(table, tmp_path):
    paths = tables.write(table, str(tmp_path), 'table2')
    names = sorted(os.path.basename(p) for p in paths)
    assert names == sorted(['table2.json', 'table2.md', 'table2.tex', 'table2.csv',
                            'references.bib', 'table2_noise.png', 'table2_noise.pdf',
                            'report.md'])
    assert not [n for n in os.listdir(str(tmp_path)) if n.endswith('.tmp')]
    (tmp_path / 'figure3.png').write_bytes((tmp_path / 'table2_noise.png').read_bytes())
    text = open(report.write_report(str(tmp_path))).read()
    assert '![table2: test accuracy against noise rate](table2_noise.png)' in text
    assert '![figure3](figure3.png)' in text and 'Figure 3' in text
    assert table_format.format_markdown(table).splitlines()[-1] in text
    for link in re.findall(r'\]\(([^)#]+)\)', text):
        assert (tmp_path / link).exists(), link
    assert '#### Settings and provenance of table2' in text


def test_report_of_an_empty_folder_says_so(tmp_path):
    assert 'Nothing to report yet' in report.build_report(str(tmp_path))
    assert report.main([str(tmp_path / 'missing')]) == 2


def test_the_title_says_what_ran_on_cifar10(table):
    """The paper's data set at scale 1: "the paper's schedule", of the parts that ran only (no
    PENCIL or Forward T here), the trials and the paper's own trial count kept apart."""
    assert table['title'] == table_format.title_text(table)
    assert table['title'] == (
        "Table 2: test accuracy (%) for symmetric noise on CIFAR-10, beside the paper's numbers "
        "(its average of 5 trials); 5 trials (seeds 0, 1, 2, 3, 4); the paper's schedule: step 1 "
        '200 epochs (labels from epoch 70, window 10); step 2 and cross entropy 120 epochs')
    header = table_format.header_lines(table)
    assert header[0] == table_format.table_subject(table)
    short = copy.deepcopy(table)
    short['provenance']['epochs_scale'] = 0.5
    short['provenance']['epochs'] = {'step1': 100, 'step2': 60, 'pencil': 160}
    short['settings']['epochs_scale'] = 0.5
    title = table_format.title_text(short)
    assert "SHORTENED schedule (--epochs-scale 0.5 of the paper's schedule): step 1 100 " \
        'epochs (labels from epoch 35, window 5); step 2 and cross entropy 60 epochs' in title
    assert "the paper's schedule:" not in title
    for row in short['rows']:
        for kind in tables.KINDS:
            for cell in row[kind]:
                cell['trials'] = [0, 1, 2] if cell.get('trials') else cell.get('trials')
    assert '5 trials (seeds 0, 1, 2, 3, 4); finished: 0, 1, 2;' in \
        table_format.title_text(short)

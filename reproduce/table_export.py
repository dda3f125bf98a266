"""A table in the formats other tools read: LaTeX for a paper, CSV for analysis.

* :func:`format_latex`: a ``table`` environment with a booktabs ``tabular`` (``\\toprule``,
  ``\\midrule``, ``\\bottomrule``; needs ``\\usepackage{booktabs}``): one row per method and kind
  with ``mean $\\pm$ std`` per column, the best measured cell of each column and kind in bold, the
  significance marker (:mod:`reproduce.significance`) as a superscript, and the paper's numbers on
  a second row below a measured one (quoted methods: the paper's row alone). The caption states
  the data set, noise, schedule, trials, the spread's convention and the markers.
* :func:`format_csv`: one row per measured number (method, kind, rate, trial, value) and one per
  published number (``source`` = ``paper``, no trial).
"""
import csv
import io

from reproduce import significance
from reproduce.table_format import KINDS, best_of_columns, column_name, marker, trials_text

#: The CSV's columns.
CSV_FIELDS = ('table', 'dataset', 'noise', 'method', 'label', 'kind', 'rate', 'trial', 'value',
              'source')
_LATEX_SPECIAL = {'\\': r'\textbackslash{}', '&': r'\&', '%': r'\%', '$': r'\$', '#': r'\#',
                  '_': r'\_', '{': r'\{', '}': r'\}', '~': r'\textasciitilde{}',
                  '^': r'\textasciicircum{}'}
_LATEX_MARKERS = {significance.BETTER: '$^{*}$', significance.WORSE: '$^{\\dagger}$'}


def latex_escape(text):
    """``text`` with LaTeX's special characters escaped."""
    return ''.join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _latex_cell(cell, best):
    if cell['mean'] is None:
        return '--'
    text = '{:.2f}'.format(cell['mean'])
    if cell['n'] > 1:
        text += r' $\pm$ {:.2f}'.format(cell['std'])
    if cell['mean'] == best:
        text = r'\textbf{' + text + '}'
    return text + _LATEX_MARKERS.get(marker(cell), '')


def _latex_paper(cell):
    if cell['paper'] is None:
        return '--'
    return '{:.{d}f}'.format(cell['paper'], d=cell.get('paper_decimals', 2))


def latex_caption(table):
    """The caption: what was measured, how, and what bold and the markers mean."""
    prov = table['provenance']
    scale = prov['epochs_scale']
    schedule = "the paper's schedule" if scale == 1 else \
        "schedules shortened to {:g} of the paper's".format(scale)
    parts = [r'Test accuracy (\%) on {} with {} noise, {}, {}.'.format(
        latex_escape(table['dataset']), latex_escape(table['noise']), latex_escape(schedule),
        latex_escape(trials_text(prov['trials_requested']))),
        r'Mean $\pm$ {}.'.format(latex_escape(table.get('spread', 'standard deviation'))),
        'Bold: the best measured cell of its column and kind.']
    if table['compared_with_paper']:
        parts.append("Rows marked ``paper'': the published numbers, not measured here.")
    if any(c.get('versus_ours') for r in table['rows'] for k in KINDS for c in r[k]):
        parts.append(
            r'$^{{*}}$/$^{{\dagger}}$: ours is better/worse than this method in this column '
            r'(exact paired sign-flip test over the shared trials, one-sided, $p<{level:g}$; '
            r'none with fewer than {k} shared trials; with $n$ trials $p\geq 2^{{-n}}$).'.format(
                level=significance.LEVEL, k=significance.MIN_TRIALS))
    if prov.get('devices'):
        parts.append('Measured on {} at commit {}.'.format(
            latex_escape('; '.join(prov['devices'])),
            latex_escape(', '.join(c[:12] for c in prov['commits']))))
    return ' '.join(parts)


def format_latex(table, label=None):
    """The table as a LaTeX ``table`` environment (booktabs)."""
    columns = [latex_escape(column_name(table, r)) for r in table['rates']]
    best = best_of_columns(table)
    lines = [r'% written by reproduce/table{}.py; needs \usepackage{{booktabs}}'.format(
        table['table']),
        r'\begin{table}[t]', r'\centering',
        r'\caption{' + latex_caption(table) + '}',
        r'\label{' + (label or 'tab:table{}-{}'.format(table['table'], table['dataset'])) + '}',
        r'\begin{tabular}{ll' + 'c' * len(columns) + '}', r'\toprule',
        'Method & & ' + ' & '.join(columns) + r' \\', r'\midrule']
    for row in table['rows']:
        if row['status'] != 'computed' and all(c['paper'] is None for k in KINDS
                                                for c in row[k]):
            continue
        name = latex_escape(row['label'])
        for k, kind in enumerate(KINDS):
            cells = row[kind]
            head = name if k == 0 else ''
            if row['status'] == 'computed':
                lines.append('{} & {} & {} \\\\'.format(head, kind, ' & '.join(
                    _latex_cell(c, b) for c, b in zip(cells, best[kind]))))
                if any(c['paper'] is not None for c in cells):
                    lines.append(' & {} (paper) & {} \\\\'.format(kind, ' & '.join(
                        _latex_paper(c) for c in cells)))
            elif any(c['paper'] is not None for c in cells):
                lines.append('{} & {} (paper) & {} \\\\'.format(head, kind, ' & '.join(
                    _latex_paper(c) for c in cells)))
        lines.append(r'\addlinespace')
    if lines[-1] == r'\addlinespace':
        lines.pop()
    lines += [r'\bottomrule', r'\end{tabular}', r'\end{table}']
    return '\n'.join(lines) + '\n'


def csv_rows(table):
    """The CSV's rows as dicts (:data:`CSV_FIELDS`): every measured trial and every published
    number of the table."""
    rows = []
    common = {'table': table['table'], 'dataset': table['dataset'], 'noise': table['noise']}
    for row in table['rows']:
        for kind in KINDS:
            for cell in row[kind]:
                base = dict(common, method=row['method'], label=row['label'], kind=kind,
                            rate=cell['rate'])
                for trial, value in zip(cell.get('trials') or [], cell.get('values', [])):
                    rows.append(dict(base, trial=trial, value=value, source='measured'))
                if cell['paper'] is not None:
                    rows.append(dict(base, trial='', value=cell['paper'], source='paper'))
    return rows


def format_csv(table):
    """The table as CSV text (header :data:`CSV_FIELDS`; values in percent, full precision)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator='\n')
    writer.writeheader()
    for row in csv_rows(table):
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return out.getvalue()

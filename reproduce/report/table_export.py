"""A table in the formats other tools read: LaTeX for a paper (:func:`format_latex`, its
references in ``references.bib``), CSV for analysis (:func:`format_csv`: one row per measured
trial and one per published number)."""
import csv
import io
import re

from reproduce.report import significance, table_format
from reproduce.report.table_format import best_of_columns, column_name, KINDS, marker

#: The CSV's columns.
CSV_FIELDS = ('table', 'dataset', 'noise', 'method', 'label', 'kind', 'rate', 'trial', 'value',
              'source')
_LATEX_SPECIAL = {'\\': r'\textbackslash{}', '&': r'\&', '%': r'\%', '$': r'\$', '#': r'\#',
                  '_': r'\_', '{': r'\{', '}': r'\}', '~': r'\textasciitilde{}',
                  '^': r'\textasciicircum{}'}
_LATEX_MARKERS = {significance.BETTER: '$^{*}$', significance.WORSE: '$^{\\dagger}$'}
#: The BibTeX file written beside the tables.
BIB_NAME = 'references.bib'
#: The methods' references by their number in the paper (the ``[n]`` of the row labels):
#: ``(cite key, author-year text, BibTeX entry)``. Patrini et al.'s and Tanaka et al.'s were
#: checked against the CVF open-access pages; Yi and Wu's and Vahdat's are not checked yet.
REFERENCES = {
    3: ('yi2019pencil', 'Yi and Wu, 2019', """@inproceedings{yi2019pencil,
  author = {Yi, Kun and Wu, Jianxin},
  title = {Probabilistic End-to-end Noise Correction for Learning with Noisy Labels},
  booktitle = {Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year = {2019}
}"""),
    5: ('patrini2017making', 'Patrini et al., 2017', """@inproceedings{patrini2017making,
  author = {Patrini, Giorgio and Rozza, Alessandro and Krishna Menon, Aditya and Nock, Richard and Qu, Lizhen},
  title = {Making Deep Neural Networks Robust to Label Noise: A Loss Correction Approach},
  booktitle = {Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages = {1944--1952},
  year = {2017}
}"""),
    6: ('tanaka2018joint', 'Tanaka et al., 2018', """@inproceedings{tanaka2018joint,
  author = {Tanaka, Daiki and Ikami, Daiki and Yamasaki, Toshihiko and Aizawa, Kiyoharu},
  title = {Joint Optimization Framework for Learning with Noisy Labels},
  booktitle = {Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages = {5552--5560},
  year = {2018}
}"""),
    16: ('vahdat2017toward', 'Vahdat, 2017', """@inproceedings{vahdat2017toward,
  author = {Vahdat, Arash},
  title = {Toward Robustness against Label Noise in Training Deep Discriminative Neural Networks},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year = {2017}
}"""),
}
_CITATION = re.compile(r'\s*\[(\d+)\]')


def format_bib():
    """``references.bib``: the BibTeX entries of every method cited in the tables."""
    return ('% written by reproduce/report/table_export.py: the references of the methods in the '
            'tables (\\cite keys of their .tex)\n\n'
            + '\n\n'.join(entry for _, _, entry in REFERENCES.values()) + '\n')


def latex_method(label):
    """A row label in LaTeX: escaped, its ``[n]`` reference as ``~\\cite{key}``."""
    return _CITATION.sub(lambda m: '~\\cite{{{}}}'.format(REFERENCES[int(m.group(1))][0])
                         if int(m.group(1)) in REFERENCES else m.group(0), latex_escape(label))


def table_variant(table):
    """What sets a table apart from the default run of its table and data set, as label words
    (empty for the default)."""
    from reproduce.run.data import DATA_SETS
    settings = table.get('settings') or {}
    prov = table.get('provenance') or {}
    words = []
    scale = prov.get('epochs_scale', settings.get('epochs_scale', 1))
    if scale != 1:
        words.append('x{:g}'.format(scale))
    if prov.get('iterations_per_epoch'):
        words.append('i{}'.format(prov['iterations_per_epoch']))
    dataset = table_format.table_dataset(table)
    transition = settings.get('transition') or prov.get('transition')
    spec = DATA_SETS.get(dataset)
    if transition and spec is not None and transition != spec.transition:
        words.append({'estimate': 'estimated-t', 'true': 'true-t'}.get(
            transition, 't-' + re.sub(r'\.npy$', '', transition)))
    if settings.get('mixup_weight', 1) != 1:
        words.append('lmix-weight-{:g}'.format(settings['mixup_weight']))
    for key, default, word in (
            ('lc_on', 'clean', 'lc-mixed'), ('step1_labels', 'soft', 'step1-hard'),
            ('step2_labels', 'soft', 'step2-hard'), ('step2_init', 'fresh', 'step2-from-step1')):
        if settings.get(key, default) != default:
            words.append(word)
    if prov.get('pretrained_weights') is False:
        words.append('random-weights')
    words += ['set-' + change for change in prov.get('settings_changed') or []]
    return [re.sub(r'[^A-Za-z0-9.]+', '-', w).strip('-') for w in words]


def latex_label(table):
    """``tab:table<N>-<data set>[-<variant>...]``: unique per table, data set and variant."""
    return '-'.join(['tab:table{}'.format(table['table']), table_format.table_dataset(table)]
                    + table_variant(table))


def latex_escape(text):
    """``text`` with LaTeX's special characters escaped."""
    text = ''.join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    return re.sub(r'-(?=-)', '-{}', text)      # '--epochs-scale', not an en dash


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
    return '--' if cell['paper'] is None else '{:.{d}f}'.format(
        cell['paper'], d=cell.get('paper_decimals', 2))


def latex_caption(table):
    """The caption a paper can keep: what was measured, on what, over which trials and schedule,
    and what bold and the markers mean (the provenance stays in report.md and the JSON)."""
    subject = re.sub(r'^Table \d+( layout)?: ', '', table_format.table_subject(table))
    parts = ['{}.'.format(latex_escape(subject[0].upper() + subject[1:])),
             r'Mean $\pm$ sample standard deviation over {}.'.format(
                 latex_escape(table_format.table_trials_text(table))),
             'Schedule: {}.'.format(latex_escape(table_format.table_schedule_text(table, True))),
             'Bold: the best measured cell of its column and kind.']
    if table['provenance'].get('settings_changed'):
        parts.append('Settings changed from the defaults: {}.'.format(
            latex_escape(', '.join(table['provenance']['settings_changed']))))
    if table['compared_with_paper']:
        parts.append("Rows marked ``paper'': the published numbers, not measured here.")
    if any(c.get('versus_ours') for r in table['rows'] for k in KINDS for c in r[k]):
        parts.append(
            r'$^{{*}}$/$^{{\dagger}}$: ours is better/worse than this method in this column '
            r'(exact paired sign-flip test over the shared trials, one-sided, $p<{level:g}$; '
            r'none with fewer than {k} shared trials; with $n$ trials $p\geq 2^{{-n}}$).'.format(
                level=significance.LEVEL, k=significance.MIN_TRIALS))
    return ' '.join(parts)


def format_latex(table, label=None):
    """The table as a LaTeX ``table`` environment (booktabs): a row per method and kind (the
    best of each column in bold, the significance marker as a superscript), the paper's numbers
    on a row below; caption :func:`latex_caption`, label :func:`latex_label`."""
    columns = [latex_escape(column_name(table, r)) for r in table['rates']]
    best = best_of_columns(table)
    lines = [r'% written by reproduce/table{}.py; needs \usepackage{{booktabs}} and the '
             r'references of {} (\bibliography{{{}}})'.format(table['table'], BIB_NAME,
                                                              BIB_NAME[:-len('.bib')]),
             r'\begin{table}[t]', r'\centering',
             r'\caption{' + latex_caption(table) + '}',
             r'\label{' + (label or latex_label(table)) + '}',
             r'\vspace{0.5\baselineskip}',
             r'\begin{tabular}{ll' + 'c' * len(columns) + '}', r'\toprule',
        'Method & & ' + ' & '.join(columns) + r' \\', r'\midrule']
    for row in table['rows']:
        if row['status'] != 'computed' and all(c['paper'] is None for k in KINDS
                                                for c in row[k]):
            continue
        name = latex_method(row['label'])
        for k, kind in enumerate(KINDS):
            cells = row[kind]
            head = name if k == 0 else ''
            if row['status'] == 'computed':
                lines.append('{} & {} & {} \\\\'.format(head, kind, ' & '.join(
                    _latex_cell(c, b) for c, b in zip(cells, best[kind]))))
                head = ''
            if any(c['paper'] is not None for c in cells):
                lines.append('{} & {} (paper) & {} \\\\'.format(head, kind, ' & '.join(
                    _latex_paper(c) for c in cells)))
        lines.append(r'\addlinespace')
    if lines[-1] == r'\addlinespace':
        lines.pop()
    lines += [r'\bottomrule', r'\end{tabular}', r'\end{table}']
    return '\n'.join(lines) + '\n'


def format_csv(table):
    """The table as CSV text (header :data:`CSV_FIELDS`): every measured trial and every
    published number, in percent, full precision."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow(CSV_FIELDS)
    for row in table['rows']:
        for kind in KINDS:
            for cell in row[kind]:
                found = [(t, v, 'measured') for t, v in zip(cell.get('trials') or [],
                                                            cell.get('values', []))]
                if cell['paper'] is not None:
                    found.append(('', cell['paper'], 'paper'))
                writer.writerows([repr(v) if isinstance(v, float) else v for v in (
                    table['table'], table['dataset'], table['noise'], row['method'],
                    row['label'], kind, cell['rate'], trial, value, source)]
                    for trial, value, source in found)
    return out.getvalue()

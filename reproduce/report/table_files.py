"""A table's files beside its JSON, each written atomically: Markdown, LaTeX, CSV, the
references of the LaTeX and the accuracy-against-noise figure."""
import os
import sys

from reproduce.report import regression, table_export
from reproduce.report.table_format import format_markdown, title_text
from reproduce.run import rundir
import atomic_files as atomic

#: The suffix of a table's accuracy-against-noise figure.
NOISE_FIGURE = '_noise'


def markdown_file(table):
    """The text of a table's ``.md``: the table (:func:`format_markdown`) and, for a recorded
    regression reference, its spread across CPU numerics settings."""
    text = format_markdown(table)
    if table.get('platform_spread'):
        text += regression.spread_markdown(table)
    return text


def write_outputs(table, directory, name):
    """Everything a table's JSON gives, written atomically beside it: ``name``.md, and unless the
    table is a regression reference (``platform_spread``: its .json and .md only) ``name``.tex,
    .csv, the references of the .tex (``references.bib``) and (Tables 2 and 3) the accuracy
    against noise rate as ``name``_noise.png and .pdf. Returns the paths."""
    paths = [os.path.join(directory, name + '.md')]
    atomic.write_text(paths[0], markdown_file(table))
    if table.get('platform_spread'):
        return paths
    paths += [os.path.join(directory, name + ext) for ext in ('.tex', '.csv')]
    atomic.write_text(paths[1], table_export.format_latex(table))
    atomic.write_text(paths[2], table_export.format_csv(table))
    paths.append(os.path.join(directory, table_export.BIB_NAME))
    atomic.write_text(paths[-1], table_export.format_bib())
    if table['noise'] != 'real':
        try:
            from reproduce.report import plots
        except ImportError as error:     # a GPU node without matplotlib: the tables still come
            sys.stderr.write('figure not written: matplotlib is not importable here ({})\n'.format(
                error))
            return paths
        paths += plots.plot_accuracy_vs_noise(table, os.path.join(directory, name + NOISE_FIGURE))
    return paths


def rewrite_from_json(path):
    """Writes a table's files again from its JSON with this code, without running anything:
    its ``title`` (:func:`reproduce.report.table_format.title_text`, the one field that changes; the
    JSON is rewritten only when it differs) and every output of :func:`write_outputs`. Returns
    the paths written."""
    table = rundir.read_json(path)
    if not (isinstance(table, dict) and isinstance(table.get('rows'), list) and 'table' in table):
        raise ValueError('{} is not a table file'.format(path))
    directory, name = os.path.split(os.path.abspath(path))
    name = name[:-len('.json')] if name.endswith('.json') else name
    paths = []
    title = title_text(table)
    if table.get('title') != title:
        table['title'] = title
        atomic.write_json(path, table)
        paths.append(path)
    return paths + write_outputs(table, directory, name)

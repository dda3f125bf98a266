"""README's measured numbers, generated from the recorded files (``results/recorded/``).

README holds blocks between ``<!-- results:begin NAME -->`` and ``<!-- results:end NAME -->``
(a table, or a phrase inside a sentence); ``python -m reproduce.report --readme`` writes them
from the files and ``tests/test_readme_results.py`` fails where README and the files disagree.
Only tables and computed sentences are made here; what they mean is said once, by hand, in the
folder READMEs."""
import os
import re
import sys

from reproduce import REPOSITORY
from reproduce.report import page, paper
import atomic_files as atomic

RECORDED = os.path.join(REPOSITORY, 'results', 'recorded')
README = os.path.join(REPOSITORY, 'README.md')
BLOCK = re.compile(r'(<!-- results:begin (?P<name>[a-z0-9-]+) -->)(?P<body>.*?)'
                   r'(<!-- results:end (?P=name) -->)', re.DOTALL)


def _rate(rate):
    return '{:g} %'.format(round(100 * rate, 4))


def _cell(cell):
    """'90.33 ± 0.78 *' ('–' when nothing was measured)."""
    from reproduce.report import table_format
    if cell is None or cell.get('mean') is None:
        return '–'
    text = '{:.2f}'.format(cell['mean'])
    if cell['n'] > 1 and cell['std']:
        text += ' ± {:.2f}'.format(cell['std'])
    mark = table_format.marker(cell)
    return text + (' ' + mark if mark else '')


def _row(table, method):
    return next((r for r in table['rows'] if r['method'] == method and
                 r.get('status', 'computed') == 'computed'), None)


def _paper_row(published, method, rate):
    """The paper's best / last at ``rate`` for ``method`` (:func:`paper.paper_cell`), or '–'."""
    values = [paper.paper_cell(published, method, rate, kind) for kind in ('best', 'last')]
    if all(v is None for v in values):
        return '–'
    decimals = next((r.get('decimals', 2) for r in published['rows'] if r['method'] == method))
    return ' / '.join('–' if v is None else '{:.{d}f}'.format(v, d=decimals) for v in values)


def _main_tables(directory):
    return [t for _, t in page.ordered(page.tables_in(directory)) if page.role(t) == page.MAIN
            and len(t['rates']) == 1]


def results_block(directory=RECORDED):
    """README's results: this code's main tables (best / last, one column per table) beside
    the paper's numbers at the same noise, then the paired comparison of ours with Tanaka et
    al. and the labels step 1 corrected, with a verdict computed from the p-values."""
    from reproduce.report import significance
    tables = _main_tables(directory)
    if not tables:
        return ''
    columns = [(t, t['rates'][0]) for t in tables]
    published = [paper.load_paper_table(t['table']) for t in tables]
    lines = ['| method | ' + ' | '.join('this code, {}, {} {}: best / last'.format(
        t['dataset'], _rate(rate), t['noise']) for t, rate in columns) + ' | ' + ' | '.join(
        'the paper, CIFAR-10, {} {}'.format(_rate(rate), t['noise']) for t, rate in columns)
        + ' |', '| --- ' * (1 + 2 * len(columns)) + '|']
    for row in tables[0]['rows']:
        measured = [_row(t, row['method']) for t, _ in columns]
        lines.append('| {} | {} | {} |'.format(page.short_label(row['label']), ' | '.join(
            '{} / {}'.format(_cell(m['best'][0]), _cell(m['last'][0])) if m else '–'
            for m in measured), ' | '.join(_paper_row(p, row['method'], rate)
                                          for p, (_, rate) in zip(published, columns))))
    trials = sorted({n for t in tables for r in t['rows'] for n in [r['best'][0].get('n')] if n})
    prov = tables[0]['provenance']
    lines += ['', 'Test accuracy in %, mean ± sample std over {} trials (every seed = the trial '
              'number), {}, commit {}, {}; `*`: ours is better by the exact paired sign-flip '
              'test (one-sided p < 0.05). Files: `results/recorded/digits_cpu_table{{2,3}}.*`; '
              'settings, provenance, figures and every paired comparison: '
              '`results/recorded/report.md`.'.format(
                  ' or '.join(map(str, trials)), ', '.join(prov.get('devices') or []),
                  ', '.join(str(c)[:7] for c in prov.get('commits') or []),
                  str((prov.get('run_dates') or [''])[-1])[:10]), '']
    found, labels = [], []
    for t, rate in columns:
        ours, tanaka = _row(t, 'ours'), _row(t, 'tanaka')
        if ours and tanaka:
            found.append((t, rate, [significance.compare(ours[kind][0], tanaka[kind][0])
                                    for kind in ('best', 'last')]))
        labels += ['{:.1f} % → {:.1f} % at {} {}'.format(e['noisy']['mean'],
                                                          e['corrected']['mean'],
                                                          _rate(e['rate']), t['noise'])
                   for e in t.get('labels', []) if e['corrected']['n']]
    sentences = []
    if labels:
        sentences.append("Step 1's training labels right: {}.".format('; '.join(labels)))
    if found:
        sentences.append('Ours − Tanaka et al., paired: {}.'.format('; '.join(
            '{:+.2f} best (p {}), {:+.2f} last (p {}) at {} {}'.format(
                c[0]['mean_difference'], significance.format_p(c[0]['p_ours_better']),
                c[1]['mean_difference'], significance.format_p(c[1]['p_ours_better']),
                _rate(rate), t['noise']) for t, rate, c in found)))
        sentences.append(_verdict([c for _, _, cs in found for c in cs]))
    return '\n'.join(lines + [' '.join(sentences)])


def _verdict(comparisons):
    """What the paired comparisons of ours with Tanaka et al. establish, at 0.05."""
    n = len(comparisons)
    ahead = sum(c['mean_difference'] > 0 for c in comparisons)
    better = sum(c['p_ours_better'] is not None and c['p_ours_better'] < 0.05 for c in comparisons)
    worse = sum(c.get('p_ours_worse') is not None and c['p_ours_worse'] < 0.05
                for c in comparisons)
    if better == n:
        return ('Ours is ahead of Tanaka et al. in all {} columns, each significant at 0.05: '
                'on digits, these runs show the improvement the paper claims.'.format(n))
    text = 'Ours is ahead of Tanaka et al. in {} of {} columns, significantly (p < 0.05) in {}'\
        .format(ahead, n, better)
    if worse:
        text += ', and significantly behind in {}'.format(worse)
    return text + (': these runs do not establish the paper\'s improvement.' if better == 0
                   else '.')


def platform_spread_phrase(directory=RECORDED):
    """How far the CPU numerics settings moved the regression reference."""
    from reproduce.report import regression
    refs = [t for _, t in page.tables_in(directory) if page.role(t) == page.REGRESSION]
    if not refs:
        return ''
    spread = refs[0]['platform_spread']
    cells, reference = spread['cells'], spread['reference']
    accuracy = max(c['max'] - c['min'] for c in cells if c['quantity'] in regression.KINDS)
    losses = [100 * (c['max'] - c['min']) / c['values'][reference]
              for c in cells if c['quantity'] == 'final_loss']
    return ('test accuracies by up to {:.2f} points and the final training losses by up to '
            '{:.1f} % of their value'.format(accuracy, max(losses)))


def label_update_phrase(directory=RECORDED):
    """Step 1's label accuracy of the regression reference: noisy and corrected."""
    refs = [t for _, t in page.tables_in(directory) if page.role(t) == page.REGRESSION]
    if not refs or not refs[0].get('labels'):
        return ''
    entry = refs[0]['labels'][0]
    return '{:.0f} % instead of about {:.0f} %'.format(entry['noisy']['mean'],
                                                       entry['corrected']['mean'])


def demo_phrase(directory=RECORDED):
    """What ``make demo`` printed (its table kept in ``results/recorded/demo``)."""
    from reproduce.report import significance
    stems = page.tables_in(os.path.join(directory, 'demo'))
    if not stems:
        return ''
    table = stems[0][1]
    labels, ours, parts = table['labels'][0], _row(table, 'ours'), []
    for method in ('cross_entropy', 'tanaka'):
        row = _row(table, method)
        if ours and row:
            parts.append('{} by {}'.format(row['label'].split(' [')[0], ' and '.join(
                '{:+.2f} {} (p {})'.format(c['mean_difference'], kind,
                                           significance.format_p(c['p_ours_better']))
                for kind, c in ((k, significance.compare(ours[k][0], row[k][0]))
                                for k in ('best', 'last')))))
    timing = os.path.join(directory, 'demo', 'timing.md')
    seconds = None
    if os.path.exists(timing):
        with open(timing) as f:
            seconds = int(re.search(r'^seconds: (\d+)$', f.read(), re.M).group(1))
    return ('step 1 raised the share of right training labels from {:.1f} % to {:.1f} %, and ours '
            'was ahead of {} ({} trials){}'.format(
                labels['noisy']['mean'], labels['corrected']['mean'], '; of '.join(parts),
                ours['best'][0]['n'] if ours else 0, '' if seconds is None else
                '; it took {} min {} s from a fresh clone, installation included '
                '(`timing.md`)'.format(seconds // 60, seconds % 60)))


def readme_blocks(directory=RECORDED):
    """``{name: text}`` of README's generated blocks."""
    return {'results': '\n' + results_block(directory) + '\n',
            'platform-spread': platform_spread_phrase(directory),
            'label-update': label_update_phrase(directory),
            'demo': demo_phrase(directory)}


def update_readme(text, blocks):
    """README ``text`` with each generated block replaced by ``blocks[name]``; ValueError for a
    block README has that is not generated, or one generated that README lacks."""
    seen = set()

    def replace(match):
        name = match.group('name')
        if name not in blocks:
            raise ValueError('README has a block {!r} that reproduce.report.readme does not '
                             'generate'.format(name))
        seen.add(name)
        return match.group(1) + blocks[name] + match.group(4)

    updated = BLOCK.sub(replace, text)
    missing = sorted(set(blocks) - seen)
    if missing:
        raise ValueError('README lacks the generated block(s) {} (<!-- results:begin NAME --> '
                         '... <!-- results:end NAME -->)'.format(', '.join(missing)))
    return updated


def readme_main(directory, check, readme=README):
    """``--readme``: README's generated blocks from ``directory``; returns the exit status."""
    with open(readme) as f:
        text = f.read()
    try:
        updated = update_readme(text, readme_blocks(directory))
    except ValueError as error:
        sys.stderr.write('error: {}\n'.format(error))
        return 2
    if updated == text:
        print('{}: its generated blocks agree with {}'.format(os.path.relpath(readme),
                                                              os.path.relpath(directory)))
        return 0
    if check:
        print('{}: its generated blocks differ from {}: run python -m reproduce.report '
              '--readme'.format(os.path.relpath(readme), os.path.relpath(directory)))
        return 1
    atomic.write_text(readme, updated)
    print('written: {}'.format(os.path.relpath(readme)))
    return 0

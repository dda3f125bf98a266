"""README's measured numbers are the recorded files': its generated blocks
(``<!-- results:begin NAME -->`` ... ``<!-- results:end NAME -->``) are made again from
results/recorded/ by ``python -m reproduce.report --readme`` and must equal what README holds."""
import os
import re

import pytest

from reproduce.report import readme as report


@pytest.fixture(scope='module')
def readme():
    with open(report.README) as f:
        return f.read()


@pytest.fixture(scope='module')
def blocks():
    return report.readme_blocks(report.RECORDED)


def test_readme_agrees_with_the_recorded_files(readme, blocks):
    updated = report.update_readme(readme, blocks)
    if updated != readme:
        differ = [m.group('name') for m, n in zip(report.BLOCK.finditer(readme),
                                                  report.BLOCK.finditer(updated))
                  if m.group('body') != n.group('body')]
        pytest.fail('README disagrees with results/recorded/ in block(s) {}: run python -m '
                    'reproduce.report --readme'.format(', '.join(differ)))


def test_the_results_and_both_commands_are_on_the_first_screen(readme):
    """The first 60 lines hold the two commands and the whole generated results table."""
    first = '\n'.join(readme.splitlines()[:60])
    assert 'make demo' in first and 'make test' in first
    section = readme.split('\n## Results\n')[1].split('\n## ')[0]
    table = section.split('<!-- results:begin results -->')[1].split('\n\n')[0].strip()
    assert table.startswith('| method |') and table in first
    assert len(readme.splitlines()) <= 200


def test_the_results_block_says_what_the_paired_test_shows(blocks):
    results = blocks['results']
    assert re.search(r'Ours − Tanaka et al\., paired: [+-]\d+\.\d\d best \(p [\d.]+\)', results)
    assert 'these runs' in results or 'in all' in results


def _comparison(difference, better, worse=0.9):
    return {'mean_difference': difference, 'p_ours_better': better, 'p_ours_worse': worse}


def test_the_verdict_follows_the_p_values():
    significant = [_comparison(1.0, 0.001)] * 4
    assert 'in all 4 columns, each significant' in report._verdict(significant)
    none = [_comparison(0.9, 0.0625)] * 3 + [_comparison(-0.2, 0.6)]
    assert report._verdict(none) == ('Ours is ahead of Tanaka et al. in 3 of 4 columns, '
                                     'significantly (p < 0.05) in 0: these runs do not '
                                     "establish the paper's improvement.")
    mixed = [_comparison(1.0, 0.01), _comparison(-1.0, 0.99, worse=0.01)]
    assert report._verdict(mixed).endswith('in 1, and significantly behind in 1.')


def test_the_phrases_are_the_files(blocks):
    assert blocks['platform-spread'].startswith('test accuracies by up to ')
    assert re.fullmatch(r'\d+ % instead of about \d+ %', blocks['label-update'])
    assert blocks['demo'].startswith('step 1 raised the share of right training labels')
    with open(os.path.join(report.RECORDED, 'demo', 'timing.md')) as f:
        seconds = int(re.search(r'^seconds: (\d+)$', f.read(), re.M).group(1))
    assert blocks['demo'].endswith('it took {} min {} s from a fresh clone, installation '
                                   'included (`timing.md`)'.format(seconds // 60, seconds % 60))


def test_a_changed_number_fails_the_check(readme, blocks, tmp_path):
    line = next(l for l in readme.splitlines() if l.startswith('| Our method |'))
    stale = readme.replace(line, line.replace(' ± ', ' ± 9', 1))
    assert stale != readme and report.update_readme(stale, blocks) == readme
    path = tmp_path / 'README.md'
    path.write_text(stale)
    assert report.readme_main(report.RECORDED, check=True, readme=str(path)) == 1
    assert path.read_text() == stale                                  # --check writes nothing
    assert report.readme_main(report.RECORDED, check=False, readme=str(path)) == 0
    assert path.read_text() == readme


def test_a_missing_or_unknown_block_is_refused(readme, blocks):
    with pytest.raises(ValueError, match='lacks'):
        report.update_readme(readme.replace('<!-- results:begin demo -->', ''), blocks)
    with pytest.raises(ValueError, match='does not generate'):
        report.update_readme(readme + '<!-- results:begin other --><!-- results:end other -->',
                             blocks)
    assert os.path.isdir(report.RECORDED)


def test_the_hand_written_markdown_stays_within_700_lines():
    """README, the folder READMEs and the protocol ledger together (issue 31's budget)."""
    root = os.path.dirname(report.README)
    files = ['README.md', 'reproduce/README.md', 'updaters/README.md', 'datasets/README.md',
             'results/README.md', 'results/PROTOCOL.md']
    total = 0
    for name in files:
        with open(os.path.join(root, name)) as f:
            total += len(f.read().splitlines())
    assert total <= 700, total


def test_the_package_stays_within_its_size():
    """At most 10,500 lines of Python outside tests, no module over 450 (issue 31)."""
    import subprocess
    root = os.path.dirname(report.README)
    tracked = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard',
                              '*.py'], cwd=root, stdout=subprocess.PIPE, text=True).stdout.split()
    sizes = {}
    for name in tracked:
        if not name.startswith('tests/') and os.path.exists(os.path.join(root, name)):
            with open(os.path.join(root, name)) as f:
                sizes[name] = len(f.read().splitlines())
    assert sum(sizes.values()) <= 10500, sum(sizes.values())
    assert max(sizes.values()) <= 450, max(sizes, key=sizes.get)

"""README's measured numbers are the recorded files' (issue 24): its generated blocks
(``<!-- results:begin NAME -->`` ... ``<!-- results:end NAME -->``) are made again from
results/recorded/ by ``python -m reproduce.report --readme`` and must equal what README holds."""
import os

import pytest

from reproduce.report import page as report


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
        old = [m.group('body') for m in report.BLOCK.finditer(readme)]
        new = [m.group('body') for m in report.BLOCK.finditer(updated)]
        differ = [m.group('name') for m, a, b in zip(report.BLOCK.finditer(readme), old, new)
                  if a != b]
        pytest.fail('README disagrees with results/recorded/ in block(s) {}: run python -m '
                    'reproduce.report --readme'.format(', '.join(differ)))


def test_the_results_section_is_generated(readme):
    section = readme.split('\n## Results\n')[1].split('\n## ')[0]
    assert section.strip().startswith('<!-- results:begin results -->')
    assert section.strip().endswith('<!-- results:end results -->')


def test_the_figures_the_issue_found_wrong(blocks):
    """Each figure as the recorded files give it (issue 24's list)."""
    spread = blocks['platform-spread']
    assert 'test accuracies by up to 2.00 points' in spread          # not "up to 3 points"
    assert "label accuracy by up to 1.31 points" in spread           # not "half a point"
    assert "except Tanaka et al.'s second step's (4.6 %)" in spread   # not PENCIL's
    assert blocks['label-update'] == '55 % instead of about 83 %'     # not 88 %
    results = blocks['results']
    assert '2 threads per run' in results and 'one thread' not in results
    assert ('on every seed, where the gain goes down to 1.7 points for Tanaka et al.\'s second '
            'step and 2.3 points for ours') in results
    assert '6-10 points' not in results


def test_a_changed_number_fails_the_check(readme, blocks, tmp_path):
    stale = readme.replace('| Our method | 96.60 ± 1.34 |', '| Our method | 96.70 ± 1.34 |')
    assert stale != readme and report.update_readme(stale, blocks) == readme
    path = tmp_path / 'README.md'
    path.write_text(stale)
    assert report.readme_main(report.RECORDED, check=True, readme=str(path)) == 1
    assert path.read_text() == stale                                  # --check writes nothing
    assert report.readme_main(report.RECORDED, check=False, readme=str(path)) == 0
    assert path.read_text() == readme


def test_a_missing_or_unknown_block_is_refused(readme, blocks):
    with pytest.raises(ValueError, match='lacks'):
        report.update_readme(readme.replace('<!-- results:begin ours-loss -->', ''), blocks)
    with pytest.raises(ValueError, match='does not generate'):
        report.update_readme(readme + '<!-- results:begin other --><!-- results:end other -->',
                             blocks)
    assert os.path.isdir(report.RECORDED)

"""The tables' statistics against hand computations: the sample standard deviation with its
trials, and the exact paired sign-flip test of "ours" against each other method."""
import itertools
import math

import numpy
import pytest

from reproduce.batch import tables
from reproduce.report import aggregate, significance, table_format


def test_stats_use_the_sample_std_and_keep_the_trials():
    cell = aggregate.stats([90.0, 92.0, 97.0], [0, 1, 2])
    mean = (90 + 92 + 97) / 3.0
    by_hand = math.sqrt(((90 - mean) ** 2 + (92 - mean) ** 2 + (97 - mean) ** 2) / 2)
    assert cell['mean'] == pytest.approx(mean) and cell['std'] == pytest.approx(by_hand)
    assert cell['n'] == 3 and cell['trials'] == [0, 1, 2]
    assert aggregate.stats([90.0], [4])['std'] == 0.0
    with pytest.raises(ValueError):
        aggregate.stats([1.0, 2.0], [0])


def test_sign_flip_p_values_of_three_differences_by_hand():
    # the 8 signed sums of 1, 2, 3: 6, 4, 2, 0, 0, -2, -4, -6; observed 6
    greater, less, two_sided = significance.sign_flip_p_values([1.0, 2.0, 3.0])
    assert greater == 1 / 8 and two_sided == 2 / 8 and less == 1.0


def test_sign_flip_p_values_of_four_differences_by_hand():
    # sums of +-1 +-2 +-3 +-4 are 10 - 2 x (the flipped ones' sum); observed 1 - 2 + 3 + 4 = 6.
    # >= 6: flipped sum in {0, 1, 2}: {}, {1}, {2}, so 3 of 16; |sum| >= 6 adds the three
    # mirror images; <= 6: all but the flipped sums 0 and 1, so 14 of 16
    greater, less, two_sided = significance.sign_flip_p_values([1.0, -2.0, 3.0, 4.0])
    assert greater == 3 / 16 and two_sided == 6 / 16 and less == 14 / 16


def test_ties_and_the_smallest_p():
    assert significance.sign_flip_p_values([0.0, 0.0, 0.0]) == (1.0, 1.0, 1.0)
    # five equal gains: only the observed assignment reaches the mean, p = 1/32
    assert significance.sign_flip_p_values([0.5] * 5)[0] == 1 / 32
    # the same numbers given in another order give the same p-values (rounding is tolerated)
    values = [0.1, 0.2, 0.3, -0.05, 0.7]
    assert significance.sign_flip_p_values(values) == \
        significance.sign_flip_p_values(values[::-1])


def test_compare_pairs_by_trial_and_marks_only_with_enough_trials():
    ours = aggregate.stats([95.0, 96.0, 97.0, 98.0, 99.0], [0, 1, 2, 3, 4])
    other = aggregate.stats([94.0, 95.5, 96.0, 96.0, 98.5], [0, 1, 2, 3, 4])
    result = significance.compare(ours, other)
    differences = [1.0, 0.5, 1.0, 2.0, 0.5]
    assert result['trials'] == [0, 1, 2, 3, 4]
    assert result['mean_difference'] == pytest.approx(sum(differences) / 5)
    assert result['p_ours_better'] == 1 / 32 and result['marker'] == significance.BETTER
    assert result['smallest_possible_p'] == 1 / 32
    # reversed roles: ours is worse, marked as such
    worse = significance.compare(other, ours)
    assert worse['p_ours_worse'] == 1 / 32 and worse['marker'] == significance.WORSE
    # only the trials both finished count: 1, 2, 3 here
    partial = significance.compare(aggregate.stats([95.0, 96.0, 97.0, 98.0], [0, 1, 2, 3]),
                                   aggregate.stats([95.5, 96.0, 96.0, 50.0], [1, 2, 3, 4]))
    assert partial['trials'] == [1, 2, 3]
    assert partial['mean_difference'] == pytest.approx((0.5 + 1.0 + 2.0) / 3)
    assert partial['p_ours_better'] == 1 / 8 and partial['marker'] == ''
    # fewer than three shared trials: no p-value, said in words
    few = significance.compare(aggregate.stats([95.0, 96.0], [0, 1]),
                               aggregate.stats([90.0, 91.0], [0, 1]))
    assert few['p_ours_better'] is None and few['note'] == significance.TOO_FEW
    assert few['marker'] == '' and few['mean_difference'] == 5.0


def test_compare_with_ours_fills_every_other_computed_cell():
    def row(method, status, values):
        return {'method': method, 'status': status, 'label': method,
                **{kind: [dict(rate=0.5, paper=None, **aggregate.stats(
                    values, list(range(len(values)))))] for kind in tables.KINDS}}

    rows = [row('cross_entropy', 'computed', [80.0] * 5), row('cnn_crf', 'quoted', []),
            row('ours', 'computed', [90.0, 91.0, 92.0, 93.0, 94.0])]
    tables.compare_with_ours(rows)
    assert rows[0]['best'][0]['versus_ours']['marker'] == significance.BETTER
    assert 'versus_ours' not in rows[1]['best'][0] and 'versus_ours' not in rows[2]['best'][0]


def test_the_summary_marks_the_cells_where_ours_is_significantly_better_or_worse():
    from reproduce.report import aggregate
    from reproduce import summarize
    trials = [0, 1, 2, 3, 4]
    ours = [90.0, 91.0, 92.0, 93.0, 94.0]
    cells = {'ours': ours,
             'tanaka': [v - 1.0 for v in ours],                     # ours ahead on every seed
             'pencil': [v + 0.5 for v in ours],                     # ours behind on every seed
             'cross_entropy': [89.0, 92.0, 91.0, 94.0, 93.0]}       # mixed: not significant
    row = {'dataset': 'digits', 'noise': 'symmetric', 'rate': 0.5}
    for method, values in cells.items():
        for kind in ('best', 'last'):
            row['{}/{}'.format(method, kind)] = aggregate.stats(values, trials)
    summarize.compare_with_ours(row)
    assert 'versus_ours' not in row['ours/best']
    assert row['tanaka/best']['versus_ours']['p_ours_better'] == pytest.approx(1 / 32)
    assert row['pencil/last']['versus_ours']['p_ours_worse'] == pytest.approx(1 / 32)
    # differences +1, -1, +1, -1, +1: 16 of the 32 sign flips reach a sum of +1 or more
    assert row['cross_entropy/best']['versus_ours']['p_ours_better'] == pytest.approx(16 / 32)
    line = summarize.markdown({'cells': [row]}).splitlines()[-1]
    assert '91.00 ± 1.58 (5) *' in line and '92.50 ± 1.58 (5) †' in line
    assert '91.80 ± 1.92 (5) |' in line         # cross entropy: no marker


def test_the_smallest_possible_p_counts_only_the_trials_that_differ():
    # each tie flips onto itself: 2**m distinct sign patterns of the m non-zero differences
    assert significance.smallest_possible_p([1.0, 2.0, 0.5, 1.5, 3.0]) == 1 / 32
    assert significance.smallest_possible_p([1.0, 0.0, 0.5, 1.5, 3.0]) == 1 / 16
    assert significance.smallest_possible_p([1.0, 0.0, 0.5, 0.0, 3.0]) == 1 / 8
    assert significance.smallest_possible_p([0.0, 0.0, 0.0]) == 1.0
    assert significance.smallest_possible_p([]) is None
    # and the test itself reaches exactly that floor: one tie in five, all others gains
    differences = [1.0, 0.0, 0.5, 1.5, 3.0]
    assert significance.sign_flip_p_values(differences)[0] == 1 / 16
    ours = aggregate.stats([91.0, 90.0, 92.0, 93.0, 95.0], [0, 1, 2, 3, 4])
    other = aggregate.stats([90.0, 90.0, 91.5, 91.5, 92.0], [0, 1, 2, 3, 4])
    result = significance.compare(ours, other)
    assert result['smallest_possible_p'] == 1 / 16 and result['p_ours_better'] == 1 / 16
    assert result['marker'] == ''           # five trials, four that differ: no marker possible


@pytest.mark.parametrize('p, printed', [
    (1 / 32, '0.03125'), (1 / 16, '0.0625'), (3 / 32, '0.09375'), (1 / 8, '0.125'),
    (5 / 32, '0.15625'), (7 / 32, '0.21875'), (9 / 32, '0.28125'), (0.5, '0.5'), (1.0, '1'),
    (1 / 64, '0.015625'), (7 / 64, '0.1094'), (1 / 1024, '0.0009766'), (1 / 3, '0.3333'),
])
def test_p_values_print_exactly_when_short_else_with_four_significant_digits(p, printed):
    text = significance.format_p(p)
    assert text == printed
    digits = text.replace('0.', '', 1).lstrip('0')
    assert float(text) == p or len(digits) == 4      # exact, or four significant digits


def test_every_p_of_up_to_five_trials_prints_exactly_and_of_up_to_ten_distinctly():
    """A sign-flip p over n trials is k / 2**n: exact for n <= 5 (the docstring's and
    results/README.md's claim), and for n <= 10 no two such p-values print alike."""
    for k in range(33):
        assert float(significance.format_p(k / 32)) == k / 32, k
    printed = [significance.format_p(k / 1024) for k in range(1025)]
    assert len(set(printed)) == 1025
    assert all(abs(float(t) - k / 1024) <= 5e-4 * k / 1024 for k, t in enumerate(printed))


def test_the_rule_states_one_sided_tests_and_no_multiple_comparison_correction():
    rule = significance.rule()
    assert 'one-sided' in rule and 'not corrected for multiple comparisons' in rule
    assert '5 trials that differ' in rule


def _enumerated(d):
    """Plain numpy: every sign assignment written out, the three p-values counted."""
    d = numpy.asarray(d, dtype=numpy.float64)
    signs = numpy.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    sums, observed = signs @ numpy.abs(d), d.sum()
    slack = 1e-9 * max(1.0, numpy.abs(d).mean()) * d.size
    return (numpy.mean(sums >= observed - slack), numpy.mean(sums <= observed + slack),
            numpy.mean(numpy.abs(sums) >= abs(observed) - slack))


@pytest.mark.parametrize('n', [1, 2, 5, 8, 11, 12])
def test_sign_flip_p_values_match_every_assignment_written_out(n):
    rs = numpy.random.RandomState(n)
    for d in (rs.normal(0.3, 1.0, n), numpy.round(rs.normal(0.0, 2.0, n)),
              numpy.abs(rs.normal(size=n))):
        assert significance.sign_flip_p_values(d) == pytest.approx(_enumerated(d), abs=1e-15)


def test_forty_trials_get_their_exact_p_values_and_more_get_none():
    """Integer differences: the counts of the signed sums are the coefficients of a product of
    polynomials (x^-v + x^v), an independent reference computed by convolution."""
    rs = numpy.random.RandomState(40)
    d = rs.randint(-3, 6, size=40).astype(float)
    a = numpy.abs(d).astype(int)
    counts = numpy.ones(1, dtype=numpy.int64)                # signed sums from -sum(a) to sum(a)
    for v in a:
        step = numpy.zeros(2 * v + 1, dtype=numpy.int64)
        step[0] += 1
        step[-1] += 1
        counts = numpy.convolve(counts, step)
    sums = numpy.arange(-a.sum(), a.sum() + 1)
    observed = int(d.sum())
    total = 2.0 ** 40
    assert counts.sum() == 2 ** 40
    expected = (counts[sums >= observed].sum() / total, counts[sums <= observed].sum() / total,
                counts[numpy.abs(sums) >= abs(observed)].sum() / total)
    assert significance.sign_flip_p_values(d) == expected
    # 41 shared trials: no p-value and no marker, said in words
    many = significance.compare(aggregate.stats([90.0 + i % 3 for i in range(41)], list(range(41))),
                                aggregate.stats([80.0] * 41, list(range(41))))
    assert many['p_ours_better'] is None and many['marker'] == ''
    assert many['note'] == significance.TOO_MANY and many['mean_difference'] > 10
    with pytest.raises(ValueError, match='at most 40'):
        significance.sign_flip_p_values(numpy.ones(41))
    # a table of 41 trials says why no cell is marked, and each cell why it has no p-value
    rows = [{'method': method, 'status': 'computed', 'label': method,
             **{kind: [dict(rate=0.5, paper=None, **aggregate.stats(
                 [base + i % 3 for i in range(41)], list(range(41))))] for kind in tables.KINDS}}
            for method, base in (('cross_entropy', 80.0), ('ours', 90.0))]
    tables.compare_with_ours(rows)
    caption = table_format.caption_lines({'rows': rows})
    assert caption[-1] == 'No cell can be marked: {}.'.format(significance.TOO_MANY)
    assert table_format.comparison_text(rows[0]['best'][0]['versus_ours']) == \
        '+10.00 (41 trials: more than 40 shared trials: no exact p-value)'

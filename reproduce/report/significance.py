"""Is "ours" better than another method in a table column, or within trial noise?

An exact paired sign-flip test of ``d_k = ours_k - other_k`` over the trials both finished (trial k
of every method has the same seeds), counting all ``2**n`` sign assignments (n <=
:data:`MAX_TRIALS`; the sums of each half of the trials are enumerated and the pairs counted by
sorting, so 40 trials cost two lists of 2**20 sums). A cell keeps ``p_ours_better``,
``p_ours_worse`` (one-sided) and ``p_two_sided``, and is marked :data:`BETTER` / :data:`WORSE` when
a one-sided p is below :data:`LEVEL`; none under :data:`MIN_TRIALS` shared trials nor above
:data:`MAX_TRIALS`. With m non-zero differences no p is below ``1 / 2**m``, so five (1/32) are the
fewest that can reach 5 %. The cells of a table are not corrected for multiple comparisons."""
import numpy

#: The fewest shared trials a p-value is given for.
MIN_TRIALS = 3
#: The most shared trials a p-value is given for (2**(n/2) sums of each half are enumerated).
MAX_TRIALS = 40
#: Significance level of the tables' markers (one-sided, each direction).
LEVEL = 0.05
#: Marker on another method's cell when ours is significantly better / worse there.
BETTER, WORSE = '*', '†'
TOO_FEW = 'too few trials'
TOO_MANY = 'more than {} shared trials: no exact p-value'.format(MAX_TRIALS)


def sign_flip_p_values(differences):
    """Exact sign-flip p-values of paired ``differences``: (greater, less, two-sided), where
    greater = P(mean >= observed), less = P(mean <= observed) and two-sided =
    P(|mean| >= |observed|) over the ``2**n`` equally likely sign assignments."""
    d = numpy.asarray(differences, dtype=numpy.float64).ravel()
    n = d.size
    if n == 0:
        raise ValueError('no differences')
    if n > MAX_TRIALS:
        raise ValueError('{} paired trials: at most {} are enumerated'.format(n, MAX_TRIALS))
    # every signed sum of |d| is a sum of the first half plus one of the second: sorted, the
    # second half's sums give, for each of the first's, how many pairs reach a bound
    half = n // 2
    first = _signed_sums(numpy.abs(d[:half]))
    second = numpy.sort(_signed_sums(numpy.abs(d[half:])))
    observed = d.sum()
    # a relative slack, so that an assignment equal to the observed one in exact arithmetic is
    # counted despite rounding in the sums
    slack = _slack(d) * n
    total = float(2 ** n)

    def at_least(bound):                     # assignments whose sum is >= bound
        return int(second.size * first.size
                   - numpy.searchsorted(second, bound - first, side='left').sum())

    def at_most(bound):                      # assignments whose sum is <= bound
        return int(numpy.searchsorted(second, bound - first, side='right').sum())

    greater = at_least(observed - slack) / total
    less = at_most(observed + slack) / total
    reach = abs(observed) - slack
    two_sided = 1.0 if reach <= 0 else (at_least(reach) + at_most(-reach)) / total
    return greater, less, two_sided


def _signed_sums(values):
    """The ``2**len(values)`` sums of ``values`` with every choice of signs."""
    sums = numpy.zeros(1)
    for v in values:
        sums = numpy.concatenate([sums + v, sums - v])
    return sums


def _slack(d):
    """The rounding slack of sums of ``|d|``: equal in exact arithmetic is equal."""
    return 1e-9 * max(1.0, numpy.abs(d).sum() / d.size)


def smallest_possible_p(differences):
    """The smallest one-sided p-value the sign-flip test can give for these differences:
    ``1 / 2**m`` with m the differences that are not zero (a tie flips onto itself)."""
    d = numpy.asarray(differences, dtype=numpy.float64).ravel()
    if d.size == 0:
        return None
    return 2.0 ** -int(numpy.sum(numpy.abs(d) > _slack(d)))


def format_p(p):
    """A p-value as printed: exact when it has at most five significant digits (every sign-flip
    p-value of up to five trials, k/32: 0.03125, 0.15625), else rounded to four significant
    digits, which still tell every p of up to ten trials (k/1024: 0.0009766, 0.1094) apart."""
    exact = '{:.5g}'.format(p)
    return exact if float(exact) == p else '{:.4g}'.format(p)


def compare(ours, other):
    """The paired comparison of two cells (``values`` and ``trials`` as
    :func:`reproduce.report.aggregate.stats` makes them) over the trials both have: a JSON-ready dict
    with the shared trials, the mean difference (ours - other), the p-values (None with fewer
    than :data:`MIN_TRIALS` shared trials, then ``note`` says so) and the marker."""
    mine = dict(zip(ours.get('trials') or [], ours.get('values', [])))
    theirs = dict(zip(other.get('trials') or [], other.get('values', [])))
    shared = sorted(set(mine) & set(theirs))
    differences = [mine[t] - theirs[t] for t in shared]
    result = {'trials': shared, 'n': len(shared),
              'mean_difference': float(numpy.mean(differences)) if shared else None,
              'p_ours_better': None, 'p_ours_worse': None, 'p_two_sided': None,
              'smallest_possible_p': smallest_possible_p(differences),
              'marker': '', 'note': ''}
    if len(shared) < MIN_TRIALS or len(shared) > MAX_TRIALS:
        result['note'] = TOO_FEW if len(shared) < MIN_TRIALS else TOO_MANY
        return result
    greater, less, two_sided = sign_flip_p_values(differences)
    result.update(p_ours_better=greater, p_ours_worse=less, p_two_sided=two_sided)
    result['marker'] = BETTER if greater < LEVEL else WORSE if less < LEVEL else ''
    return result


def rule(reference_label='Our method'):
    """The caption sentence that states the test and the markers."""
    return ('{b} / {w}: {ref} is better / worse than this method in this column, by an exact '
            'paired sign-flip test over the trials both finished (same seeds), one-sided, '
            'p < {level:g} in that direction; no marker: not significant, or fewer than {k} shared '
            'trials ({few}). With n trials that differ no p-value is below 1/2^n: 5 trials that '
            'differ (1/32) are the fewest that can reach {level:g}. Cells are not corrected for '
            'multiple comparisons.').format(
                b=BETTER, w=WORSE, ref=reference_label, level=LEVEL, k=MIN_TRIALS, few=TOO_FEW)

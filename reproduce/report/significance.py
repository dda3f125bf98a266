"""Is "ours" better than another method in a table column, or within trial noise?

An exact paired sign-flip test of ``d_k = ours_k - other_k`` over the trials both finished (trial
k of every method has the same seeds), enumerating all ``2**n`` sign assignments (n <=
:data:`MAX_TRIALS`). A cell keeps ``p_ours_better``, ``p_ours_worse`` (one-sided) and
``p_two_sided``, and is marked :data:`BETTER` / :data:`WORSE` when a one-sided p is below
:data:`LEVEL`; none under :data:`MIN_TRIALS` shared trials. With m non-zero differences no p is
below ``1 / 2**m``, so five (1/32) are the fewest that can reach 5 %. The cells of a table are not
corrected for multiple comparisons.
"""
import numpy

#: The fewest shared trials a p-value is given for.
MIN_TRIALS = 3
#: The most shared trials (2**n sign assignments are enumerated).
MAX_TRIALS = 20
#: Significance level of the tables' markers (one-sided, each direction).
LEVEL = 0.05
#: Marker on another method's cell when ours is significantly better / worse there.
BETTER, WORSE = '*', '†'
TOO_FEW = 'too few trials'


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
    assignment = numpy.arange(2 ** n, dtype=numpy.int64)[:, None]
    signs = 1.0 - 2.0 * ((assignment >> numpy.arange(n)) & 1)      # every row a sign pattern
    means = (signs * numpy.abs(d)).sum(axis=1) / n
    observed = d.sum() / n
    # a relative slack, so that an assignment equal to the observed one in exact arithmetic is
    # counted despite rounding in the sums
    slack = _slack(d)
    greater = float(numpy.mean(means >= observed - slack))
    less = float(numpy.mean(means <= observed + slack))
    two_sided = float(numpy.mean(numpy.abs(means) >= abs(observed) - slack))
    return greater, less, two_sided


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
    """A p-value as printed: exact when it has at most four significant digits (every
    sign-flip p-value of up to five trials, k/32: 0.03125, 0.0625), else two significant
    digits; never rounded to a shorter number that hides an exact value (0.0625, not 0.062)."""
    exact = '{:.4g}'.format(p)
    return exact if float(exact) == p else '{:.2g}'.format(p)


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
    if len(shared) < MIN_TRIALS:
        result['note'] = TOO_FEW
        return result
    greater, less, two_sided = sign_flip_p_values(differences)
    result.update(p_ours_better=greater, p_ours_worse=less, p_two_sided=two_sided)
    if greater < LEVEL:
        result['marker'] = BETTER
    elif less < LEVEL:
        result['marker'] = WORSE
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

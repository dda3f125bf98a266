"""The losses of both steps as pure functions of (labels, logits).

Shapes: ``logits`` is a (N, C) Variable or array; label arrays ``y``, ``y_a``, ``y_b`` are (N, C)
soft labels (rows summing to 1, exact zeros allowed) held as plain numpy/cupy arrays, i.e.
constants with no gradient; ``prior`` is a (C,) array. Every loss is a scalar Variable averaged
over the batch (``prior_loss`` is a function of the batch mean, not a mean of per-sample terms).

Everything is computed from ``F.log_softmax``, so saturated logits (say +-1e4) and zero labels
give finite values and gradients: a zero label times a large negative log-probability is 0, and
the label-only term ``y log y`` is evaluated with the convention 0 log 0 = 0.
"""
import math

import chainer.functions as F
import numpy
from chainer.backend import get_array_module


def _as_constant(a, dtype):
    """``a`` as an array of ``dtype`` (labels are constants of the logits' dtype)."""
    return a.astype(dtype, copy=False)


def _xlogx(a):
    """Element-wise a log a with 0 log 0 = 0, as an array (no gradient)."""
    xp = get_array_module(a)
    return a * xp.log(xp.where(a > 0, a, xp.ones_like(a)))


def soft_cross_entropy(y, logits):
    """-mean_i sum_j y_ij log softmax(logits)_ij."""
    log_p = F.log_softmax(logits)
    y = _as_constant(y, log_p.dtype)
    return -F.sum(y * log_p) / log_p.shape[0]


def kl_loss(y, logits):
    """Lc = mean_i KL(y_i || softmax(logits_i)) = mean_i sum_j y_ij (log y_ij - log s_ij).

    Same gradient as :func:`soft_cross_entropy`; the value differs by the labels' mean entropy.
    """
    log_p = F.log_softmax(logits)
    y = _as_constant(y, log_p.dtype)
    n = log_p.shape[0]
    return (-F.sum(y * log_p) + _xlogx(y).sum()) / n


def prior_loss(logits, prior):
    """Lp = sum_j p_j log(p_j / sbar_j), sbar = the batch mean of softmax(logits).

    ``log sbar`` is taken as logsumexp over the batch of log_softmax, minus log N.
    """
    log_p = F.log_softmax(logits)
    prior = _as_constant(prior, log_p.dtype)
    log_sbar = F.logsumexp(log_p, axis=0) - math.log(log_p.shape[0])
    return -F.sum(prior * log_sbar) + _xlogx(prior).sum()


def entropy_loss(logits):
    """Le = -mean_i sum_j s_ij log s_ij, s = softmax(logits)."""
    log_p = F.log_softmax(logits)
    return -F.sum(F.exp(log_p) * log_p) / log_p.shape[0]


def mixup_loss(y_a, y_b, lam, logits):
    """Lmix = -mean_i [lam sum_k y_a_ik log s_ik + (1 - lam) sum_k y_b_ik log s_ik].

    ``logits`` are the outputs on the mixed inputs, ``y_a`` the labels of the first images of
    each pair and ``y_b`` those of their partners; ``lam`` is a Python float or a 0-d array
    (numpy, or one on the labels' device).
    """
    if isinstance(lam, numpy.ndarray):
        lam = lam.item()
    return soft_cross_entropy(lam * y_a + (1 - lam) * y_b, logits)

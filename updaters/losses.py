"""The losses of both steps as pure functions of (labels, logits).

Shapes: ``logits`` is a (N, C) Variable or array; label arrays ``y``, ``y_a``, ``y_b`` are (N, C)
soft labels (rows summing to 1, exact zeros allowed) held as plain numpy/cupy arrays, i.e.
constants with no gradient; ``prior`` is a (C,) array. Every loss is a scalar Variable averaged
over the batch (``prior_loss`` is a function of the batch mean, not a mean of per-sample terms).

Everything is computed from ``F.log_softmax``, so saturated logits (say +-1e4) and zero labels
give finite values and gradients: a zero label times a large negative log-probability is 0, and
the label-only term ``y log y`` is evaluated with the convention 0 log 0 = 0."""
import math

import chainer
import chainer.functions as F
import numpy
from chainer import function_node
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

    Same gradient as :func:`soft_cross_entropy`; the value differs by the labels' mean entropy."""
    log_p = F.log_softmax(logits)
    y = _as_constant(y, log_p.dtype)
    return (-F.sum(y * log_p) + _xlogx(y).sum()) / log_p.shape[0]


def prior_loss(logits, prior):
    """Lp = sum_j p_j log(p_j / sbar_j), sbar = the batch mean of softmax(logits).

    ``log sbar`` is taken as logsumexp over the batch of log_softmax, minus log N."""
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
    (numpy, or one on the labels' device)."""
    if isinstance(lam, numpy.ndarray):
        lam = lam.item()
    return soft_cross_entropy(lam * y_a + (1 - lam) * y_b, logits)


# ----- The fused losses of the updaters: one function node per iteration -----
# Each computes log-softmax once and its gradient in closed form with plain array operations, so
# that an iteration costs one Chainer function (one round of Python and kernel launches on a GPU)
# instead of the dozens of the compositions above, which remain the reference they are tested
# against.


def _log_softmax_array(z):
    """``F.log_softmax``'s arithmetic on a plain array: z - (max + log sum exp(z - max))."""
    xp = get_array_module(z)
    m = z.max(axis=1, keepdims=True)
    s = xp.exp(z - m).sum(axis=1, keepdims=True)
    return z - (m + xp.log(s))


class JointLoss(function_node.FunctionNode):
    """Step 1's L = Lc + alpha Lp + beta Le from one log-softmax (see :func:`joint_loss`)."""

    def __init__(self, y, prior, alpha, beta):
        self.y, self.prior = y, prior
        self.alpha, self.beta = float(alpha), float(beta)

    def forward(self, inputs):
        z, = inputs
        xp = get_array_module(z)
        n = z.shape[0]
        y = _as_constant(self.y, z.dtype)
        prior = _as_constant(self.prior, z.dtype)
        log_p = _log_softmax_array(z)
        p = xp.exp(log_p)
        lc = (-(y * log_p).sum() + _xlogx(y).sum()) / n
        m = log_p.max(axis=0)
        log_sbar = m + xp.log(xp.exp(log_p - m).sum(axis=0)) - math.log(n)
        lp = -(prior * log_sbar).sum() + _xlogx(prior).sum()
        entropy = (p * log_p).sum(axis=1)                      # -H(p_i), per sample
        le = -entropy.sum() / n
        self._saved = (y, prior, p, log_p, xp.exp(log_sbar), entropy)
        total = lc + self.alpha * lp + self.beta * le
        return tuple(xp.asarray(v, dtype=z.dtype) for v in (total, lc, lp, le)) + (p,)

    def backward(self, indexes, grad_outputs):
        y, prior, p, log_p, sbar, entropy = self._saved
        xp = get_array_module(p)
        n = p.shape[0]
        g_total, g_lc, g_lp, g_le = (None if g is None else g.array for g in grad_outputs[:4])
        weights = [(g_total, 1.0, self.alpha, self.beta), (g_lc, 1.0, 0.0, 0.0),
                   (g_lp, 0.0, 1.0, 0.0), (g_le, 0.0, 0.0, 1.0)]
        w_c = w_p = w_e = 0.0
        for g, c, a, b in weights:
            if g is not None:
                w_c, w_p, w_e = w_c + g * c, w_p + g * a, w_e + g * b
        d_lc = p * y.sum(axis=1, keepdims=True) - y                     # x n
        r = prior / sbar
        d_lp = -p * (r - (p * r).sum(axis=1, keepdims=True))           # x n
        d_le = -p * (log_p - entropy[:, None])                         # x n
        gz = (w_c * d_lc + w_p * d_lp + w_e * d_le) / n
        return chainer.Variable(xp.asarray(gz, dtype=p.dtype)),


def joint_loss(logits, y, prior, alpha, beta):
    """Step 1's loss as one function node: ``(L, Lc, Lp, Le, p)`` with L = Lc + alpha Lp + beta Le
    (the values of :func:`kl_loss`, :func:`prior_loss` and :func:`entropy_loss`, to float
    rounding) and p = softmax(logits) (B, c), all Variables; gradients flow from L (and from the
    three terms, if a caller back-propagates them), not from p."""
    return JointLoss(y, prior, alpha, beta).apply((logits,))


class MixupKLLoss(function_node.FunctionNode):
    """Step 2's L = Lc + w Lmix in one node (see :func:`mixup_kl_loss`)."""

    def __init__(self, y, y_partner, lam, weight, stacked):
        self.y, self.y_partner = y, y_partner
        self.lam, self.weight, self.stacked = float(lam), float(weight), stacked

    def _split(self, inputs):
        if self.stacked:
            z, = inputs
            half = z.shape[0] // 2
            return z[:half], z[half:]
        return inputs if len(inputs) == 2 else (inputs[0], inputs[0])

    def forward(self, inputs):
        mixed, clean = self._split(inputs)
        xp = get_array_module(mixed)
        n = clean.shape[0]
        y = _as_constant(self.y, clean.dtype)
        log_clean = _log_softmax_array(clean)
        lc = (-(y * log_clean).sum() + _xlogx(y).sum()) / n
        outputs = [lc, lc, xp.zeros((), clean.dtype)]
        saved = [y, xp.exp(log_clean), None, None]
        if self.weight:
            t = self.lam * y + (1 - self.lam) * _as_constant(self.y_partner, mixed.dtype)
            log_mixed = log_clean if mixed is clean else _log_softmax_array(mixed)
            lmix = -(t * log_mixed).sum() / n
            outputs = [lc + self.weight * lmix, lc, lmix]
            saved[2:] = [t, saved[1] if log_mixed is log_clean else xp.exp(log_mixed)]
        self._saved = saved
        return tuple(xp.asarray(v, dtype=clean.dtype) for v in outputs)

    def backward(self, indexes, grad_outputs):
        y, p_clean, t, p_mixed = self._saved
        xp = get_array_module(p_clean)
        n = p_clean.shape[0]
        g_total, g_lc, g_mix = (0.0 if g is None else g.array for g in grad_outputs)
        g_clean = (g_total + g_lc) * (p_clean * y.sum(axis=1, keepdims=True) - y) / n
        g_mixed = None if t is None else (g_total * self.weight + g_mix) * (
            p_mixed * t.sum(axis=1, keepdims=True) - t) / n
        if self.stacked:
            mixed = xp.zeros_like(g_clean) if g_mixed is None else g_mixed
            return chainer.Variable(xp.concatenate([mixed, g_clean]).astype(
                p_clean.dtype, copy=False)),
        if len(self.inputs) == 1:
            total = g_clean if g_mixed is None else g_clean + g_mixed
            return chainer.Variable(total.astype(p_clean.dtype, copy=False)),
        return tuple(chainer.Variable(g.astype(p_clean.dtype, copy=False))
                     if g is not None else None for g in (g_mixed, g_clean))


def mixup_kl_loss(logits, y, y_partner, lam, weight, clean_logits=None, stacked=False):
    """Step 2's loss as one function node: ``(L, Lc, Lmix)`` with L = Lc + weight Lmix, Lc =
    :func:`kl_loss` (y, clean logits) and Lmix = :func:`mixup_loss` (y, y_partner, lam, mixed
    logits), all Variables (Lmix is 0 and nothing mixed is needed when ``weight`` is 0).

    ``logits`` are the mixed batch's logits, and ``clean_logits`` the un-mixed batch's (None: Lc
    on the mixed logits too, ``--lc-on mixed``); with ``stacked`` True, ``logits`` holds both,
    the mixed batch's rows first (one pass of the concatenated batch)."""
    inputs = (logits,) if stacked or clean_logits is None else (logits, clean_logits)
    return MixupKLLoss(y, y_partner, lam, weight, stacked).apply(inputs)

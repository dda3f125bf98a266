"""Baselines trained in the same framework: cross entropy on the noisy labels, and Forward T
(Patrini et al., CVPR 2017): the same with the softmax output passed through the noise
transition matrix before the log-likelihood."""
import chainer
import chainer.functions as F
import numpy

from updaters.base import DeviceBatchUpdater


def log_transition(transition):
    """``log T`` with ``log 0 = -inf`` (computed once per run, not per iteration)."""
    xp = chainer.backend.get_array_module(transition)
    with numpy.errstate(divide='ignore'):
        return xp.log(transition)


def forward_loss(logits, labels, transition, log_t=None):
    """Forward-corrected cross entropy: ``-mean_i log (softmax(z_i) T)[y_i]``.

    ``T[k, j] = P(noisy label j | clean label k)``, so ``softmax(z) T`` is the model's
    distribution of the *noisy* label, which is what the noisy labels are evidence of. Computed
    in the log domain, ``log (p T)_y = logsumexp_k (log p_k + log T[k, y])``, so that saturated
    outputs and zero entries of T stay finite (every column needs one positive entry).

    Args:
        logits: (n, c) Variable or array.
        labels: int32 (n,) noisy labels.
        transition: float32 (c, c) array on the same device.
        log_t: ``log_transition(transition)`` when the caller has it already.
    """
    if log_t is None:
        log_t = log_transition(transition)
    columns = log_t.T[labels]                                   # (n, c): log T[k, y_i] over k
    return -F.mean(F.logsumexp(F.log_softmax(logits) + columns, axis=1))


class CrossEntropyUpdater(DeviceBatchUpdater):
    """Softmax cross entropy against the (noisy) integer labels; with ``transition`` given,
    Forward T's corrected loss (:func:`forward_loss`) instead.

    Args:
        iterator, optimizer, feed: as for :class:`updaters.mixup.MixupUpdater`.
        labels: int32 (n,) device array of the labels to train on.
        transition: None, or a float32 (c, c) device array: the noise transition matrix
            (the true one of the synthetic noise, or an estimate).
    """

    step_name = 'cross_entropy'

    def __init__(self, iterator, optimizer, feed, labels, transition=None, device=None):
        super(CrossEntropyUpdater, self).__init__(iterator, optimizer, feed, device=device)
        self.labels = labels
        self.transition = transition
        if transition is not None:
            self.step_name = 'forward_t'
            self._log_t = log_transition(transition)

    def update_core(self):
        indices, x = self.next_batch()
        logits = self.model(x)
        if self.transition is None:
            loss = F.softmax_cross_entropy(logits, self.labels[indices])
        else:
            loss = forward_loss(logits, self.labels[indices], self.transition, self._log_t)
        self.step(loss)


#: Patrini et al.'s percentile: the example that stands for class i is the most confident one
#: below this percentile of p(i | x), so that a few over-confident outliers do not decide T.
ESTIMATE_PERCENTILE = 97.0
#: The smallest entry of an estimated matrix. A float32 softmax can round a probability to 0; a
#: column of zeros would make the Forward T loss of that noisy label infinite.
ESTIMATE_FLOOR = 1e-6


def estimate_transition(probabilities, percentile=ESTIMATE_PERCENTILE):
    """Patrini et al.'s estimate of the noise transition matrix from a network trained with
    plain cross entropy on the noisy labels.

    The network's softmax output p(x) estimates the distribution of the *noisy* label of x. For each
    class i, the training example x_i with the highest p_i(x) among those below the
    ``percentile``-th percentile of p_i over the set stands for a sample of clean class i, and row i
    of the estimate is p(x_i): ``T[i, j] = p_j(x_i)``. The percentile is the "higher" one (the
    smallest observed value at or above it), as in the official code; with ``percentile`` 100 every
    example counts (the plain argmax). Entries are raised to at least :data:`ESTIMATE_FLOOR` and the
    rows renormalised to sum to 1, so that no noisy label has probability 0 under the estimate.

    Unlike the official code, choosing the example of class i does not change the outputs the
    next classes choose from (there, the filtering writes zeros into the shared array).

    Args:
        probabilities: float (n, c) array (numpy or cupy), softmax outputs over the training
            set in test mode.
        percentile (float): in (0, 100].
    Returns:
        float32 (c, c) array on the same device as ``probabilities``.
    """
    if not 0 < percentile <= 100:
        raise ValueError('percentile must be in (0, 100], got {}'.format(percentile))
    xp = chainer.backend.get_array_module(probabilities)
    p = probabilities.astype(xp.float32)
    n, c = p.shape
    if n == 0:
        raise ValueError('no examples to estimate the transition matrix from')
    rows = []
    for i in range(c):
        column = p[:, i]
        if percentile < 100:
            # numpy's percentile with method 'higher': the sorted value at ceil(q (n - 1))
            rank = int(numpy.ceil(percentile / 100.0 * (n - 1)))
            threshold = xp.sort(column)[rank]
            below = xp.where(column < threshold, column, -1.0)
            # nothing below the threshold (ties at the top): fall back to every example
            column = xp.where(below.max() < 0, column, below)
        rows.append(p[int(column.argmax())])
    t = xp.maximum(xp.stack(rows), ESTIMATE_FLOOR)
    return (t / t.sum(axis=1, keepdims=True)).astype(xp.float32)

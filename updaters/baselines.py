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

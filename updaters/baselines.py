"""Baselines trained in the same framework: cross entropy on the noisy labels."""
import chainer.functions as F

from updaters.base import DeviceBatchUpdater


class CrossEntropyUpdater(DeviceBatchUpdater):
    """Plain softmax cross entropy against the (noisy) integer labels.

    Args:
        iterator, optimizer, feed: as for :class:`updaters.mixup.MixupUpdater`.
        labels: int32 (n,) device array of the labels to train on.
    """

    step_name = 'cross_entropy'

    def __init__(self, iterator, optimizer, feed, labels, device=None):
        super(CrossEntropyUpdater, self).__init__(iterator, optimizer, feed, device=device)
        self.labels = labels

    def update_core(self):
        indices, x = self.next_batch()
        loss = F.softmax_cross_entropy(self.model(x), self.labels[indices])
        self.step(loss)

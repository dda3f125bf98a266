"""Step 1 of the method: joint optimisation of the network and the labels (Tanaka et al. 2018)."""
from updaters import losses
from updaters.base import DeviceBatchUpdater


class JointOptimizationUpdater(DeviceBatchUpdater):
    """Trains on L = Lc + alpha Lp + beta Le against the label table, and feeds the table.

    The loss is one function node (:func:`updaters.losses.joint_loss`: one log-softmax shared by
    the three terms and the stored outputs). Every training forward pass stores its softmax
    outputs (training mode, augmented input, no extra pass) in the label table; at the end of each epoch the table closes the epoch and, from
    its start epoch on, replaces the labels by the mean of its window (:mod:`updaters.labels`).

    Args:
        iterator: :class:`updaters.feed.IndexIterator` over the training set.
        optimizer: optimizer set up with the model.
        feed: :class:`updaters.feed.DeviceImageFeed` of the training images.
        label_table: :class:`updaters.labels.LabelTable` (initialised from the noisy labels).
        alpha (float): weight of the prior term Lp.
        beta (float): weight of the entropy term Le.
        prior: float32 (c,) class prior on the device; uniform when None.
        label_kind (str): train against 'soft' labels Y (the paper's text, Tanaka's code) or
            'hard' ones, one-hot of argmax Y.
    """

    step_name = 'step1'

    def __init__(self, iterator, optimizer, feed, label_table, alpha, beta, prior=None,
                 label_kind='soft', device=None):
        super(JointOptimizationUpdater, self).__init__(iterator, optimizer, feed, device=device)
        if label_kind not in ('soft', 'hard'):
            raise ValueError("label_kind must be 'soft' or 'hard', got {!r}".format(label_kind))
        self.label_table = label_table
        self.alpha = alpha
        self.beta = beta
        n_classes = label_table.soft.shape[1]
        xp = self.xp
        self.prior = (xp.full((n_classes,), 1.0 / n_classes, dtype=xp.float32)
                      if prior is None else xp.asarray(prior, dtype=xp.float32))
        self.label_kind = label_kind

    def update_core(self):
        indices, x = self.next_batch()
        logits = self.model(x)
        loss, lc, lp, le, probs = losses.joint_loss(
            logits, self.label_table.targets(self.label_kind, indices), self.prior, self.alpha,
            self.beta)
        self.step(loss, loss_c=lc, loss_p=lp, loss_e=le)
        self.label_table.store(indices, probs.array)
        iterator = self.get_iterator('main')
        if iterator.is_new_epoch:
            self.label_table.end_epoch(iterator.epoch)

    def serialize(self, serializer):
        super(JointOptimizationUpdater, self).serialize(serializer)
        self.label_table.serialize(serializer['label_table'])

"""Step 2 of the method: fine-tuning on the corrected labels with mix-up (Lc + Lmix)."""
from updaters import losses
from updaters.base import DeviceBatchUpdater
from updaters.counter_rng import CounterRandom, STREAM_MIXUP


class MixupUpdater(DeviceBatchUpdater):
    """Trains on L = Lc + w Lmix against fixed (soft) targets.

    Lmix (Eq. 8-9): one lambda ~ Beta(a, a) per mini-batch, partner j of sample i from a random
    permutation of the batch, x~ = lambda x_i + (1 - lambda) x_j, and
    Lmix = -mean_i [lambda sum_k Y_ik log f_k(x~_i) + (1 - lambda) sum_k Y_jk log f_k(x~_i)].
    With ``mixup_weight=0`` no mixed batch is formed and this is exactly Tanaka et al.'s second
    step (Lc alone).

    Args:
        iterator, optimizer, feed: as for :class:`updaters.joint.JointOptimizationUpdater`.
        targets: float32 (n, c) device array, the labels to train on (step 1's soft labels, or
            one-hot rows for hard labels).
        mixup_alpha (float): the a of Beta(a, a).
        mixup_weight (float): w, the weight of Lmix.
        lc_on (str): 'clean' computes Lc on the augmented un-mixed batch (the default reading
            of the paper's Figure 2b), 'mixed' on the mixed batch (interpretation choice 2).
        seed (int): seed of the lambda and partner draws (keyed by iteration).
        single_pass (bool): with ``lc_on='clean'``, send the mixed and the clean batch through
            the network as one batch of twice the size, each half normalised with its own
            batch statistics (``model(x, groups=2)``): the numbers of two passes, one pass's
            work on the host. A model without ``groups`` takes two passes.

    The loss is one function node (:func:`updaters.losses.mixup_kl_loss`); lambda is drawn on
    the host, the partners on the device without a sort (nothing in an iteration waits for the
    device)."""

    step_name = 'step2'

    def __init__(self, iterator, optimizer, feed, targets, mixup_alpha, mixup_weight,
                 lc_on='clean', seed=0, single_pass=True, device=None):
        super(MixupUpdater, self).__init__(iterator, optimizer, feed, device=device)
        if lc_on not in ('clean', 'mixed'):
            raise ValueError("lc_on must be 'clean' or 'mixed', got {!r}".format(lc_on))
        if mixup_weight < 0 or mixup_alpha <= 0:
            raise ValueError('need mixup_weight >= 0 and mixup_alpha > 0, got {} and {}'
                             .format(mixup_weight, mixup_alpha))
        self.targets = targets
        self.mixup_alpha = mixup_alpha
        self.mixup_weight = mixup_weight
        self.lc_on = lc_on
        self.seed = seed
        self.single_pass = single_pass

    def _stacks(self):
        """Whether the mixed and the clean batch go through the network as one batch (a model
        whose ``forward`` takes ``groups``: batch statistics per half, as two passes)."""
        return self.single_pass and getattr(self.model, 'supports_batch_groups', False)

    def update_core(self):
        indices, x = self.next_batch()
        y = self.targets[indices]
        if self.mixup_weight == 0:
            loss, lc, _ = losses.mixup_kl_loss(self.model(x), y, None, 1.0, 0.0)
            self.step(loss, loss_c=lc)
            return
        rng = CounterRandom(self.xp, self.seed, STREAM_MIXUP, self.iteration)
        lam = rng.host_beta(self.mixup_alpha, self.mixup_alpha)
        partner = rng.small_permutation(len(indices))
        mixed = lam * x + (1 - lam) * x[partner]
        weight = self.mixup_weight
        if self.lc_on == 'mixed':
            terms = losses.mixup_kl_loss(self.model(mixed), y, y[partner], lam, weight)
        elif self._stacks():
            stacked = self.model(self.xp.concatenate([mixed, x]), groups=2)
            terms = losses.mixup_kl_loss(stacked, y, y[partner], lam, weight, stacked=True)
        else:                     # the mixed pass first, as the stacked batch has it
            mixed_logits = self.model(mixed)
            terms = losses.mixup_kl_loss(mixed_logits, y, y[partner], lam, weight,
                                         clean_logits=self.model(x))
        loss, lc, lmix = terms
        self.step(loss, loss_c=lc, loss_mix=lmix)

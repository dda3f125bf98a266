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
        lc_on (str): 'clean' computes Lc on the augmented un-mixed batch (a second forward pass;
            the default reading of the paper's Figure 2b), 'mixed' on the mixed batch
            (interpretation choice 2).
        seed (int): seed of the lambda and partner draws (keyed by iteration).
    """

    step_name = 'step2'

    def __init__(self, iterator, optimizer, feed, targets, mixup_alpha, mixup_weight=1.0,
                 lc_on='clean', seed=0, device=None):
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

    def update_core(self):
        indices, x = self.next_batch()
        y = self.targets[indices]
        if self.mixup_weight == 0:
            lc = losses.kl_loss(y, self.model(x))
            self.step(lc, loss_c=lc)
            return
        rng = CounterRandom(self.xp, self.seed, STREAM_MIXUP, self.iteration)
        lam = rng.host_beta(self.mixup_alpha, self.mixup_alpha)
        partner = rng.permutation(len(indices))
        mixed_logits = self.model(lam * x + (1 - lam) * x[partner])
        lmix = losses.mixup_loss(y, y[partner], lam, mixed_logits)
        if self.lc_on == 'clean':
            lc = losses.kl_loss(y, self.model(x))
        else:
            lc = losses.kl_loss(y, mixed_logits)
        loss = lc + self.mixup_weight * lmix
        self.step(loss, loss_c=lc, loss_mix=lmix)

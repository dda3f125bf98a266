"""PENCIL (Yi & Wu, "Probabilistic End-to-end Noise Correction for Learning with Noisy Labels",
CVPR 2019) as a baseline in this package's framework.

Every training sample i has learnable label logits y~_i (c float32 values on the device),
initialised to K * one-hot(noisy label), K = 10; its label distribution is y^d_i = softmax(y~_i).
Training runs in three stages, by epoch (0-based, as ``updater.epoch`` counts finished epochs):

* stage 1, epochs [0, s1): softmax cross entropy against the noisy labels; y~ untouched.
* stage 2, epochs [s1, s1 + s2): L = Lc + alpha Lo + beta Le (:func:`pencil_loss`). The optimizer
  updates the network; the batch's label logits take their own plain gradient step
  y~_i <- y~_i - label_lr * dL/dy~_i, the gradient of the same total L at the same forward pass
  (read from the back-propagation that trains the network), as the official code does.
* stage 3, epochs [s1 + s2, ...): L = Lc against the now frozen y^d.

The losses come in two shapes (``losses``):

* ``'official'`` (the default): as the official code (yikun2019/PENCIL, PENCIL.py) computes them,
  with which the published alpha, beta and label learning rate were tuned: Lc and Le are means
  over the whole batch x classes array, i.e. the per-sample sums below divided by c, and Lo is
  the cross entropy of softmax(y~) *used as logits* against the noisy label (a softmax of the
  softmax): Lo = -mean_i log softmax(softmax(y~_i))[noisy_i].
* ``'paper'``: the PENCIL paper's formulas: Lc = mean_i KL(f_i || y^d_i) (network output first),
  Lo = -mean_i log y^d_i[noisy_i], Le = -mean_i sum_j f_ij log f_ij.

The updater switches only the loss (updaters/README.md, interpretation choice 8). The
network's learning rate follows PENCIL's own schedule, set by the caller with
:class:`PencilLearningRate` and :func:`pencil_lr_schedule` (its stage-3 decay: ``'divided'`` or
``'official'``, updaters/README.md, interpretation choice 9)."""
import chainer
import chainer.functions as F
import numpy
from chainer.training import extension

import atomic_files as atomic
from updaters.base import DeviceBatchUpdater

#: The shapes of the losses: the official code's (default) or the PENCIL paper's.
LOSS_VARIANTS = ('official', 'paper')


def _log_softmax(z):
    """Row-wise log softmax of a plain numpy/cupy array."""
    xp = chainer.backend.get_array_module(z)
    z = z - z.max(axis=1, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=1, keepdims=True))


def _compatibility_term(logits, label_logits, variant):
    """Lc of :func:`pencil_terms`, with the network's ``f``, ``log f`` and the loss scale that
    Le shares; alone, it is stage 3's whole loss."""
    if variant not in LOSS_VARIANTS:
        raise ValueError('variant must be one of {}, got {!r}'.format(LOSS_VARIANTS, variant))
    log_f = F.log_softmax(logits)
    f = F.exp(log_f)
    n, c = log_f.shape
    scale = n * c if variant == 'official' else n      # mean over batch x classes, or batch
    return F.sum(f * (log_f - F.log_softmax(label_logits))) / scale, f, log_f, scale


def pencil_terms(logits, label_logits, noisy_labels, variant='official'):
    """PENCIL's three losses ``(Lc, Lo, Le)`` as scalar Variables (see the module docstring).

    Args:
        logits: (B, c) Variable or array, the network's outputs.
        label_logits: (B, c) array (a constant) or Variable (then its gradient is computed too),
            the batch's y~.
        noisy_labels: int32 (B,) array of the given labels.
        variant (str): ``'official'`` or ``'paper'``.
    """
    lc, f, log_f, scale = _compatibility_term(logits, label_logits, variant)
    le = -F.sum(f * log_f) / scale
    compatibility = F.softmax(label_logits) if variant == 'official' else label_logits
    lo = F.softmax_cross_entropy(compatibility, noisy_labels)
    return lc, lo, le


def pencil_loss(logits, label_logits, noisy_labels, stage, alpha, beta, variant='official'):
    """PENCIL's total loss of ``stage`` (1, 2 or 3) as a scalar Variable: stage 1 the softmax cross
    entropy against ``noisy_labels``, stage 2 Lc + alpha Lo + beta Le, stage 3 Lc
    (:func:`pencil_terms`; ``label_logits`` may be a Variable, whose gradient ``backward`` then
    fills)."""
    if stage == 1:
        return F.softmax_cross_entropy(logits, noisy_labels)
    if stage not in (2, 3):
        raise ValueError('stage must be 1, 2 or 3, got {!r}'.format(stage))
    if stage == 3:      # Lc alone: Lo and Le would be built and thrown away every iteration
        return _compatibility_term(logits, label_logits, variant)[0]
    lc, lo, le = pencil_terms(logits, label_logits, noisy_labels, variant)
    return lc + alpha * lo + beta * le


class PencilLabels(object):
    """The label logits y~ (n, c) of PENCIL, with the interface the label reports read.

    Args:
        noisy_labels: int (n,) array of the given labels; y~ is made where it lives.
        n_classes (int): c.
        k (float): K of the initialisation y~ = K * one-hot(noisy label).

    ``logits`` (float32 (n, c)) is updated and deserialized in place. ``soft`` is y^d =
    softmax(y~), ``hard`` its argmax (int32 (n,)), as on :class:`updaters.labels.LabelTable`, so
    :class:`updaters.extensions.LabelAccuracyReport` takes this object as its table."""

    def __init__(self, noisy_labels, n_classes, k):
        self.n_classes = int(n_classes)
        self.k = float(k)
        self.device = chainer.backend.get_device_from_array(noisy_labels)
        with chainer.using_device(self.device):
            xp = self.device.xp
            labels = noisy_labels.astype(numpy.int32, copy=False)
            self.logits = xp.eye(self.n_classes, dtype=numpy.float32)[labels] * numpy.float32(k)

    @property
    def xp(self):
        return self.device.xp

    @property
    def soft(self):
        """y^d = softmax(y~), float32 (n, c)."""
        with chainer.using_device(self.device):
            return self.xp.exp(_log_softmax(self.logits))

    @property
    def hard(self):
        """argmax of y^d, int32 (n,)."""
        with chainer.using_device(self.device):
            return self.logits.argmax(axis=1).astype(numpy.int32)

    def serialize(self, serializer):
        """Chainer serialization of y~; loading copies into the existing array."""
        self.logits = serializer('logits', self.logits)

    def save(self, path, **extra):
        """Write ``soft`` (y^d), ``hard`` (argmax) and ``logits`` (y~), plus any ``extra``
        arrays, to ``path`` (.npz) atomically (:func:`atomic_files.save_npz`)."""
        atomic.save_npz(path, soft=self.soft, hard=self.hard, logits=self.logits, **extra)


class PencilUpdater(DeviceBatchUpdater):
    """PENCIL's three stages (see the module docstring) over device index batches.

    Args:
        iterator, optimizer, feed: as for :class:`updaters.baselines.CrossEntropyUpdater`.
        noisy_labels: int32 (n,) device array of the given labels.
        n_classes (int): c.
        stages: (s1, s2, s3), the stage lengths in epochs, e.g. (70, 130, 120) for CIFAR-10;
            epochs past s1 + s2 + s3 stay in stage 3.
        alpha (float): weight of the compatibility loss Lo.
        beta (float): weight of the entropy loss Le.
        label_lr (float): step size of the label logits' gradient step.
        k (float): initial label logits K * one-hot(noisy label).
        losses (str): the shape of the losses, ``'official'`` or ``'paper'`` (module docstring).

    Reports ``loss`` every iteration, and ``lc``, ``lo``, ``le`` in stage 2 (device values). The
    label logits live in ``labels`` (:class:`PencilLabels`); ``label_distribution`` and
    ``hard`` read them. A batch must not repeat a sample (the scatter of the label step would
    keep one of the repeated rows); :class:`updaters.feed.IndexIterator` never does."""

    step_name = 'pencil'

    def __init__(self, iterator, optimizer, feed, noisy_labels, n_classes, stages, alpha, beta,
                 label_lr, k, losses='official', device=None):
        super(PencilUpdater, self).__init__(iterator, optimizer, feed, device=device)
        stages = tuple(int(s) for s in stages)
        if len(stages) != 3 or min(stages) < 0:
            raise ValueError('stages must be three epoch counts >= 0, got {!r}'.format(stages))
        if losses not in LOSS_VARIANTS:
            raise ValueError('losses must be one of {}, got {!r}'.format(LOSS_VARIANTS, losses))
        self.stages = stages
        self.noisy_labels = noisy_labels
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.label_lr = float(label_lr)
        self.losses = losses
        self.labels = PencilLabels(noisy_labels, n_classes, k)

    # ----- reading -----
    def stage_of(self, epoch):
        """The stage (1, 2 or 3) of the 0-based ``epoch``."""
        s1, s2, _ = self.stages
        if epoch < s1:
            return 1
        return 2 if epoch < s1 + s2 else 3

    @property
    def stage(self):
        """The stage of the epoch under way (or about to start)."""
        return self.stage_of(self.epoch)

    @property
    def label_distribution(self):
        """y^d = softmax(y~), float32 (n, c) device array."""
        return self.labels.soft

    @property
    def hard(self):
        """argmax y^d, int32 (n,) device array."""
        return self.labels.hard

    # ----- training -----
    def update_core(self):
        stage = self.stage  # read before next_batch, which may advance the epoch
        indices, x = self.next_batch()
        logits = self.model(x)
        noisy = self.noisy_labels[indices]
        if stage != 2:
            label_logits = None if stage == 1 else self.labels.logits[indices]
            self.step(pencil_loss(logits, label_logits, noisy, stage, self.alpha, self.beta,
                                  self.losses))
            return
        label_logits = chainer.Variable(self.labels.logits[indices])
        lc, lo, le = pencil_terms(logits, label_logits, noisy, self.losses)
        self.step(lc + self.alpha * lo + self.beta * le, lc=lc, lo=lo, le=le)
        # the same back-propagation gave dL/dy~ of the batch
        self.labels.logits[indices] = (label_logits.array
                                       - numpy.float32(self.label_lr) * label_logits.grad)

    def serialize(self, serializer):
        super(PencilUpdater, self).serialize(serializer)
        self.labels.serialize(serializer['labels'])

    def save(self, path, **extra):
        """Write the labels (soft, hard, logits) atomically; see :meth:`PencilLabels.save`."""
        self.labels.save(path, **extra)


#: PENCIL's stage-3 schedules: ``'divided'`` (the default: lr3, then lr3 / 10, then lr3 / 100)
#: or ``'official'`` (what the official code computes: lr3, then ``lr3 // 10``, then
#: ``lr3 // 100``, floor divisions, 0.0 for every lr3 below 10).
STAGE3_DECAYS = ('divided', 'official')


def pencil_lr_schedule(stages, lr, lr3, stage3_decay='divided'):
    """PENCIL's learning rate as a function of the 0-based epoch.

    Stages 1 and 2 (epochs < s1 + s2) use ``lr``; stage 3 starts at ``lr3`` and drops twice:

    * ``'divided'`` (the default; updaters/README.md, interpretation choice 9): ``lr3 / 10``
      from one third and ``lr3 / 100`` from two thirds of stage 3 (epoch - s1 - s2 >= s3 / 3, resp.
      >= 2 s3 / 3), and past its end. This is what the official code's schedule is read to
      intend.
    * ``'official'``: exactly what the official code computes (yikun2019/PENCIL, PENCIL.py:470-481
      at 8a89ed50): ``lr3`` while epoch - s1 - s2 < s3 // 3, then ``lr3 // 10`` while
      epoch - s1 - s2 < (2 s3) // 3, then ``lr3 // 100``. Both drops are Python floor
      divisions of a float: 0.0 for every lr3 below 10 (0.2 -> 0.2, 0.0, 0.0), so the network
      stops learning after the first third of stage 3. The drops fall on the official code's
      epochs (floor of a third), which differ from ``'divided'``'s when s3 is not a multiple
      of 3.
    """
    if stage3_decay not in STAGE3_DECAYS:
        raise ValueError('stage3_decay must be one of {}, got {!r}'.format(
            ', '.join(STAGE3_DECAYS), stage3_decay))
    s1, s2, s3 = (int(s) for s in stages)
    lr, lr3 = float(lr), float(lr3)

    def divided(epoch):
        offset = epoch - s1 - s2
        if offset < 0:
            return lr
        if 3 * offset < s3:
            return lr3
        if 3 * offset < 2 * s3:
            return lr3 / 10
        return lr3 / 100

    def official(epoch):
        # the official lines, with stage2 = s1 + s2 (its stage-2 end) and epochs = s1 + s2 + s3
        stage2, epochs = s1 + s2, s1 + s2 + s3
        if epoch < stage2:
            return lr
        if epoch < (epochs - stage2) // 3 + stage2:
            return lr3
        if epoch < 2 * (epochs - stage2) // 3 + stage2:
            return lr3 // 10
        return lr3 // 100

    return divided if stage3_decay == 'divided' else official


class PencilLearningRate(extension.Extension):
    """Sets the optimizer's learning rate to ``schedule(epoch)`` at the start of every epoch.

    Called at the end of each epoch (``updater.epoch`` already names the next one) and at the
    start of training, also after a resume (nothing to serialize); runs after the writers
    (``observe_lr`` logs the rate the epoch used). ``schedule``: 0-based epoch -> learning rate
    (:func:`pencil_lr_schedule`); ``attr`` of the optimizer ``optimizer_name`` is set."""

    trigger = 1, 'epoch'
    priority = extension.PRIORITY_READER
    default_name = 'pencil_lr'

    def __init__(self, schedule, attr='lr', optimizer_name='main'):
        self.schedule = schedule
        self.attr = attr
        self.optimizer_name = optimizer_name

    def initialize(self, trainer):
        self(trainer)

    def __call__(self, trainer):
        updater = trainer.updater
        setattr(updater.get_optimizer(self.optimizer_name), self.attr,
                self.schedule(updater.epoch))

"""PENCIL (Yi & Wu, "Probabilistic End-to-end Noise Correction for Learning with Noisy Labels",
CVPR 2019) as a baseline in this package's framework.

Every training sample i has learnable label logits y~_i (c float32 values on the device),
initialised to K * one-hot(noisy label), K = 10; its label distribution is y^d_i = softmax(y~_i).
Training runs in three stages, by epoch (0-based, as ``updater.epoch`` counts finished epochs):

* stage 1, epochs [0, s1): softmax cross entropy against the noisy labels; y~ untouched.
* stage 2, epochs [s1, s1 + s2): L = Lc + alpha Lo + beta Le with
  Lc = mean_i KL(f_i || y^d_i) (network output first), Lo = -mean_i log y^d_i[noisy_i],
  Le = -mean_i sum_j f_ij log f_ij (:func:`updaters.losses.output_label_kl`,
  :func:`updaters.losses.compatibility_loss`, :func:`updaters.losses.entropy_loss`). The optimizer
  updates the network; the batch's label logits take their own plain gradient step
  y~_i <- y~_i - label_lr * dL/dy~_i, the gradient of the batch-mean loss at the same forward
  pass (so it carries the 1/B factor), computed in closed form (:func:`label_logit_gradient`).
* stage 3, epochs [s1 + s2, ...): L = Lc against the now frozen y^d.

The updater switches only the loss. The network's learning rate follows PENCIL's own schedule,
set by the caller with :class:`PencilLearningRate` and :func:`pencil_lr_schedule`.
"""
import chainer
import chainer.functions as F
import numpy
from chainer.training import extension

from updaters import atomic, losses
from updaters.base import DeviceBatchUpdater


def _log_softmax(z):
    """Row-wise log softmax of a plain numpy/cupy array."""
    xp = chainer.backend.get_array_module(z)
    z = z - z.max(axis=1, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=1, keepdims=True))


def label_logit_gradient(label_logits, probs, labels, alpha):
    """dL/dy~ of L = Lc + alpha Lo (means over the B rows) w.r.t. the batch's label logits.

    For one row, with z = y~_i, d = softmax(z), f = f_i (the network's softmax output, a
    constant here), o = one-hot(labels_i) and d log d_j / d z_k = delta_jk - d_k:

        d/dz_k [ (1/B) sum_j f_j (log f_j - log d_j) ] = (1/B) (d_k sum_j f_j - f_k)
        d/dz_k [ -(alpha/B) sum_j o_j log d_j ]        = (alpha/B) (d_k - o_k)

    so dL/dz = (1/B) [ d (sum_j f_j + alpha) - f - alpha o ]; Le does not depend on z.
    (sum_j f_j is 1 up to rounding; it is kept so that the value is that of the autograd.)

    Args:
        label_logits: float32 (B, c) array, y~ of the batch.
        probs: float32 (B, c) array, f = softmax of the network's logits.
        labels: int (B,) array, the noisy labels.
        alpha (float): weight of Lo.
    Returns:
        float32 (B, c) array on the same device.
    """
    xp = chainer.backend.get_array_module(label_logits)
    n, c = label_logits.shape
    d = xp.exp(_log_softmax(label_logits))
    one_hot = xp.eye(c, dtype=label_logits.dtype)[labels]
    grad = d * (probs.sum(axis=1, keepdims=True) + alpha) - probs - alpha * one_hot
    return (grad / n).astype(label_logits.dtype, copy=False)


class PencilLabels(object):
    """The label logits y~ (n, c) of PENCIL, with the interface the label reports read.

    Args:
        noisy_labels: int (n,) array of the given labels; y~ is made where it lives.
        n_classes (int): c.
        k (float): K of the initialisation y~ = K * one-hot(noisy label).

    ``logits`` (float32 (n, c)) is updated and deserialized in place. ``soft`` is y^d =
    softmax(y~), ``hard`` its argmax (int32 (n,)), as on :class:`updaters.labels.LabelTable`, so
    :class:`updaters.extensions.LabelAccuracyReport` takes this object as its table.
    """

    def __init__(self, noisy_labels, n_classes, k=10.):
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
        arrays, to ``path`` (.npz) atomically (:func:`updaters.atomic.save_npz`)."""
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

    Reports ``loss`` every iteration, and ``lc``, ``lo``, ``le`` in stage 2 (device values). The
    label logits live in ``labels`` (:class:`PencilLabels`); ``label_distribution`` and
    ``hard`` read them. A batch must not repeat a sample (the scatter of the label step would
    keep one of the repeated rows); :class:`updaters.feed.IndexIterator` never does.
    """

    step_name = 'pencil'

    def __init__(self, iterator, optimizer, feed, noisy_labels, n_classes, stages, alpha=0.4,
                 beta=0.1, label_lr=600., k=10., device=None):
        super(PencilUpdater, self).__init__(iterator, optimizer, feed, device=device)
        stages = tuple(int(s) for s in stages)
        if len(stages) != 3 or min(stages) < 0:
            raise ValueError('stages must be three epoch counts >= 0, got {!r}'.format(stages))
        self.stages = stages
        self.noisy_labels = noisy_labels
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.label_lr = float(label_lr)
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
        if stage == 1:
            self.step(F.softmax_cross_entropy(logits, self.noisy_labels[indices]))
            return
        label_logits = self.labels.logits[indices]
        lc = losses.output_label_kl(label_logits, logits)
        if stage == 3:
            self.step(lc)
            return
        noisy = self.noisy_labels[indices]
        lo = losses.compatibility_loss(label_logits, noisy)
        le = losses.entropy_loss(logits)
        grad = label_logit_gradient(label_logits, F.softmax(logits).array, noisy, self.alpha)
        self.step(lc + self.alpha * lo + self.beta * le, lc=lc, lo=lo, le=le)
        self.labels.logits[indices] = label_logits - numpy.float32(self.label_lr) * grad

    def serialize(self, serializer):
        super(PencilUpdater, self).serialize(serializer)
        self.labels.serialize(serializer['labels'])

    def save(self, path, **extra):
        """Write the labels (soft, hard, logits) atomically; see :meth:`PencilLabels.save`."""
        self.labels.save(path, **extra)


def pencil_lr_schedule(stages, lr=0.06, lr3=0.2):
    """PENCIL's learning rate as a function of the 0-based epoch.

    Stages 1 and 2 (epochs < s1 + s2) use ``lr``; stage 3 uses ``lr3``, divided by 10 after one
    third and again after two thirds of it (epoch - s1 - s2 >= s3 / 3, resp. >= 2 s3 / 3), and
    ``lr3 / 100`` past its end. This is what the official PENCIL code intends; there the two
    divisions are written as floor divisions (``lr3 // 10``), which makes the learning rate 0
    for the last two thirds of stage 3. Here they are true divisions (interpretation choice 4).
    """
    s1, s2, s3 = (int(s) for s in stages)
    lr, lr3 = float(lr), float(lr3)

    def schedule(epoch):
        offset = epoch - s1 - s2
        if offset < 0:
            return lr
        if 3 * offset < s3:
            return lr3
        if 3 * offset < 2 * s3:
            return lr3 / 10
        return lr3 / 100

    return schedule


class PencilLearningRate(extension.Extension):
    """Sets the optimizer's learning rate to ``schedule(epoch)`` at the start of every epoch.

    Called at the end of each epoch (when ``updater.epoch`` already names the next one) and at
    the start of training, also after a resume; the rate depends only on the updater's epoch,
    so nothing is serialized. Runs after the writers (``observe_lr`` logs the rate the epoch
    used).

    Args:
        schedule: callable 0-based epoch -> learning rate (:func:`pencil_lr_schedule`).
        attr (str): the optimizer's hyperparameter to set.
        optimizer_name (str): which of the updater's optimizers.
    """

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

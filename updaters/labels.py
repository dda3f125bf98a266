"""The soft-label table Y of step 1 and its update rule.

Y (n x c, float32) starts as the one-hot of the noisy labels. During every training epoch the
updater hands the softmax outputs of each mini-batch to :meth:`LabelTable.store`; at the end of
the epoch :meth:`LabelTable.end_epoch` closes the epoch and, from ``begin`` on, replaces Y by
the mean of the stored outputs over the last ``window`` epochs (or over all epochs so far).

Device: every array of the table lives on the device given to the constructor (``device``,
anything :func:`chainer.get_device` accepts: ``'@numpy'``, ``'@cupy:0'``, a ``Device``...;
default numpy), or wherever :meth:`LabelTable.to_device` moved it. Nothing is transferred to the
host except by :meth:`LabelTable.save` and by the serializer.

Epoch convention: epochs are numbered from 1, as ``trainer.updater.epoch`` is after an epoch's
last iteration and as Tanaka et al.'s code counts them (its ``label_update`` increments its count
first and updates when ``count >= begin``). ``end_epoch(e)`` updates Y iff ``e >= begin``:
begin=70 first updates at the end of the 70th epoch, from epochs 61..70 with window=10, and again
after every later epoch; begin=1 updates after every epoch."""
import chainer
import numpy

import atomic_files as atomic


class LabelTable(object):
    """Soft labels Y with a window of past predictions.

    Args:
        noisy_labels: int array (n,) of the given (noisy) class indices, numpy or on ``device``.
        n_classes (int): c.
        window (int or None): K, the number of past epochs averaged (a ring buffer of shape
            (K, n, c)); None averages all past epochs (a running sum and count).
        begin (int): Y is updated at the end of every epoch e (1-based) with e >= begin; at
            least 1.
        device: where the table lives (see the module docstring).

    Arrays (all on the table's device):
        ``soft``: Y, float32 (n, c); updated (and deserialized) in place, so it stays the same
            array object until :meth:`to_device`.
        ``_probs``: float32 (K, n, c) stored softmax outputs (K = 1 when window is None: the
            current epoch only); slot ``_position`` is the current epoch's.
        ``_seen``: bool (K, n), whether a sample was stored in that slot's epoch.
        ``_sum``, ``_count``: float32 (n, c) and (n,), sum and number of the closed epochs'
            outputs per sample (window None only).

    A sample stored by two store calls in one epoch keeps the later output for that epoch
    (repeated indices within one call keep one of their rows; which one is unspecified on
    cupy). A sample's mean is over the epochs in which it was seen; a sample not seen in the
    window keeps its current Y."""

    def __init__(self, noisy_labels, n_classes, window, begin, device=None):
        if window is not None and int(window) < 1:
            raise ValueError('window must be a positive int or None')
        if int(begin) < 1:
            raise ValueError('begin is the 1-based epoch of the first label update: at least 1, '
                             'got {}'.format(begin))
        self.device = chainer.get_device(device if device is not None else '@numpy')
        self.n_classes = int(n_classes)
        self.window = None if window is None else int(window)
        self.begin = int(begin)
        self.epoch = 0       # number of the last closed epoch (1-based; 0 = none yet)
        self._position = 0   # ring slot receiving the current epoch
        xp = self.device.xp
        with chainer.using_device(self.device):
            labels = self.device.send(noisy_labels).astype(numpy.int32, copy=False)
            n = labels.shape[0]
            slots = 1 if self.window is None else self.window
            self._y = xp.eye(self.n_classes, dtype=numpy.float32)[labels]
            self._probs = xp.zeros((slots, n, self.n_classes), dtype=numpy.float32)
            self._seen = xp.zeros((slots, n), dtype=bool)
            if self.window is None:
                self._sum = xp.zeros((n, self.n_classes), dtype=numpy.float32)
                self._count = xp.zeros((n,), dtype=numpy.float32)

    # ----- reading -----
    @property
    def xp(self):
        return self.device.xp

    @property
    def soft(self):
        """Y, float32 (n, c)."""
        return self._y

    @property
    def hard(self):
        """argmax of Y, int32 (n,)."""
        return self._y.argmax(axis=1).astype(numpy.int32)

    def targets(self, kind, indices=None):
        """Training targets, float32 (n, c), or (B, c) for the rows ``indices``: ``kind='soft'``
        Y (Y itself when ``indices`` is None), ``'hard'`` the one-hot of argmax Y."""
        if kind not in ('soft', 'hard'):
            raise ValueError("kind must be 'soft' or 'hard', not %r" % (kind,))
        y = self._y if indices is None else self._y[self.device.send(indices)]
        if kind == 'soft':
            return y
        with chainer.using_device(self.device):
            return self.xp.eye(self.n_classes, dtype=numpy.float32)[y.argmax(axis=1)]

    # ----- recording and updating -----
    def store(self, indices, probs):
        """Record softmax outputs ``probs`` (B, c: an array on the table's device, or a Variable)
        of the samples ``indices`` (B,) this epoch."""
        probs = getattr(probs, 'array', probs)
        with chainer.using_device(self.device):
            indices = self.device.send(indices)
            self._probs[self._position, indices] = probs
            self._seen[self._position, indices] = True

    def end_epoch(self, epoch=None):
        """Close epoch ``epoch`` (1-based; default: the one after the last closed one): Y becomes
        the window's mean iff ``epoch >= begin`` (returned), then the next epoch's slot opens."""
        epoch = self.epoch + 1 if epoch is None else int(epoch)
        if epoch <= self.epoch:
            raise ValueError('epoch %d is already closed (last closed: %d)' % (epoch, self.epoch))
        with chainer.using_device(self.device):
            total, count = self._accumulate()
            update = epoch >= self.begin
            if update:
                mean = total / self.xp.maximum(count, 1)[:, None]
                self._y[...] = self.xp.where(count[:, None] > 0, mean, self._y)
            if self.window is not None:
                self._position = (self._position + 1) % self.window
            self._seen[self._position] = False
        self.epoch = epoch
        return update

    def _accumulate(self):
        """Sum (n, c) and count (n,) of the outputs that the mean is taken over."""
        if self.window is None:
            seen = self._seen[0].astype(numpy.float32)
            self._sum += self._probs[0] * seen[:, None]
            self._count += seen
            return self._sum, self._count
        seen = self._seen.astype(numpy.float32)
        return (self._probs * seen[:, :, None]).sum(axis=0), seen.sum(axis=0)

    # ----- device, persistence -----
    def to_device(self, device):
        """Move every array to ``device`` (anything chainer.get_device accepts); returns self."""
        self.device = chainer.get_device(device)
        for name in ('_y', '_probs', '_seen', '_sum', '_count'):
            if hasattr(self, name):
                setattr(self, name, self.device.send(getattr(self, name)))
        return self

    def serialize(self, serializer):
        """Chainer serialization; loading copies into the existing arrays (same device)."""
        self._y = serializer('y', self._y)
        self._probs = serializer('probs', self._probs)
        self._seen = serializer('seen', self._seen)
        if self.window is None:
            self._sum = serializer('sum', self._sum)
            self._count = serializer('count', self._count)
        self._position = int(serializer('position', self._position))
        self.epoch = int(serializer('epoch', self.epoch))

    def save(self, path, **extra):
        """Write ``soft`` (Y) and ``hard`` (argmax Y), plus any ``extra`` arrays, to ``path``
        (.npz) atomically (:func:`atomic_files.save_npz`)."""
        atomic.save_npz(path, soft=self._y, hard=self.hard, **extra)

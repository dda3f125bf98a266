"""Mini-batches as index arrays, and the images they select as the float32 network input.

``IndexIterator`` yields the indices of a mini-batch as an int32 array (on the device, or on the
host); a feed turns ``(indices, iteration)`` into the batch. Two feeds:

* ``DeviceImageFeed``: the training set lives on the device as uint8 and is augmented there; an
  iteration moves no image through the host (CIFAR-10, digits).
* ``HostImageFeed``: a data set too large for the device (Clothing1M's JPEGs) is decoded and
  augmented on the host, in threads, and the batch is sent to the device.

``HostSplit`` is the host path of evaluation: the batch source that
:class:`updaters.extensions.AccuracyTracker` takes for such a data set. Epoch orders and
augmentation draws come from :mod:`updaters.counter_rng`, keyed by epoch and iteration, so a
resumed run repeats them exactly."""
from concurrent.futures import ThreadPoolExecutor

import chainer
import numpy

from updaters.counter_rng import CounterRandom, STREAM_AUGMENT, STREAM_ORDER


class IndexIterator(chainer.dataset.Iterator):
    """Shuffled passes over ``range(n)`` in batches of ``batch_size`` device indices.

    Every epoch is exactly one pass: its last batch holds the ``n % batch_size`` left-over indices
    (no wrap-around into the next epoch), so each sample is seen once per epoch. The order of
    epoch ``e`` is a permutation keyed by ``(seed, e)``; only the position is state.

    With ``iterations_per_epoch`` set, an epoch is shorter: the first
    ``iterations_per_epoch * batch_size`` indices of that epoch's permutation, i.e. a random
    subset of distinct samples, a different one every epoch, in ``iterations_per_epoch`` full
    batches (a limit beyond one pass gives the whole pass). ``epoch``, ``epoch_detail`` and the
    learning-rate schedules that read them then count these shorter epochs.

    Args:
        n (int): number of samples.
        batch_size (int): indices per batch.
        seed (int): seed of the epoch orders.
        xp: ``numpy`` or ``cupy``: where the index arrays live.
        shuffle (bool): shuffle every epoch (else ascending order; with ``iterations_per_epoch``
            every epoch is then the same first samples).
        repeat (bool): go on for ever (else stop after one epoch).
        iterations_per_epoch (int or None): batches per epoch (None: one whole pass).
    """

    def __init__(self, n, batch_size, seed=0, xp=None, shuffle=True, repeat=True,
                 iterations_per_epoch=None):
        if n <= 0 or batch_size <= 0:
            raise ValueError('need n > 0 and batch_size > 0, got {} and {}'.format(n, batch_size))
        if iterations_per_epoch is not None and iterations_per_epoch <= 0:
            raise ValueError('need iterations_per_epoch > 0 (or None), got {}'
                             .format(iterations_per_epoch))
        self.n = n
        self.batch_size = batch_size
        # Samples per epoch: all of them, or the first limit * batch_size of the permutation.
        self.epoch_size = n if iterations_per_epoch is None else min(
            n, int(iterations_per_epoch) * batch_size)
        self.seed = seed
        self.xp = xp if xp is not None else chainer.backend.get_array_module()
        self.shuffle = shuffle
        self.repeat = repeat
        self.reset()

    def reset(self):
        self.epoch = 0
        self.current_position = 0
        self.is_new_epoch = False
        self._previous_epoch_detail = -1.
        self._order = self._order_of(0)

    def _order_of(self, epoch):
        if not self.shuffle:
            return self.xp.arange(self.epoch_size, dtype=self.xp.int32)
        order = CounterRandom(self.xp, self.seed, STREAM_ORDER, epoch).permutation(self.n)
        return order[:self.epoch_size]

    def __next__(self):
        if not self.repeat and self.epoch > 0:
            raise StopIteration
        self._previous_epoch_detail = self.epoch_detail
        start = self.current_position
        end = min(start + self.batch_size, self.epoch_size)
        batch = self._order[start:end]
        if end >= self.epoch_size:
            self.epoch += 1
            self.current_position = 0
            self.is_new_epoch = True
            self._order = self._order_of(self.epoch)
        else:
            self.current_position = end
            self.is_new_epoch = False
        return batch

    next = __next__

    @property
    def epoch_detail(self):
        return self.epoch + self.current_position / self.epoch_size

    @property
    def previous_epoch_detail(self):
        return None if self._previous_epoch_detail < 0 else self._previous_epoch_detail

    @property
    def iterations_per_epoch(self):
        return -(-self.epoch_size // self.batch_size)

    def serialize(self, serializer):
        self.current_position = int(serializer('current_position', self.current_position))
        self.epoch = int(serializer('epoch', self.epoch))
        self.is_new_epoch = bool(serializer('is_new_epoch', self.is_new_epoch))
        self._previous_epoch_detail = float(
            serializer('previous_epoch_detail', self._previous_epoch_detail))
        self._order = self._order_of(self.epoch)


class DeviceImageFeed(object):
    """Gathers a batch from device-resident images and augments it on the device.

    Args:
        images: uint8 NCHW array on the training device (the whole training split).
        augment: callable ``(x_uint8, rng) -> float32 NCHW`` (for instance
            :func:`datasets.augment.random_crop_flip` with the mean image bound); ``rng`` is a
            :class:`~updaters.counter_rng.CounterRandom` keyed by the iteration.
        seed (int): seed of the augmentation draws.
    """

    def __init__(self, images, augment, seed=0):
        self.images = images
        self.augment = augment
        self.seed = seed

    def __len__(self):
        return len(self.images)

    @property
    def xp(self):
        """``numpy`` or ``cupy``: where the batches live."""
        return chainer.backend.get_array_module(self.images)

    def __call__(self, indices, iteration):
        rng = CounterRandom(self.xp, self.seed, STREAM_AUGMENT, iteration)
        return self.augment(self.images[indices], rng)


class _HostLoader(object):
    """A data set with ``load_batch``, the threads that decode for it, and the target device."""

    def __init__(self, dataset, device=None, threads=8):
        if threads is None or threads < 0:
            raise ValueError('threads must be 0 or more, got {}'.format(threads))
        self.dataset = dataset
        self.device = (chainer.backend.CpuDevice() if device is None
                       else chainer.get_device(device))
        self._executor = ThreadPoolExecutor(threads, 'host-feed') if threads > 0 else None

    def __len__(self):
        return len(self.dataset)

    @property
    def xp(self):
        """``numpy`` or ``cupy``: where the batches live."""
        return self.device.xp

    def _load(self, indices, rng):
        return self.device.send(self.dataset.load_batch(indices, rng, self._executor))

    def close(self):
        """Stop the decoding threads (later batches are decoded in the calling thread)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        executor = getattr(self, '_executor', None)
        if executor is not None:
            executor.shutdown(wait=False)


class HostImageFeed(_HostLoader):
    """Decodes and augments a batch on the host, in threads, and sends it to the device.

    ``feed(indices, iteration)`` takes the batch's indices to the host (no copy if they are there
    already), draws the crops and flips of the whole batch from ``CounterRandom(numpy, seed,
    STREAM_AUGMENT, iteration)`` and returns ``dataset.load_batch(indices, rng, executor)`` on
    ``device``. The batch is a function of ``(indices, iteration)`` only, whatever the threads do,
    so a resumed run sees the same images.

    CuPy launches are asynchronous, so loading batch t + 1 here runs while the device works on
    batch t, provided the indices are on the host (``IndexIterator(..., xp=numpy)``): copying
    device indices to the host would wait for everything queued before.

    Close it (:meth:`close`, or use it as a context manager) to stop its threads; they are also
    stopped, without waiting, when it is garbage-collected. ``dataset``: ``load_batch`` and
    ``__len__``, e.g. a training :class:`datasets.clothing1m.Clothing1MDataset`; ``device``:
    anything ``chainer.get_device`` takes (None: the CPU); ``threads``: 0 decodes here."""

    def __init__(self, dataset, seed=0, device=None, threads=8):
        super(HostImageFeed, self).__init__(dataset, device=device, threads=threads)
        self.seed = seed

    def __call__(self, indices, iteration):
        indices = chainer.backend.CpuDevice().send(indices)
        rng = CounterRandom(numpy, self.seed, STREAM_AUGMENT, iteration)
        return self._load(indices, rng)


class HostSplit(_HostLoader):
    """An evaluation split decoded on the host, as the batch source of
    :class:`updaters.extensions.AccuracyTracker`.

    ``batches(batch_size)`` yields ``(x, t)`` in split order: ``x`` the float32 network input
    (``dataset.load_batch``: for Clothing1M the centre crop, mean subtracted) and ``t`` the int32
    labels, both on ``device``. The labels go to the device once, here. While the device
    evaluates one batch the next one is decoded (launches are asynchronous, and nothing is read
    back per batch). ``dataset``: ``train`` False, with ``load_batch``, ``labels`` and
    ``__len__``; ``device`` and ``threads`` as for :class:`HostImageFeed`."""

    def __init__(self, dataset, device=None, threads=8):
        if getattr(dataset, 'train', False):
            raise ValueError('HostSplit evaluates with the deterministic transform: give it a data '
                             'set built with train=False')
        super(HostSplit, self).__init__(dataset, device=device, threads=threads)
        self.labels = self.device.send(numpy.asarray(dataset.labels, dtype=numpy.int32))

    def batches(self, batch_size):
        for start in range(0, len(self.dataset), batch_size):
            end = min(start + batch_size, len(self.dataset))
            yield self._load(numpy.arange(start, end), None), self.labels[start:end]

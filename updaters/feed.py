"""Mini-batches as device index arrays, and the images they select, augmented on the device.

The training set lives on the device as uint8; an iteration moves no image through the host.
``IndexIterator`` yields the indices of a mini-batch as a device int32 array; ``DeviceImageFeed``
gathers those images and augments them as one batch. Epoch orders and augmentation draws come from
:mod:`updaters.counter_rng`, keyed by epoch and iteration, so a resumed run repeats them exactly.
"""
import chainer

from updaters.counter_rng import CounterRandom, STREAM_AUGMENT, STREAM_ORDER


class IndexIterator(chainer.dataset.Iterator):
    """Shuffled passes over ``range(n)`` in batches of ``batch_size`` device indices.

    Every epoch is exactly one pass: its last batch holds the ``n % batch_size`` left-over indices
    (no wrap-around into the next epoch), so each sample is seen once per epoch. The order of
    epoch ``e`` is a permutation keyed by ``(seed, e)``; only the position is state.

    Args:
        n (int): number of samples.
        batch_size (int): indices per batch.
        seed (int): seed of the epoch orders.
        xp: ``numpy`` or ``cupy``: where the index arrays live.
        shuffle (bool): shuffle every epoch (else ascending order).
        repeat (bool): go on for ever (else stop after one epoch).
    """

    def __init__(self, n, batch_size, seed=0, xp=None, shuffle=True, repeat=True):
        if n <= 0 or batch_size <= 0:
            raise ValueError('need n > 0 and batch_size > 0, got {} and {}'.format(n, batch_size))
        self.n = n
        self.batch_size = batch_size
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
            return self.xp.arange(self.n, dtype=self.xp.int32)
        return CounterRandom(self.xp, self.seed, STREAM_ORDER, epoch).permutation(self.n)

    def __next__(self):
        if not self.repeat and self.epoch > 0:
            raise StopIteration
        self._previous_epoch_detail = self.epoch_detail
        start = self.current_position
        end = min(start + self.batch_size, self.n)
        batch = self._order[start:end]
        if end >= self.n:
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
        return self.epoch + self.current_position / self.n

    @property
    def previous_epoch_detail(self):
        if self._previous_epoch_detail < 0:
            return None
        return self._previous_epoch_detail

    @property
    def iterations_per_epoch(self):
        return -(-self.n // self.batch_size)

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

    def __call__(self, indices, iteration):
        xp = chainer.backend.get_array_module(self.images)
        rng = CounterRandom(xp, self.seed, STREAM_AUGMENT, iteration)
        return self.augment(self.images[indices], rng)

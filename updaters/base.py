"""What the training steps share: index batches, one optimisation step, a watch on the loss."""
import chainer
from chainer import training


class DeviceBatchUpdater(training.updaters.StandardUpdater):
    """A ``StandardUpdater`` whose iterator yields device index arrays (see :mod:`updaters.feed`).

    Subclasses implement ``update_core`` with :meth:`next_batch` and :meth:`step`. The loss is
    watched on the device: the first iteration whose loss is not finite is remembered there, and
    :meth:`first_nonfinite` (one host read, called once per epoch by
    :class:`updaters.extensions.StopOnNonFinite`) reports it."""

    #: How the step is called in messages and file names.
    step_name = 'train'

    def __init__(self, iterator, optimizer, feed, device=None):
        super(DeviceBatchUpdater, self).__init__(iterator, optimizer, device=device)
        self.feed = feed
        self._bad = None  # device int64: 1-based iteration of the first non-finite loss, or -1

    @property
    def model(self):
        return self.get_optimizer('main').target

    @property
    def xp(self):
        return self.feed.xp

    def next_batch(self):
        """The next batch: (device indices, augmented float32 images).

        The feed gets the indices where the iterator made them: a host feed given host indices
        loads the batch without waiting for the device (whose queued work goes on meanwhile);
        the indices then go to the device for the label lookups."""
        indices = self.get_iterator('main').next()
        images = self.feed(indices, self.iteration)
        return chainer.backend.get_device_from_array(images).send(indices), images

    def step(self, loss, **terms):
        """Back-propagate ``loss``, update the model, report ``loss`` and ``terms`` (no host read).

        At an epoch's last batch the optimizer is told that a new epoch begins
        (``optimizer.new_epoch``), as ``StandardUpdater`` does, so that ``optimizer.epoch``
        counts epochs for hooks and extensions that read it."""
        model = self.model
        model.cleargrads()
        loss.backward()
        optimizer = self.get_optimizer('main')
        optimizer.update()
        if self.auto_new_epoch and self.get_iterator('main').is_new_epoch:
            optimizer.new_epoch(auto=True)
        chainer.report(dict({'loss': loss}, **terms), model)
        self._watch(loss.array)

    def _watch(self, loss):
        xp = self.xp
        if self._bad is None:
            self._bad = xp.full((), -1, dtype=xp.int64)
        newly_bad = xp.logical_and(~xp.isfinite(loss), self._bad < 0)
        self._bad = xp.where(newly_bad, self.iteration + 1, self._bad)

    def first_nonfinite(self):
        """``(iteration, epoch)``, 1-based, of the first non-finite loss or None (a device read)."""
        iteration = -1 if self._bad is None else int(self._bad)
        if iteration < 0:
            return None
        per_epoch = self.get_iterator('main').iterations_per_epoch
        return iteration, (iteration - 1) // per_epoch + 1

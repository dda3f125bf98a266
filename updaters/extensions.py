"""Trainer extensions that measure the steps: accuracy curves with best/last, label accuracy, and
a stop on a non-finite loss. Each keeps what a resume needs in ``serialize`` and writes its files
atomically (:mod:`atomic_files`)."""
import chainer
import chainer.functions as F
import numpy
from chainer.training import extension

import atomic_files as atomic


def _history_serialize(serializer, key, rows, width):
    """Serialize a list of equal-length float rows as one (len, width) array."""
    if isinstance(serializer, chainer.serializer.Deserializer):
        array = serializer(key, None)
        return [] if array is None else [list(map(float, r)) for r in numpy.reshape(array, (-1, width))]
    serializer(key, numpy.asarray(rows, dtype=numpy.float64).reshape(-1, width))
    return rows


class DeviceSplit(object):
    """An evaluation split held on the device, as a batch source (see :class:`AccuracyTracker`).

    Args:
        images: uint8 NCHW array on the model's device.
        labels: int32 (n,) array on the same device.
        preprocess: callable uint8 batch -> float32 network input (mean subtraction).
    """

    def __init__(self, images, labels, preprocess):
        self.images = images
        self.labels = labels
        self.preprocess = preprocess

    def __len__(self):
        return len(self.images)

    def batches(self, batch_size):
        """``(float32 input, int32 labels)`` per batch of ``batch_size``, in split order."""
        for start in range(0, len(self.images), batch_size):
            end = start + batch_size
            yield self.preprocess(self.images[start:end]), self.labels[start:end]


def accuracy_of_batches(model, batches, n):
    """Top-1 accuracy of ``model`` over ``(x, t)`` batches (n samples in all), in test mode
    without back-prop. Correct predictions are counted on the device; one host read at the end."""
    correct = 0
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for x, t in batches:
            logits = model(x).array
            correct = correct + (logits.argmax(axis=1) == t).sum()
    return int(correct) / n if n else 0.0


def probabilities_of_batches(model, batches):
    """Softmax outputs of ``model`` over ``(x, t)`` batches, concatenated in batch order, in test
    mode without back-prop; an (n, c) float32 array on the model's device (no host read)."""
    outputs = []
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for x, _ in batches:
            outputs.append(F.softmax(model(x)).array)
    xp = chainer.backend.get_array_module(outputs[0]) if outputs else numpy
    return xp.concatenate(outputs) if outputs else numpy.zeros((0, 0), numpy.float32)


def accuracy(model, images, labels, preprocess, batch_size):
    """:func:`accuracy_of_batches` of ``images`` uint8 NCHW and ``labels`` int32 (n,), both on
    the model's device; ``preprocess`` maps a uint8 batch to the float32 network input."""
    source = DeviceSplit(images, labels, preprocess)
    return accuracy_of_batches(model, source.batches(batch_size), len(source))


class AccuracyTracker(extension.Extension):
    """Evaluates every epoch on named splits; keeps the best-selection epoch; writes curves.

    Reports ``<split>/accuracy`` for every split, and ``best/epoch``, ``best/<split>/accuracy``
    (the values at the epoch with the highest ``select`` accuracy, first such epoch on ties) and
    ``last/<split>/accuracy``. With ``path`` set, writes after each evaluation a JSON file holding
    the per-epoch curves, best and last.

    Args:
        splits (dict): name -> split, e.g. ``{'val': ..., 'test': ...}``; a split is either a
            tuple (uint8 images, int32 labels) on the model's device, or a batch source: an
            object with ``__len__`` and ``batches(batch_size)`` yielding (float32 network input,
            int32 labels) on the model's device, such as :class:`updaters.feed.HostSplit`.
        preprocess: callable uint8 batch -> float32 network input (mean subtraction), applied to
            the tuple splits only (a batch source yields the network input); may be None when
            every split is a batch source.
        select (str): the split that chooses "best" (the clean validation split).
        batch_size (int): evaluation batch size (large: test mode needs no gradient memory).
        path (str): where to write the curves (JSON), or None.
    """

    trigger = 1, 'epoch'
    priority = extension.PRIORITY_WRITER
    default_name = 'accuracy'

    def __init__(self, splits, preprocess, select='val', batch_size=1000, path=None):
        if select not in splits:
            raise ValueError('select={!r} is not one of the splits {}'.format(select, sorted(splits)))
        if preprocess is None and any(not hasattr(s, 'batches') for s in splits.values()):
            raise ValueError('preprocess is needed for the (images, labels) splits')
        self.splits = splits
        self.names = sorted(splits)
        self.preprocess = preprocess
        self.select = select
        self.batch_size = batch_size
        self.path = path
        self.history = []  # rows: [epoch, accuracy per split in self.names order]

    def __call__(self, trainer):
        model = trainer.updater.get_optimizer('main').target
        row = [float(trainer.updater.epoch)]
        for name in self.names:
            source = self._source(name)
            row.append(accuracy_of_batches(model, source.batches(self.batch_size), len(source)))
        self.history.append(row)
        chainer.report(self.summary(flat=True))
        if self.path:
            atomic.write_json(self.path, self.summary())

    def _source(self, name):
        split = self.splits[name]
        return split if hasattr(split, 'batches') else DeviceSplit(*split, self.preprocess)

    def _best_row(self):
        column = 1 + self.names.index(self.select)
        return max(self.history, key=lambda r: (r[column], -r[0]))

    def summary(self, flat=False):
        """Curves, best and last as a dict (``flat``: the scalar entries the LogReport takes)."""
        if not self.history:
            return {}
        best, last = self._best_row(), self.history[-1]
        flat_values = {'best/epoch': int(best[0])}
        for i, name in enumerate(self.names, 1):
            flat_values['{}/accuracy'.format(name)] = last[i]
            flat_values['best/{}/accuracy'.format(name)] = best[i]
            flat_values['last/{}/accuracy'.format(name)] = last[i]
        if flat:
            return flat_values
        return {
            'select': self.select,
            'epochs': [int(r[0]) for r in self.history],
            'accuracy': {name: [r[i] for r in self.history] for i, name in enumerate(self.names, 1)},
            'best': {'epoch': int(best[0]),
                     **{name: best[i] for i, name in enumerate(self.names, 1)}},
            'last': {'epoch': int(last[0]),
                     **{name: last[i] for i, name in enumerate(self.names, 1)}},
        }

    def serialize(self, serializer):
        self.history = _history_serialize(serializer, 'history', self.history, 1 + len(self.names))


class LabelAccuracyReport(extension.Extension):
    """Each epoch of step 1: how good the current hard labels are against the clean ones.

    Reports ``labels/accuracy`` (share of hard labels equal to the clean label),
    ``labels/fixed`` (of the samples whose noisy label was wrong, the share now right) and
    ``labels/broken`` (of the samples whose noisy label was right, the share now wrong); writes
    the per-epoch history as JSON to ``path`` when given.

    Args:
        label_table: :class:`updaters.labels.LabelTable` being corrected.
        noisy_labels, clean_labels: int32 (n,) arrays on the table's device; a clean label
            of -1 means unknown (Clothing1M: most noisy images have none), and such samples
            are left out of every share.
        path (str): JSON file for the history, or None.
    """

    trigger = 1, 'epoch'
    priority = extension.PRIORITY_WRITER
    default_name = 'label_accuracy'

    def __init__(self, label_table, noisy_labels, clean_labels, path=None):
        self.label_table = label_table
        self.noisy_labels = noisy_labels
        self.clean_labels = clean_labels
        self.path = path
        self.history = []  # rows: [epoch, accuracy, fixed, broken]

    def measure(self):
        """(accuracy, fixed, broken) of the table's current hard labels; one host read."""
        xp = chainer.backend.get_array_module(self.clean_labels)
        known = self.clean_labels >= 0
        right = (self.label_table.hard == self.clean_labels) & known
        was_wrong = (self.noisy_labels != self.clean_labels) & known
        counts = xp.stack([right.sum(), (right & was_wrong).sum(), was_wrong.sum(),
                           (~right & ~was_wrong & known).sum(), known.sum()])
        n_right, n_fixed, n_wrong, n_broken, n = (
            int(c) for c in chainer.backend.CpuDevice().send(counts))
        if n == 0:
            return 0.0, 0.0, 0.0
        return (n_right / n, n_fixed / n_wrong if n_wrong else 0.0,
                n_broken / (n - n_wrong) if n > n_wrong else 0.0)

    def __call__(self, trainer):
        acc, fixed, broken = self.measure()
        self.history.append([float(trainer.updater.epoch), acc, fixed, broken])
        chainer.report({'labels/accuracy': acc, 'labels/fixed': fixed, 'labels/broken': broken})
        if self.path:
            atomic.write_json(self.path, self.summary())

    def summary(self):
        keys = ('epoch', 'accuracy', 'fixed', 'broken')
        return {key: [int(r[0]) if key == 'epoch' else r[i] for r in self.history]
                for i, key in enumerate(keys)}

    def serialize(self, serializer):
        self.history = _history_serialize(serializer, 'history', self.history, 4)


class NonFiniteLossError(RuntimeError):
    pass


class StopOnNonFinite(extension.Extension):
    """Stops the run when a loss was NaN or infinite, before anything of that epoch is saved.

    It reads the updater's device-side record once per epoch (no per-iteration host sync) and
    runs before the evaluators and the snapshot, so the last snapshot on disk stays the last good
    one. The message names the step, epoch and iteration."""

    trigger = 1, 'epoch'
    priority = extension.PRIORITY_WRITER + 50
    default_name = 'stop_on_nonfinite'

    def __call__(self, trainer):
        bad = trainer.updater.first_nonfinite()
        if bad is not None:
            iteration, epoch = bad
            raise NonFiniteLossError(
                '{}: the loss became NaN or infinite at epoch {}, iteration {}; training stopped '
                'and the last good snapshot in {} was kept (lower the learning rate or check the '
                'data).'.format(trainer.updater.step_name, epoch, iteration, trainer.out))

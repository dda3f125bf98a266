"""No iteration of any updater moves an array between host and device or waits for the device.

On a GPU, reading a device value on the host (``float``, ``int``, ``bool``, ``.item()``), copying
a host array to the device, and sorting (CuPy's sort waits for the device) each stop the host
until the device has caught up, so the next launches cannot be queued while it works. This test
runs one mid-epoch iteration of every updater on the CPU with the arrays that live on the device
in a run wrapped as :class:`DeviceArray`, a numpy array that refuses to be read on the host, and
with the package's code forbidden to send host arrays to a device or to sort. Chainer's own code
is left alone (its numpy paths are not its CuPy paths); the package's code may not do any of it.
"""
import contextlib
import os
import sys

import chainer
import numpy
import pytest

from models import PreActResNet
from reproduce.run.training import optimizer as momentum_sgd
from updaters.baselines import CrossEntropyUpdater
from updaters.feed import DeviceImageFeed, IndexIterator
from updaters.joint import JointOptimizationUpdater
from updaters.labels import LabelTable
from updaters.mixup import MixupUpdater
from updaters.pencil import PencilUpdater

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = tuple(os.path.join(ROOT, p) + os.sep for p in ('updaters', 'models', 'datasets',
                                                           'reproduce'))
C, N, BATCH = 4, 24, 8


class HostTransfer(AssertionError):
    pass


def _from_package(depth=2):
    """Whether the code ``depth`` frames up is this package's (not Chainer's, numpy's, ...)."""
    return sys._getframe(depth).f_code.co_filename.startswith(PACKAGES)


class DeviceArray(numpy.ndarray):
    """A numpy array standing in for a device array: the package may not read it on the host."""

    __array_priority__ = 100

    def _refuse(self, what):
        if _from_package(3):
            raise HostTransfer('{} of a device array by {}:{}'.format(
                what, sys._getframe(2).f_code.co_filename, sys._getframe(2).f_lineno))

    def __float__(self):
        self._refuse('float()')
        return float(self.view(numpy.ndarray))

    def __int__(self):
        self._refuse('int()')
        return int(self.view(numpy.ndarray))

    def __bool__(self):
        self._refuse('bool()')
        return bool(self.view(numpy.ndarray))

    def item(self, *args):
        self._refuse('.item()')
        return self.view(numpy.ndarray).item(*args)

    def tolist(self):
        self._refuse('.tolist()')
        return self.view(numpy.ndarray).tolist()


def on_device(array):
    return numpy.asarray(array).view(DeviceArray)


class DeviceNumpy(object):
    """numpy whose new arrays are DeviceArrays (what ``xp`` is for an index iterator on a GPU)."""

    def __getattr__(self, name):
        value = getattr(numpy, name)
        if not callable(value) or isinstance(value, type):
            return value

        def wrapped(*args, **kwargs):
            out = value(*args, **kwargs)
            return out.view(DeviceArray) if isinstance(out, numpy.ndarray) else out
        return wrapped


@contextlib.contextmanager
def guarded(monkeypatch):
    """Forbids the package, for the duration, to send host arrays to a device, to copy device
    arrays to the host, and to sort."""
    send = chainer.backend.CpuDevice.send

    def checked_send(self, array):
        if _from_package() and isinstance(array, numpy.ndarray) and \
                not isinstance(array, DeviceArray):
            raise HostTransfer('a host array sent to the device by {}'.format(
                sys._getframe(1).f_code.co_filename))
        if _from_package() and isinstance(array, DeviceArray) and self.xp is numpy and \
                getattr(self, '_host', False):
            raise HostTransfer('a device array copied to the host')
        return send(self, array)

    def no_sort(original):
        def sort(*args, **kwargs):
            if _from_package():
                raise HostTransfer('a sort (it waits for the device on CuPy) by {}:{}'.format(
                    sys._getframe(1).f_code.co_filename, sys._getframe(1).f_lineno))
            return original(*args, **kwargs)
        return sort

    with monkeypatch.context() as m:
        m.setattr(chainer.backend.CpuDevice, 'send', checked_send)
        for name in ('argsort', 'sort', 'unique', 'nonzero', 'flatnonzero'):
            m.setattr(numpy, name, no_sort(getattr(numpy, name)))
        yield


def move_to_device(model):
    for link in model.links():
        for name in link._persistent:
            value = getattr(link, name)
            if isinstance(value, numpy.ndarray):
                setattr(link, name, on_device(value))
    for param in model.params():
        param.array = param.array.view(DeviceArray)


def build(kind):
    rs = numpy.random.RandomState(0)
    images = on_device(rs.randint(0, 256, size=(N, 1, 8, 8)).astype(numpy.uint8))
    noisy = on_device(rs.randint(0, C, size=N).astype(numpy.int32))
    numpy.random.seed(1)
    model = PreActResNet(1, (4, 8), C, in_channels=1)
    move_to_device(model)
    optimizer = momentum_sgd(model, {'lr': 0.1, 'momentum': 0.9, 'weight_decay': 1e-4})
    feed = DeviceImageFeed(images, lambda x, rng: x.astype(numpy.float32) / 255 - 0.5, seed=0)
    iterator = IndexIterator(N, BATCH, seed=2, xp=DeviceNumpy())
    if kind == 'step1':
        table = LabelTable(noisy, C, window=2, begin=1)
        for name in ('_y', '_probs', '_seen'):
            setattr(table, name, on_device(getattr(table, name)))
        return JointOptimizationUpdater(iterator, optimizer, feed, table, 1.2, 0.8)
    if kind == 'step2':
        targets = on_device(rs.dirichlet(numpy.ones(C), size=N).astype(numpy.float32))
        return MixupUpdater(iterator, optimizer, feed, targets, mixup_alpha=2.0, mixup_weight=1.0)
    if kind == 'cross_entropy':
        return CrossEntropyUpdater(iterator, optimizer, feed, noisy)
    if kind == 'forward_t':
        transition = on_device(numpy.full((C, C), 0.1, numpy.float32) + 0.6 * numpy.eye(C))
        return CrossEntropyUpdater(iterator, optimizer, feed, noisy, transition=transition)
    updater = PencilUpdater(iterator, optimizer, feed, noisy, C, (0, 2, 1), alpha=0.4, beta=0.1,
                            label_lr=600.0, k=10.0)
    updater.labels.logits = on_device(updater.labels.logits)
    return updater


@pytest.mark.parametrize('kind', ['step1', 'step2', 'cross_entropy', 'forward_t', 'pencil'])
def test_an_iteration_neither_transfers_nor_waits(kind, monkeypatch):
    updater = build(kind)
    updater.update()                          # the first iteration of the epoch, unguarded
    with guarded(monkeypatch):
        updater.update()                      # mid-epoch: no epoch end, no new order
    assert updater.iteration == 2 and updater.epoch == 0


def test_the_guard_catches_what_it_forbids(monkeypatch):
    """The three kinds of trouble, done by package code, fail under the guard."""
    from updaters import counter_rng
    device_value = on_device(numpy.ones(3, numpy.float32))
    with guarded(monkeypatch):
        with pytest.raises(HostTransfer, match='sort'):
            counter_rng.CounterRandom(numpy, 0, 3, 0).permutation(8)
        table = LabelTable(on_device(numpy.zeros(4, numpy.int32)), C, window=1, begin=1)
        with pytest.raises(HostTransfer, match='host array sent'):
            table.store(numpy.arange(2), on_device(numpy.full((2, C), 0.25, numpy.float32)))
    from updaters.extensions import accuracy_of_batches
    model = chainer.links.Linear(3, 2)
    batches = [(on_device(numpy.ones((1, 3), numpy.float32)),
                on_device(numpy.zeros(1, numpy.int32)))]
    with pytest.raises(HostTransfer, match='int'):
        accuracy_of_batches(model, batches, 1)     # its one read per evaluation, not per step
    assert float(device_value.sum()) == 3.0        # from the tests themselves: allowed

import json
import types

import chainer
import chainer.links as L
import numpy
import pytest
from PIL import Image

from datasets.clothing1m import Clothing1MDataset
from updaters.extensions import (AccuracyTracker, DeviceSplit, LabelAccuracyReport,
                                 NonFiniteLossError, StopOnNonFinite, accuracy,
                                 accuracy_of_batches)
from updaters.feed import HostSplit
from updaters.labels import LabelTable


class LookupModel(chainer.Chain):
    """Predicts ``self.predictions[i]`` for the image whose first pixel is i."""

    def __init__(self, n_classes):
        super().__init__()
        self.n_classes = n_classes
        self.predictions = None

    def forward(self, x):
        index = x[:, 0, 0, 0].astype(numpy.int64)
        return chainer.Variable(
            numpy.eye(self.n_classes, dtype=numpy.float32)[self.predictions[index]])


def fake_trainer(model, epoch):
    updater = types.SimpleNamespace(epoch=epoch, get_optimizer=lambda name: types.SimpleNamespace(
        target=model))
    return types.SimpleNamespace(updater=updater, out='.')


def images_indexed(n):
    x = numpy.zeros((n, 1, 2, 2), dtype=numpy.uint8)
    x[:, 0, 0, 0] = numpy.arange(n)
    return x


def test_accuracy_counts_in_batches():
    model = LookupModel(3)
    labels = numpy.array([0, 1, 2, 0, 1, 2, 0], dtype=numpy.int32)
    model.predictions = numpy.array([0, 1, 0, 0, 2, 2, 1])
    acc = accuracy(model, images_indexed(7), labels, lambda x: x.astype(numpy.float32), 3)
    assert acc == pytest.approx(4 / 7)


def test_tracker_best_last_curves_file_and_resume(tmp_path):
    n = 10
    labels = numpy.zeros(n, dtype=numpy.int32)
    splits = {'val': (images_indexed(n), labels), 'test': (images_indexed(n), labels)}
    model = LookupModel(2)
    path = tmp_path / 'accuracy.json'
    tracker = AccuracyTracker(splits, lambda x: x.astype(numpy.float32), batch_size=4,
                              path=str(path))
    # per epoch: number of right val predictions (test = val here); best val at epochs 2 and 4
    rights = [3, 8, 5, 8, 6]
    for epoch, right in enumerate(rights[:3], 1):
        model.predictions = (numpy.arange(n) >= right).astype(numpy.int64)
        observation = {}
        with chainer.Reporter().scope(observation):
            tracker(fake_trainer(model, epoch))
    state = {}
    tracker.serialize(chainer.serializers.DictionarySerializer(state))
    resumed = AccuracyTracker(splits, lambda x: x.astype(numpy.float32), batch_size=4,
                              path=str(path))
    resumed.serialize(chainer.serializers.NpzDeserializer(state))
    for epoch, right in enumerate(rights[3:], 4):
        model.predictions = (numpy.arange(n) >= right).astype(numpy.int64)
        observation = {}
        with chainer.Reporter().scope(observation):
            resumed(fake_trainer(model, epoch))
    assert observation['best/epoch'] == 2  # first of the tied best epochs
    assert observation['best/test/accuracy'] == pytest.approx(0.8)
    assert observation['last/test/accuracy'] == pytest.approx(0.6)
    assert observation['val/accuracy'] == pytest.approx(0.6)
    saved = json.loads(path.read_text())
    assert saved['epochs'] == [1, 2, 3, 4, 5]
    assert saved['accuracy']['test'] == pytest.approx([r / n for r in rights])
    assert saved['best'] == {'epoch': 2, 'val': pytest.approx(0.8), 'test': pytest.approx(0.8)}
    assert not [p for p in tmp_path.iterdir() if p.name != 'accuracy.json']  # no temp files
    with pytest.raises(ValueError):
        AccuracyTracker(splits, None, select='validation')


class ArraySource(object):
    """A batch source over host float32 inputs; counts the batches it yields."""

    def __init__(self, x, t):
        self.x, self.t, self.yielded = x, t, 0

    def __len__(self):
        return len(self.x)

    def batches(self, batch_size):
        for start in range(0, len(self.x), batch_size):
            self.yielded += 1
            yield self.x[start:start + batch_size], self.t[start:start + batch_size]


def _linear(n_in, n_out, seed):
    numpy.random.seed(seed)   # Chainer's initialisers draw from numpy's global RNG
    return L.Linear(n_in, n_out)


def _reference_predictions(link, x):
    return (x.reshape(len(x), -1) @ link.W.array.T + link.b.array).argmax(axis=1)


def test_tracker_takes_batch_sources_beside_array_splits():
    rs = numpy.random.RandomState(1)
    link = _linear(6, 4, seed=0)
    x = rs.randn(23, 6).astype(numpy.float32)
    predicted = _reference_predictions(link, x)
    t = numpy.where(rs.rand(23) < 0.6, predicted, (predicted + 1) % 4).astype(numpy.int32)
    source = ArraySource(x, t)
    images = rs.randint(0, 256, (9, 1, 2, 3)).astype(numpy.uint8)
    labels = rs.randint(0, 4, 9).astype(numpy.int32)

    def preprocess(batch):
        assert batch.dtype == numpy.uint8     # never given the batch source's float input
        return batch.astype(numpy.float32) / 255

    tracker = AccuracyTracker({'val': source, 'test': (images, labels)}, preprocess, batch_size=5)
    observation = {}
    with chainer.Reporter().scope(observation):
        tracker(fake_trainer(link, 1))
    assert source.yielded == 5
    assert observation['val/accuracy'] == pytest.approx(numpy.mean(predicted == t))
    expected_test = numpy.mean(_reference_predictions(link, images.astype(numpy.float32) / 255)
                               == labels)
    assert observation['test/accuracy'] == pytest.approx(expected_test)
    assert accuracy_of_batches(link, source.batches(4), len(source)) == observation['val/accuracy']
    assert accuracy_of_batches(link, iter(()), 0) == 0.0
    # Batch sources only: no preprocess needed; array splits need one.
    AccuracyTracker({'val': source}, None)
    with pytest.raises(ValueError, match='preprocess'):
        AccuracyTracker({'val': source, 'test': (images, labels)}, None)


def test_device_split_is_the_array_path():
    images = images_indexed(7)
    labels = numpy.arange(7, dtype=numpy.int32) % 3
    split = DeviceSplit(images, labels, lambda x: x.astype(numpy.float32))
    assert len(split) == 7
    batches = list(split.batches(3))
    assert [len(x) for x, _ in batches] == [3, 3, 1]
    assert batches[0][0].dtype == numpy.float32 and batches[2][1].tolist() == [0]


def test_tracker_on_a_host_split_of_jpegs(tmp_path):
    rs = numpy.random.RandomState(2)
    paths = []
    for i in range(6):
        paths.append('images/0/00/eval,{}.jpg'.format(i))
        (tmp_path / paths[-1]).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rs.randint(0, 256, (30 + 9 * i, 40, 3)).astype(numpy.uint8)).save(
            str(tmp_path / paths[-1]), format='JPEG')
    link = _linear(3 * 224 * 224, 14, seed=1)
    probe = Clothing1MDataset(str(tmp_path), paths, [0] * 6, train=False)
    x = numpy.stack([probe[i][0] for i in range(6)])
    predicted = _reference_predictions(link, x)
    labels = numpy.where(numpy.arange(6) % 3 == 0, (predicted + 1) % 14, predicted)  # 4 of 6
    dataset = Clothing1MDataset(str(tmp_path), paths, labels, train=False)
    with HostSplit(dataset, threads=2) as val:
        tracker = AccuracyTracker({'val': val}, None, batch_size=4)
        observation = {}
        with chainer.Reporter().scope(observation):
            tracker(fake_trainer(link, 1))
    assert observation['val/accuracy'] == pytest.approx(4 / 6)
    assert observation['best/val/accuracy'] == pytest.approx(4 / 6)


def test_label_accuracy_report_against_numpy(tmp_path):
    rs = numpy.random.RandomState(0)
    clean = rs.randint(0, 4, size=200).astype(numpy.int32)
    noisy = clean.copy()
    noisy[:80] = (clean[:80] + 1) % 4
    table = LabelTable(noisy, 4, window=1, begin=1)
    corrected = noisy.copy()
    corrected[:50] = clean[:50]  # 50 of the 80 wrong ones fixed
    corrected[150:160] = (clean[150:160] + 2) % 4  # 10 of the 120 right ones broken
    table.soft[...] = numpy.eye(4, dtype=numpy.float32)[corrected]
    report = LabelAccuracyReport(table, noisy, clean, path=str(tmp_path / 'labels.json'))
    observation = {}
    with chainer.Reporter().scope(observation):
        report(fake_trainer(None, 1))
    assert observation['labels/accuracy'] == pytest.approx(numpy.mean(corrected == clean))
    assert observation['labels/fixed'] == pytest.approx(50 / 80)
    assert observation['labels/broken'] == pytest.approx(10 / 120)
    assert json.loads((tmp_path / 'labels.json').read_text())['epoch'] == [1]


def test_stop_on_nonfinite_names_step_epoch_and_iteration():
    updater = types.SimpleNamespace(step_name='step1', first_nonfinite=lambda: (17, 3))
    with pytest.raises(NonFiniteLossError, match='step1.*epoch 3, iteration 17'):
        StopOnNonFinite()(types.SimpleNamespace(updater=updater, out='run'))
    updater.first_nonfinite = lambda: None
    StopOnNonFinite()(types.SimpleNamespace(updater=updater, out='run'))

import chainer_compat  # noqa: F401  (must precede the first chainer import)
import os

import chainer
import numpy as np
import pytest

from updaters.labels import LabelTable

N, C = 7, 4
NOISY = np.array([0, 1, 2, 3, 0, 1, 2], dtype=np.int32)


def epoch_probs(n_epochs, seed=0):
    """P[e - 1] = the softmax outputs of epoch e, float32 (n, c)."""
    p = np.random.RandomState(seed).rand(n_epochs, N, C).astype(np.float32)
    return p / p.sum(axis=2, keepdims=True)


def run_epoch(table, probs, seen=None, batch=3, seed=0):
    """Store ``probs`` for the samples with ``seen`` (default all) in shuffled mini-batches."""
    idx = np.flatnonzero(np.ones(N, bool) if seen is None else seen)
    idx = np.random.RandomState(seed).permutation(idx)
    for s in range(0, len(idx), batch):
        b = idx[s:s + batch]
        table.store(b, probs[b])


def reference(P, masks, window, begin):
    """Plain numpy Y after each epoch (float64): mean over seen epochs in the window."""
    y = np.eye(C)[NOISY]
    out = []
    for e in range(1, len(P) + 1):
        if e >= begin:
            lo = 0 if window is None else max(0, e - window)
            m = masks[lo:e].astype(np.float64)
            total = (P[lo:e] * m[:, :, None]).sum(axis=0)
            count = m.sum(axis=0)
            y = np.where(count[:, None] > 0, total / np.maximum(count, 1)[:, None], y)
        out.append(y.copy())
    return out


def test_window_three_begin_three_means_the_right_epochs():
    P = epoch_probs(5)
    table = LabelTable(NOISY, C, window=3, begin=3)
    onehot = np.eye(C, dtype=np.float32)[NOISY]
    np.testing.assert_array_equal(table.soft, onehot)
    for e in range(1, 6):
        run_epoch(table, P[e - 1], seed=e)
        assert table.end_epoch(e) == (e >= 3)
        if e < 3:
            np.testing.assert_array_equal(table.soft, onehot)
        else:
            want = P[e - 3:e].astype(np.float64).mean(axis=0)   # epochs e-2, e-1, e
            np.testing.assert_allclose(table.soft, want, rtol=0, atol=1e-6)
        assert table.soft.dtype == np.float32 and table.soft.shape == (N, C)


class OfficialLabelUpdate(object):
    """Tanaka et al.'s ``label_update`` (first_step_train.py), restated in numpy: a count that
    starts at 0 and is incremented first, a (n, 10, c) buffer written at slot (count - 1) % 10,
    and soft labels = the mean over all ten slots once ``count >= begin``."""

    def __init__(self, noisy, begin, window=10):
        self.count, self.begin, self.window = 0, begin, window
        self.prediction = np.zeros((len(noisy), window, C))
        self.soft_labels = np.eye(C)[noisy]

    def __call__(self, results):
        self.count += 1
        self.prediction[:, (self.count - 1) % self.window] = results
        if self.count >= self.begin:
            self.soft_labels = self.prediction.mean(axis=1)
            return True
        return False


def test_begin_seventy_first_updates_at_epoch_70_from_epochs_61_to_70_as_the_official_code():
    p = np.random.RandomState(3).rand(75, N, C).astype(np.float32)
    table = LabelTable(NOISY, C, window=10, begin=70)
    official = OfficialLabelUpdate(NOISY, begin=70)
    for e in range(1, 76):
        table.store(np.arange(N), p[e - 1])
        assert table.end_epoch(e) == official(p[e - 1].astype(np.float64)) == (e >= 70)
        np.testing.assert_allclose(table.soft, official.soft_labels, rtol=0, atol=1e-6)
        if e == 70:
            np.testing.assert_allclose(table.soft, p[60:70].astype(np.float64).mean(axis=0),
                                       rtol=0, atol=1e-6)
        if e == 69:
            np.testing.assert_array_equal(table.soft, np.eye(C)[NOISY])


def test_begin_must_be_a_one_based_epoch():
    with pytest.raises(ValueError, match='at least 1'):
        LabelTable(NOISY, C, window=2, begin=0)


def test_window_none_is_the_mean_of_all_epochs():
    P = epoch_probs(5, seed=1)
    table = LabelTable(NOISY, C, window=None, begin=1)
    for e in range(1, 6):
        run_epoch(table, P[e - 1], seed=e)
        assert table.end_epoch(e)
        np.testing.assert_allclose(table.soft, P[:e].astype(np.float64).mean(axis=0),
                                   rtol=0, atol=1e-6)


@pytest.mark.parametrize('window', [3, None])
def test_unseen_samples_keep_y_and_partially_seen_average_seen_epochs(window):
    P = epoch_probs(6, seed=2)
    masks = np.ones((6, N), bool)
    masks[:, 0] = False                       # sample 0: never seen
    masks[[1, 3, 4], 1] = False               # sample 1: seen in epochs 1, 3, 6
    masks[1:, 2] = False                      # sample 2: seen in epoch 1 only
    masks[0, 3] = False                       # sample 3: missed epoch 1
    table = LabelTable(NOISY, C, window=window, begin=1)
    for e, (want, m) in enumerate(zip(reference(P, masks, window, 1), masks), start=1):
        run_epoch(table, P[e - 1], seen=m, seed=e)
        table.end_epoch(e)
        np.testing.assert_allclose(table.soft, want, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(table.soft[0], np.eye(C)[NOISY[0]])
    if window == 3:   # sample 2 had no output in epochs 4..6: it keeps its epoch-3 value P1
        np.testing.assert_allclose(table.soft[2], P[0, 2], atol=1e-6)


@pytest.mark.parametrize('window', [3, None])
def test_serialize_round_trip_mid_run_continues_identically(window, tmp_path):
    P = epoch_probs(6, seed=4)
    full = LabelTable(NOISY, C, window=window, begin=1)
    for e in range(1, 7):
        run_epoch(full, P[e - 1], seed=e)
        full.end_epoch(e)

    first = LabelTable(NOISY, C, window=window, begin=1)
    for e in range(1, 4):
        run_epoch(first, P[e - 1], seed=e)
        first.end_epoch(e)
    order = np.random.RandomState(4).permutation(N)       # epoch 4's order (seed=4)
    first.store(order[:3], P[3][order[:3]])                # interrupted in epoch 4
    path = str(tmp_path / 'snapshot.npz')
    chainer.serializers.save_npz(path, first)

    resumed = LabelTable(NOISY, C, window=window, begin=1)
    y_array = resumed.soft
    chainer.serializers.load_npz(path, resumed)
    assert resumed.soft is y_array                          # loaded into the existing array
    assert resumed.epoch == 3
    resumed.store(order[3:6], P[3][order[3:6]])
    resumed.store(order[6:], P[3][order[6:]])
    resumed.end_epoch(4)
    for e in range(5, 7):
        run_epoch(resumed, P[e - 1], seed=e)
        resumed.end_epoch(e)
    np.testing.assert_array_equal(resumed.soft, full.soft)
    np.testing.assert_array_equal(resumed.hard, full.hard)
    np.testing.assert_array_equal(resumed._seen, full._seen)
    assert resumed._position == full._position and resumed.epoch == full.epoch == 6


def test_targets_and_hard_labels():
    P = epoch_probs(1, seed=5)
    table = LabelTable(NOISY, C, window=2, begin=1)
    run_epoch(table, P[0])
    table.end_epoch()
    assert table.epoch == 1
    hard = table.hard
    assert hard.dtype == np.int32 and hard.shape == (N,)
    np.testing.assert_array_equal(hard, P[0].argmax(axis=1))
    np.testing.assert_array_equal(table.targets('hard'), np.eye(C, dtype=np.float32)[hard])
    assert table.targets('soft') is table.soft
    rows = np.array([4, 0, 4])
    np.testing.assert_array_equal(table.targets('soft', rows), table.soft[rows])
    np.testing.assert_array_equal(table.targets('hard', rows), np.eye(C)[hard[rows]])
    with pytest.raises(ValueError):
        table.targets('argmax')


def test_closing_an_epoch_twice_raises():
    table = LabelTable(NOISY, C, window=2, begin=1)
    table.end_epoch(1)
    with pytest.raises(ValueError):
        table.end_epoch(1)


def test_save_writes_soft_and_hard_atomically(tmp_path):
    P = epoch_probs(1, seed=6)
    table = LabelTable(NOISY, C, window=None, begin=1)
    table.store(np.arange(N), chainer.Variable(P[0]))
    table.end_epoch(1)
    path = tmp_path / 'labels.npz'
    table.save(str(path), noisy=NOISY)
    assert os.listdir(tmp_path) == ['labels.npz']
    with np.load(path) as f:
        np.testing.assert_array_equal(f['soft'], table.soft)
        np.testing.assert_array_equal(f['hard'], table.hard)
        np.testing.assert_array_equal(f['noisy'], NOISY)

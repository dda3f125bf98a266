import chainer
import numpy
import pytest
from PIL import Image

from datasets.clothing1m import Clothing1MDataset
from updaters.counter_rng import STREAM_AUGMENT, CounterRandom
from updaters.feed import DeviceImageFeed, HostImageFeed, HostSplit, IndexIterator


def _epoch(it):
    batches = [next(it)]
    while not it.is_new_epoch:
        batches.append(next(it))
    return batches


def test_each_epoch_is_one_shuffled_pass_with_a_short_last_batch():
    it = IndexIterator(10, 4, seed=0)
    first = _epoch(it)
    assert [len(b) for b in first] == [4, 4, 2]
    assert all(b.dtype == numpy.int32 for b in first)
    assert numpy.array_equal(numpy.sort(numpy.concatenate(first)), numpy.arange(10))
    assert it.epoch == 1 and it.iterations_per_epoch == 3
    second = _epoch(it)
    assert numpy.array_equal(numpy.sort(numpy.concatenate(second)), numpy.arange(10))
    assert not numpy.array_equal(numpy.concatenate(first), numpy.concatenate(second))
    assert not numpy.array_equal(numpy.concatenate(first), numpy.arange(10))


def test_epoch_detail_and_previous_epoch_detail():
    it = IndexIterator(10, 4, seed=0)
    assert it.previous_epoch_detail is None
    next(it)
    assert it.epoch_detail == pytest.approx(0.4) and it.previous_epoch_detail == 0
    next(it), next(it)
    assert it.epoch_detail == 1 and it.previous_epoch_detail == pytest.approx(0.8)


def test_no_shuffle_and_no_repeat():
    it = IndexIterator(5, 2, shuffle=False, repeat=False)
    assert [b.tolist() for b in it] == [[0, 1], [2, 3], [4]]


def test_serialize_resumes_the_same_sequence():
    import chainer
    it = IndexIterator(23, 5, seed=7)
    for _ in range(7):  # into the second epoch
        next(it)
    state = {}
    it.serialize(chainer.serializers.DictionarySerializer(state))
    rest = [next(it).tolist() for _ in range(9)]
    resumed = IndexIterator(23, 5, seed=7)
    resumed.serialize(chainer.serializers.NpzDeserializer(state))
    assert [next(resumed).tolist() for _ in range(9)] == rest
    assert resumed.epoch == it.epoch


def test_bad_sizes():
    with pytest.raises(ValueError):
        IndexIterator(0, 4)
    with pytest.raises(ValueError):
        IndexIterator(4, 0)


def test_feed_gathers_the_indexed_images_and_keys_draws_by_iteration():
    images = numpy.arange(6 * 1 * 2 * 2, dtype=numpy.uint8).reshape(6, 1, 2, 2)
    seen = []

    def augment(x, rng):
        seen.append(rng.random_sample(3))
        return x.astype(numpy.float32)

    feed = DeviceImageFeed(images, augment, seed=1)
    out = feed(numpy.array([4, 1], dtype=numpy.int32), iteration=5)
    assert numpy.array_equal(out, images[[4, 1]].astype(numpy.float32))
    feed(numpy.array([0], dtype=numpy.int32), iteration=5)
    feed(numpy.array([0], dtype=numpy.int32), iteration=6)
    assert numpy.array_equal(seen[0], seen[1]) and not numpy.array_equal(seen[0], seen[2])


# --- shorter epochs ----------------------------------------------------------------------------

def test_limited_epochs_are_random_subsets_of_distinct_indices():
    it = IndexIterator(23, 4, seed=2, iterations_per_epoch=3)
    assert it.iterations_per_epoch == 3
    epochs = []
    for epoch in range(3):
        batches = _epoch(it)
        assert [len(b) for b in batches] == [4, 4, 4]
        indices = numpy.concatenate(batches)
        assert len(set(indices.tolist())) == 12 and indices.min() >= 0 and indices.max() < 23
        assert it.epoch == epoch + 1 and it.epoch_detail == epoch + 1
        epochs.append(indices)
    assert len({tuple(e.tolist()) for e in epochs}) == 3
    assert len({frozenset(e.tolist()) for e in epochs}) == 3      # different samples, not order
    # Each epoch is the head of the permutation that a whole pass of that epoch would take.
    whole = IndexIterator(23, 4, seed=2)
    for epoch in range(3):
        numpy.testing.assert_array_equal(numpy.concatenate(_epoch(whole))[:12], epochs[epoch])


def test_limited_epoch_detail_counts_the_shorter_epoch():
    it = IndexIterator(100, 10, seed=0, iterations_per_epoch=4)
    next(it)
    assert it.epoch_detail == pytest.approx(0.25) and it.previous_epoch_detail == 0
    next(it), next(it), next(it)
    assert it.is_new_epoch and it.epoch_detail == 1
    assert it.previous_epoch_detail == pytest.approx(0.75)


def test_a_limit_beyond_one_pass_is_one_pass():
    limited = IndexIterator(10, 4, seed=0, iterations_per_epoch=5)
    whole = IndexIterator(10, 4, seed=0)
    assert limited.iterations_per_epoch == whole.iterations_per_epoch == 3
    for _ in range(7):
        numpy.testing.assert_array_equal(next(limited), next(whole))


def test_limited_epochs_without_shuffle_and_repeat():
    it = IndexIterator(10, 3, shuffle=False, repeat=False, iterations_per_epoch=2)
    assert [b.tolist() for b in it] == [[0, 1, 2], [3, 4, 5]]


def test_limited_epochs_resume_identically():
    it = IndexIterator(50, 4, seed=5, iterations_per_epoch=3)
    for _ in range(4):  # into the second epoch
        next(it)
    state = {}
    it.serialize(chainer.serializers.DictionarySerializer(state))
    rest = [next(it).tolist() for _ in range(8)]
    resumed = IndexIterator(50, 4, seed=5, iterations_per_epoch=3)
    resumed.serialize(chainer.serializers.NpzDeserializer(state))
    assert resumed.epoch_detail == pytest.approx(1 + 1 / 3)
    assert [next(resumed).tolist() for _ in range(8)] == rest
    assert (resumed.epoch, resumed.current_position) == (it.epoch, it.current_position)


@pytest.mark.parametrize('limit', [0, -1])
def test_bad_limit(limit):
    with pytest.raises(ValueError, match='iterations_per_epoch'):
        IndexIterator(10, 2, iterations_per_epoch=limit)


# --- host feed and host split ------------------------------------------------------------------

def _jpeg_dataset(root, train, n=8):
    """n small random JPEGs of different sizes as a Clothing1M data set."""
    rng = numpy.random.RandomState(0)
    paths = []
    for i in range(n):
        path = 'images/0/0{}/feed,{}.jpg'.format(i % 2, i)
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.randint(0, 256, (20 + 7 * i, 30 + 5 * i, 3)).astype(numpy.uint8)
        Image.fromarray(pixels).save(str(root / path), format='JPEG')
        paths.append(path)
    return Clothing1MDataset(str(root), paths, (numpy.arange(n) * 5) % 14, train=train)


def test_host_feed_batch_is_keyed_by_iteration(tmp_path):
    dataset = _jpeg_dataset(tmp_path, train=True)
    indices = numpy.array([6, 2, 7, 0], dtype=numpy.int32)
    with HostImageFeed(dataset, seed=3, threads=2) as feed:
        assert len(feed) == 8 and feed.xp is numpy
        first = feed(indices, 5)
        assert first.shape == (4, 3, 224, 224) and first.dtype == numpy.float32
        numpy.testing.assert_array_equal(feed(indices, 5), first)
        assert not numpy.array_equal(feed(indices, 6), first)
        expected = dataset.load_batch(indices, CounterRandom(numpy, 3, STREAM_AUGMENT, 5))
        numpy.testing.assert_array_equal(first, expected)
    # Closed, or without threads: the same batch, decoded in the calling thread.
    numpy.testing.assert_array_equal(feed(indices, 5), first)
    numpy.testing.assert_array_equal(HostImageFeed(dataset, seed=3, threads=0)(indices, 5), first)
    assert not numpy.array_equal(HostImageFeed(dataset, seed=4, threads=0)(indices, 5), first)


def test_host_feed_sends_to_the_device(tmp_path):
    dataset = _jpeg_dataset(tmp_path, train=True, n=2)
    feed = HostImageFeed(dataset, device='@numpy', threads=1)
    assert isinstance(feed(numpy.array([1], dtype=numpy.int32), 0), numpy.ndarray)
    feed.close()
    feed.close()   # twice is fine
    with pytest.raises(ValueError):
        HostImageFeed(dataset, threads=-1)


def test_host_split_yields_the_centre_crops_and_labels_in_order(tmp_path):
    dataset = _jpeg_dataset(tmp_path, train=False, n=7)
    with HostSplit(dataset, threads=2) as split:
        assert len(split) == 7 and split.xp is numpy
        batches = list(split.batches(3))
    assert [len(x) for x, _ in batches] == [3, 3, 1]
    x = numpy.concatenate([x for x, _ in batches])
    t = numpy.concatenate([t for _, t in batches])
    numpy.testing.assert_array_equal(x, numpy.stack([dataset[i][0] for i in range(7)]))
    assert t.dtype == numpy.int32 and t.tolist() == dataset.labels.tolist()


def test_host_split_refuses_a_training_set(tmp_path):
    with pytest.raises(ValueError, match='train=False'):
        HostSplit(_jpeg_dataset(tmp_path, train=True, n=1))

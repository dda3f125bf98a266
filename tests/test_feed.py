import numpy
import pytest

from updaters.feed import DeviceImageFeed, IndexIterator


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

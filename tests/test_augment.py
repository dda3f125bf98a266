import numpy
import pytest

from datasets.augment import crop_flip, normalize, random_crop_flip


def make_batch(n=16, c=3, h=8, w=8, seed=0):
    rng = numpy.random.RandomState(seed)
    x = rng.randint(0, 256, size=(n, c, h, w)).astype(numpy.uint8)
    mean = rng.uniform(0, 1, size=(c, h, w)).astype(numpy.float32)
    return x, mean


def reference_normalized(x, mean):
    return x.astype(numpy.float32) / 255.0 - mean


def all_crops(image, pad):
    """Every (top, left, flipped) window of one normalised image, zero-padded, by brute force."""
    c, h, w = image.shape
    padded = numpy.zeros((c, h + 2 * pad, w + 2 * pad), numpy.float32)
    padded[:, pad:pad + h, pad:pad + w] = image
    crops = {}
    for top in range(2 * pad + 1):
        for left in range(2 * pad + 1):
            window = padded[:, top:top + h, left:left + w]
            crops[(top, left, False)] = window
            crops[(top, left, True)] = window[:, :, ::-1]
    return crops


def test_each_output_is_exactly_a_crop_of_the_padded_normalised_input():
    x, mean = make_batch(n=32)
    pad = 2
    out = random_crop_flip(x, mean, numpy.random.RandomState(0), pad=pad)
    reference = reference_normalized(x, mean)
    for i in range(len(x)):
        crops = all_crops(reference[i], pad)
        assert any(numpy.array_equal(out[i], crop) for crop in crops.values()), i


def test_core_crops_at_the_given_offsets_and_flips():
    x, mean = make_batch(n=4)
    pad = 3
    offsets = numpy.array([[0, 0], [6, 6], [1, 5], [3, 3]])
    flips = numpy.array([False, True, True, False])
    out = crop_flip(x, mean, offsets, flips, pad)
    reference = reference_normalized(x, mean)
    for i in range(4):
        expected = all_crops(reference[i], pad)[(offsets[i, 0], offsets[i, 1], flips[i])]
        numpy.testing.assert_array_equal(out[i], expected)
    # The corner crop starts with pad rows / columns of zeros (padding is in normalised space).
    assert (out[0, :, :pad, :] == 0).all() and (out[0, :, :, :pad] == 0).all()


def test_flip_share_is_about_half():
    x, mean = make_batch(n=4000, c=1, h=4, w=4)
    x[:, :, :, 0] = 255           # a bright left column shows whether a crop was flipped
    x[:, :, :, 1:] = 0
    mean = numpy.zeros_like(mean)
    out = random_crop_flip(x, mean, numpy.random.RandomState(1), pad=0)
    flipped = out[:, 0, 0, -1] == 1.0
    assert ((out[:, 0, 0, 0] == 1.0) ^ flipped).all()
    # Binomial(4000, 0.5): standard deviation of the share 0.0079, tolerance 0.04 is 5 sigma.
    assert abs(flipped.mean() - 0.5) < 0.04


def test_every_offset_and_flip_occurs():
    # Distinct pixel values make every (top, left, flip) window distinguishable.
    x = numpy.arange(1, 17, dtype=numpy.uint8).reshape(1, 1, 4, 4).repeat(1000, axis=0)
    mean = numpy.zeros((1, 4, 4), numpy.float32)
    out = random_crop_flip(x, mean, numpy.random.RandomState(2), pad=2)
    key_of = {crop.tobytes(): key for key, crop in all_crops(normalize(x[:1], mean)[0], 2).items()}
    seen = {key_of[image.tobytes()] for image in out}
    # 50 outcomes, 1000 draws: a given one is missed with probability (49/50)^1000 < 2e-9.
    assert seen == set(key_of.values()) and len(seen) == 50


def test_pad0_without_flip_is_plain_normalisation():
    x, mean = make_batch()
    out = random_crop_flip(x, mean, numpy.random.RandomState(0), pad=0, flip=False)
    numpy.testing.assert_array_equal(out, normalize(x, mean))
    numpy.testing.assert_array_equal(out, reference_normalized(x, mean))
    assert out.dtype == numpy.float32 and out.shape == x.shape


def test_dtype_and_shape():
    x, mean = make_batch()
    out = random_crop_flip(x, mean, numpy.random.RandomState(0))
    assert out.dtype == numpy.float32 and out.shape == x.shape
    assert normalize(x, mean).dtype == numpy.float32


def test_same_seed_same_output_and_fixed_number_of_draws():
    x, mean = make_batch()
    a = random_crop_flip(x, mean, numpy.random.RandomState(5))
    b = random_crop_flip(x, mean, numpy.random.RandomState(5))
    c = random_crop_flip(x, mean, numpy.random.RandomState(6))
    numpy.testing.assert_array_equal(a, b)
    assert not numpy.array_equal(a, c)
    # The stream advances by the same amount whatever flip is.
    r1, r2 = numpy.random.RandomState(9), numpy.random.RandomState(9)
    random_crop_flip(x, mean, r1, flip=True)
    random_crop_flip(x, mean, r2, flip=False)
    assert r1.randint(1 << 30) == r2.randint(1 << 30)


def test_input_is_not_modified():
    x, mean = make_batch()
    x0, mean0 = x.copy(), mean.copy()
    random_crop_flip(x, mean, numpy.random.RandomState(0))
    numpy.testing.assert_array_equal(x, x0)
    numpy.testing.assert_array_equal(mean, mean0)


def test_errors():
    x, mean = make_batch(n=2)
    with pytest.raises(ValueError, match='uint8'):
        normalize(x.astype(numpy.float32), mean)
    with pytest.raises(ValueError, match='mean'):
        normalize(x, mean[:, :4])
    with pytest.raises(ValueError, match='offsets'):
        crop_flip(x, mean, numpy.array([[0, 0], [0, 9]]), numpy.zeros(2, bool), pad=4)
    with pytest.raises(ValueError, match='offsets'):
        crop_flip(x, mean, numpy.zeros((2, 2), numpy.float32), numpy.zeros(2, bool), pad=4)
    with pytest.raises(ValueError, match='flips'):
        crop_flip(x, mean, numpy.zeros((2, 2), int), numpy.zeros(2, int), pad=4)
    with pytest.raises(ValueError, match='randint and random_sample'):
        random_crop_flip(x, mean, numpy.random.default_rng(0))


def test_any_source_with_randint_and_random_sample_works():
    class Fixed(object):
        def randint(self, low, high, size):
            return numpy.full(size, high - 1)

        def random_sample(self, size):
            return numpy.zeros(size)             # < 0.5: every image flipped

    x, mean = make_batch(n=3)
    out = random_crop_flip(x, mean, Fixed(), pad=2)
    expected = crop_flip(x, mean, numpy.full((3, 2), 4), numpy.ones(3, bool), pad=2)
    numpy.testing.assert_array_equal(out, expected)


def _cupy_or_skip():
    cupy = pytest.importorskip('cupy')
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError
    except Exception:
        pytest.skip('no CUDA device')
    return cupy


def test_cupy_matches_numpy_core():
    cupy = _cupy_or_skip()
    x, mean = make_batch(n=64)
    rng = numpy.random.RandomState(0)
    offsets = rng.randint(0, 9, size=(64, 2))
    flips = rng.random_sample(64) < 0.5
    expected = crop_flip(x, mean, offsets, flips, 4)
    got = crop_flip(cupy.asarray(x), cupy.asarray(mean), cupy.asarray(offsets),
                    cupy.asarray(flips), 4)
    assert isinstance(got, cupy.ndarray) and got.dtype == numpy.float32
    numpy.testing.assert_allclose(cupy.asnumpy(got), expected, atol=1e-6)
    out = random_crop_flip(cupy.asarray(x), cupy.asarray(mean), cupy.random.RandomState(0))
    again = random_crop_flip(cupy.asarray(x), cupy.asarray(mean), cupy.random.RandomState(0))
    assert isinstance(out, cupy.ndarray) and bool((out == again).all())
    with pytest.raises(ValueError, match='numpy arrays but the images are cupy'):
        random_crop_flip(cupy.asarray(x), cupy.asarray(mean), numpy.random.RandomState(0))

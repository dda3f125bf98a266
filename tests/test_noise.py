import numpy
import pytest

from datasets.noise import (CIFAR10_ASYMMETRIC, asymmetric_noise, symmetric_noise,
                            transition_matrix)


def balanced_labels(per_class=4500, n_classes=10, seed=1):
    labels = numpy.repeat(numpy.arange(n_classes, dtype=numpy.int32), per_class)
    return numpy.random.RandomState(seed).permutation(labels)


def confusion(clean, noisy, n_classes=10):
    """Row-normalised empirical P(noisy = j | clean = i)."""
    counts = numpy.zeros((n_classes, n_classes))
    numpy.add.at(counts, (clean, noisy), 1)
    return counts / counts.sum(axis=1, keepdims=True)


# ---- symmetric -------------------------------------------------------------------------------

@pytest.mark.parametrize('rate', [0.0, 0.1, 0.5, 0.9])
def test_symmetric_resamples_exactly_round_rate_n_samples(rate):
    clean = balanced_labels(per_class=100)                  # n = 1000
    noisy = symmetric_noise(clean, rate, seed=3)
    n_chosen = int(round(rate * len(clean)))
    # Re-derive the protocol: the first round(rate * n) of the seeded permutation are resampled.
    rng = numpy.random.RandomState(3)
    order = rng.permutation(len(clean))
    untouched = order[n_chosen:]
    numpy.testing.assert_array_equal(noisy[untouched], clean[untouched])
    numpy.testing.assert_array_equal(noisy[order[:n_chosen]], rng.randint(0, 10, size=n_chosen))


def test_symmetric_confusion_matches_transition_matrix():
    clean = balanced_labels(per_class=20000)                 # 200k labels
    rate = 0.6
    noisy = symmetric_noise(clean, rate, seed=0)
    empirical = confusion(clean, noisy)
    # Each entry is a share of 20k rows; its standard error is below 0.0035, so 0.015 is > 4 sigma.
    numpy.testing.assert_allclose(empirical, transition_matrix('symmetric', rate), atol=0.015)
    # The true class is among the draws: only (1 - 1/c) * rate of labels change.
    assert abs(numpy.mean(noisy != clean) - 0.9 * rate) < 0.005


def test_symmetric_returns_int32_and_leaves_input_alone():
    clean = balanced_labels(per_class=50).astype(numpy.int64)
    before = clean.copy()
    noisy = symmetric_noise(clean, 0.5, seed=0)
    assert noisy.dtype == numpy.int32 and noisy.shape == clean.shape
    numpy.testing.assert_array_equal(clean, before)
    assert clean.dtype == numpy.int64


def test_symmetric_is_deterministic_per_seed():
    clean = balanced_labels(per_class=100)
    numpy.testing.assert_array_equal(symmetric_noise(clean, 0.4, seed=7),
                                     symmetric_noise(clean, 0.4, seed=7))
    assert (symmetric_noise(clean, 0.4, seed=7) != symmetric_noise(clean, 0.4, seed=8)).any()


def test_symmetric_accepts_lists():
    assert symmetric_noise([0, 1, 2, 3], 0.0, n_classes=4).tolist() == [0, 1, 2, 3]


# ---- asymmetric ------------------------------------------------------------------------------

@pytest.mark.parametrize('rate', [0.1, 0.2, 0.3, 0.4, 0.5])
def test_asymmetric_flips_exactly_round_rate_per_source_class(rate):
    clean = balanced_labels(per_class=4500)
    noisy = asymmetric_noise(clean, rate, seed=5)
    for cls in range(10):
        members = clean == cls
        if cls in CIFAR10_ASYMMETRIC:
            target = CIFAR10_ASYMMETRIC[cls]
            assert (noisy[members] == target).sum() == round(rate * 4500)
            assert ((noisy[members] == target) | (noisy[members] == cls)).all()
        else:
            numpy.testing.assert_array_equal(noisy[members], cls)


def test_asymmetric_rounds_per_class_count():
    # Class sizes 7 and 3: round(0.5 * 7) = 4 (ties to even), round(0.5 * 3) = 2.
    clean = numpy.array([2] * 7 + [9] * 3, dtype=numpy.int32)
    noisy = asymmetric_noise(clean, 0.5, seed=0)
    assert (noisy[:7] == 0).sum() == 4 and (noisy[7:] == 1).sum() == 2


def test_asymmetric_swaps_cat_and_dog_from_clean_labels():
    # Cat -> dog and dog -> cat: samples are chosen by their clean label, so a cat made a dog
    # is never turned back into a cat.
    clean = numpy.array([3] * 10 + [5] * 10, dtype=numpy.int32)
    noisy = asymmetric_noise(clean, 0.3, seed=0)
    assert (noisy[:10] == 5).sum() == 3 and (noisy[10:] == 3).sum() == 3


def test_asymmetric_confusion_equals_transition_matrix():
    clean = balanced_labels(per_class=1000)
    noisy = asymmetric_noise(clean, 0.4, seed=2)
    # Exact counts per class, hence exact equality (up to float32 rounding of the matrix).
    numpy.testing.assert_allclose(confusion(clean, noisy), transition_matrix('asymmetric', 0.4),
                                  atol=1e-6)


def test_asymmetric_custom_mapping_and_classes():
    clean = numpy.repeat(numpy.arange(3), 10)
    noisy = asymmetric_noise(clean, 0.2, seed=0, mapping={0: 2}, n_classes=3)
    assert (noisy[:10] == 2).sum() == 2
    numpy.testing.assert_array_equal(noisy[10:], clean[10:])


def test_asymmetric_is_deterministic_untouching_and_int32():
    clean = balanced_labels(per_class=200)
    before = clean.copy()
    a = asymmetric_noise(clean, 0.3, seed=11)
    b = asymmetric_noise(clean, 0.3, seed=11)
    c = asymmetric_noise(clean, 0.3, seed=12)
    numpy.testing.assert_array_equal(a, b)
    assert (a != c).any()
    numpy.testing.assert_array_equal(clean, before)
    assert a.dtype == numpy.int32


# ---- transition matrix -----------------------------------------------------------------------

def test_transition_matrix_symmetric_values():
    t = transition_matrix('symmetric', 0.5, n_classes=4)
    assert t.shape == (4, 4) and t.dtype == numpy.float32
    numpy.testing.assert_allclose(numpy.diag(t), 1 - 0.5 + 0.5 / 4)
    numpy.testing.assert_allclose(t[~numpy.eye(4, dtype=bool)], 0.5 / 4)
    numpy.testing.assert_allclose(t.sum(axis=1), 1, rtol=1e-6)


def test_transition_matrix_asymmetric_values():
    t = transition_matrix('asymmetric', 0.3, dtype=numpy.float64)
    expected = numpy.eye(10)
    for source, target in CIFAR10_ASYMMETRIC.items():
        expected[source, source] = 0.7
        expected[source, target] = 0.3
    numpy.testing.assert_allclose(t, expected)
    numpy.testing.assert_allclose(t.sum(axis=1), 1)


def test_zero_rate_is_identity():
    numpy.testing.assert_array_equal(transition_matrix('symmetric', 0.0), numpy.eye(10))
    numpy.testing.assert_array_equal(transition_matrix('asymmetric', 0), numpy.eye(10))


# ---- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize('rate', [-0.1, 1.0, 1.5, float('nan'), '0.3', None, True])
def test_bad_rates_raise(rate):
    labels = numpy.arange(10)
    with pytest.raises(ValueError, match='rate'):
        symmetric_noise(labels, rate)
    with pytest.raises(ValueError, match='rate'):
        asymmetric_noise(labels, rate)
    with pytest.raises(ValueError, match='rate'):
        transition_matrix('symmetric', rate)


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="unknown noise kind 'pair'"):
        transition_matrix('pair', 0.2)
    with pytest.raises(ValueError, match='mapping'):
        transition_matrix('symmetric', 0.2, mapping={0: 1})


@pytest.mark.parametrize('labels', [[0, 10], [-1, 3], [0.0, 1.0], [[0, 1]]])
def test_bad_labels_raise(labels):
    with pytest.raises(ValueError, match='labels'):
        symmetric_noise(numpy.array(labels), 0.2)
    with pytest.raises(ValueError, match='labels'):
        asymmetric_noise(numpy.array(labels), 0.2)


@pytest.mark.parametrize('mapping', [{0: 10}, {-1: 2}, {10: 0}, {1: 1}, {0.5: 1}])
def test_bad_mappings_raise(mapping):
    with pytest.raises(ValueError, match='mapping'):
        asymmetric_noise(numpy.arange(10), 0.2, mapping=mapping)
    with pytest.raises(ValueError, match='mapping'):
        transition_matrix('asymmetric', 0.2, mapping=mapping)


def test_bad_n_classes_raise():
    with pytest.raises(ValueError, match='n_classes'):
        symmetric_noise(numpy.arange(3), 0.2, n_classes=1)


def test_default_mapping_cannot_be_changed():
    with pytest.raises(TypeError):
        CIFAR10_ASYMMETRIC[0] = 1

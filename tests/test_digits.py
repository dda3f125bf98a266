import numpy
import pytest
import sklearn.datasets

from datasets.digits import DIGITS_ASYMMETRIC, load_digits


@pytest.fixture(scope='module')
def data():
    return load_digits()


@pytest.fixture(scope='module')
def sk():
    return sklearn.datasets.load_digits()


def all_images(data):
    return numpy.concatenate([data.train_x, data.val_x, data.test_x])


def test_shapes_types_and_settings(data):
    for x, y in [(data.train_x, data.train_y), (data.val_x, data.val_y),
                 (data.test_x, data.test_y)]:
        assert x.dtype == numpy.uint8 and x.shape[1:] == (1, 8, 8)
        assert y.dtype == numpy.int32 and y.shape == (len(x),)
    assert data.mean.dtype == numpy.float32 and data.mean.shape == (1, 8, 8)
    assert data.name == 'digits' and data.n_classes == 10
    assert data.class_names == tuple('0123456789')
    assert data.pad == 1 and data.flip is False


def test_split_sizes_and_per_class_counts(data, sk):
    assert len(data.test_x) == 300 and len(data.val_x) == 200
    assert len(data.train_x) == 1797 - 500
    assert numpy.bincount(data.test_y).tolist() == [30] * 10
    assert numpy.bincount(data.val_y).tolist() == [20] * 10
    assert numpy.bincount(data.train_y).tolist() == (numpy.bincount(sk.target) - 50).tolist()


def test_splits_are_disjoint_and_cover_all_images(data, sk):
    # Match every image back to sklearn's rows (with its label); the multisets must coincide.
    ours = sorted(x.tobytes() + bytes([y]) for x, y in zip(
        all_images(data), numpy.concatenate([data.train_y, data.val_y, data.test_y])))
    scaled = numpy.round(sk.images * 255 / 16).astype(numpy.uint8)
    theirs = sorted(x.tobytes() + bytes([y]) for x, y in zip(scaled, sk.target))
    assert len(ours) == 1797 and ours == theirs


def test_pixel_scaling(data, sk):
    values = numpy.unique(all_images(data))
    expected = numpy.unique(numpy.round(numpy.unique(sk.images) * 255 / 16))
    numpy.testing.assert_array_equal(values, expected)
    assert values.min() == 0 and values.max() == 255
    assert numpy.round(8 * 255 / 16) in values          # 127.5 -> 128


def test_mean_is_that_of_train(data):
    numpy.testing.assert_allclose(data.mean, data.train_x.mean(axis=0) / 255, rtol=1e-6)


def test_determinism_and_seed_dependence(data):
    again = load_digits()
    numpy.testing.assert_array_equal(data.test_x, again.test_x)
    numpy.testing.assert_array_equal(data.train_y, again.train_y)
    other = load_digits(split_seed=1)
    assert not numpy.array_equal(data.test_x, other.test_x)


def test_custom_sizes():
    d = load_digits(n_val_per_class=5, n_test_per_class=0)
    assert len(d.val_x) == 50 and len(d.test_x) == 0 and len(d.train_x) == 1747
    with pytest.raises(ValueError, match='only 174 samples'):
        load_digits(n_val_per_class=100, n_test_per_class=100)


# ---- the split and mean helpers the loaders share ---------------------------------------------

def test_stratified_split_helper():
    from datasets.image_data import stratified_split
    labels = numpy.array([0, 1, 2] * 7 + [2, 2])
    first, rest = stratified_split(labels, 3, seed=4)
    assert numpy.bincount(labels[first]).tolist() == [3, 3, 3]
    assert (numpy.diff(first) > 0).all() and (numpy.diff(rest) > 0).all()
    assert sorted(numpy.concatenate([first, rest]).tolist()) == list(range(len(labels)))
    again, _ = stratified_split(labels, 3, seed=4)
    numpy.testing.assert_array_equal(first, again)
    with pytest.raises(ValueError, match='labels must be a 1-D array of integers'):
        stratified_split(labels.astype(float), 3, seed=0)
    with pytest.raises(ValueError, match='non-negative'):
        stratified_split(labels, -1, seed=0)


def test_image_data_checks_its_fields(data):
    import dataclasses
    with pytest.raises(ValueError, match='train_y must be an int32'):
        dataclasses.replace(data, train_y=data.train_y.astype(numpy.int64))
    with pytest.raises(ValueError, match='mean must be a float32'):
        dataclasses.replace(data, mean=data.mean.astype(numpy.float64))
    with pytest.raises(ValueError, match='class_names has 2 names'):
        dataclasses.replace(data, class_names=('a', 'b'))
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.pad = 4


def test_digits_asymmetric_mapping_is_valid(data):
    from datasets.noise import asymmetric_noise, transition_matrix
    noisy = asymmetric_noise(data.train_y, 0.4, mapping=DIGITS_ASYMMETRIC)
    for source, target in DIGITS_ASYMMETRIC.items():
        members = data.train_y == source
        assert (noisy[members] == target).sum() == round(0.4 * members.sum())
    t = transition_matrix('asymmetric', 0.4, mapping=DIGITS_ASYMMETRIC)
    numpy.testing.assert_allclose(t.sum(axis=1), 1, rtol=1e-6)


def test_a_damaged_digits_file_is_named(tmp_path, monkeypatch):
    """A truncated digits.csv.gz (a damaged scikit-learn install) is one DataError naming the
    file, not gzip's EOFError."""
    import gzip
    import os
    import sklearn.datasets._base as base
    from datasets.errors import DataError
    real = os.path.join(os.path.dirname(sklearn.datasets.__file__), 'data', 'digits.csv.gz')
    damaged = tmp_path / 'digits.csv.gz'
    with open(real, 'rb') as f:
        damaged.write_bytes(f.read()[:5000])

    def read_damaged(data_file_name, **kwargs):
        with gzip.open(str(damaged), 'rt') as f:
            return numpy.loadtxt(f, delimiter=','), ''
    monkeypatch.setattr(base, 'load_gzip_compressed_csv_data', read_damaged)
    with pytest.raises(DataError) as error:
        load_digits()
    message = str(error.value)
    assert real in message and 'EOFError' in message and '\n' not in message

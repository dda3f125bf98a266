"""CIFAR-10 loading on small files written in the official pickle format (no network)."""
import hashlib
import os
import pickle
import re
import tarfile

import chainer.dataset.download
import numpy
import pytest

from datasets import cifar10
from datasets.cifar10 import load_cifar10
from datasets.errors import DataError

PER_BATCH = 20
NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship',
         'truck']


def md5(path):
    with open(path, 'rb') as f:
        return hashlib.md5(f.read()).hexdigest()


def write_batches(folder, seed=0, bytes_keys=True):
    """Write data_batch_1..5, test_batch and batches.meta; return (train rows, train labels,
    test rows, test labels, md5 sums). Pixel (R, 0, 0) of training image k holds k, an id."""
    os.makedirs(folder)
    rng = numpy.random.RandomState(seed)
    key = (lambda k: k.encode()) if bytes_keys else (lambda k: k)
    n_train = 5 * PER_BATCH
    train = rng.randint(0, 256, size=(n_train, 3072)).astype(numpy.uint8)
    train[:, 0] = numpy.arange(n_train)
    train_labels = numpy.arange(n_train) % 10
    test = rng.randint(0, 256, size=(PER_BATCH, 3072)).astype(numpy.uint8)
    test_labels = rng.randint(0, 10, size=PER_BATCH)

    def dump(name, rows, labels):
        batch = {key('batch_label'): key(name), key('labels'): [int(v) for v in labels],
                 key('data'): rows, key('filenames'): [key('img%d.png' % i) for i in
                                                       range(len(rows))]}
        with open(os.path.join(folder, name), 'wb') as f:
            pickle.dump(batch, f, protocol=2)

    for b in range(5):
        part = slice(b * PER_BATCH, (b + 1) * PER_BATCH)
        dump('data_batch_%d' % (b + 1), train[part], train_labels[part])
    dump('test_batch', test, test_labels)
    meta = {key('num_cases_per_batch'): PER_BATCH, key('num_vis'): 3072,
            key('label_names'): [key(n) for n in NAMES]}
    with open(os.path.join(folder, 'batches.meta'), 'wb') as f:
        pickle.dump(meta, f, protocol=2)
    sums = {name: md5(os.path.join(folder, name)) for name in os.listdir(folder)}
    return train, train_labels, test, test_labels, sums


@pytest.fixture
def fake(tmp_path):
    folder = str(tmp_path / 'data' / 'cifar-10-batches-py')
    train, train_labels, test, test_labels, sums = write_batches(folder)
    return dict(parent=str(tmp_path / 'data'), folder=folder, train=train,
                train_labels=train_labels, test=test, test_labels=test_labels, sums=sums)


def ids(x):
    return x[:, 0, 0, 0].astype(int)


def test_official_md5_table_is_complete():
    assert set(cifar10.MD5SUMS) == set(cifar10.FILES) and len(cifar10.FILES) == 7
    for value in list(cifar10.MD5SUMS.values()) + [cifar10.ARCHIVE_MD5]:
        assert re.fullmatch('[0-9a-f]{32}', value)


def test_pixels_land_in_rgb_planes_row_major(fake):
    data = load_cifar10(fake['parent'], n_val_per_class=2, md5sums=fake['sums'])
    for x in (data.train_x, data.val_x):
        for image in x:
            row = fake['train'][image[0, 0, 0]]
            # byte c * 1024 + r * 32 + k is channel c (R, G, B), row r, column k
            for c, r, k in [(0, 0, 1), (1, 5, 7), (2, 31, 0), (2, 0, 31), (1, 31, 31)]:
                assert image[c, r, k] == row[c * 1024 + r * 32 + k]
            numpy.testing.assert_array_equal(image, row.reshape(3, 32, 32))
    numpy.testing.assert_array_equal(data.test_x, fake['test'].reshape(-1, 3, 32, 32))
    numpy.testing.assert_array_equal(data.test_y, fake['test_labels'])


def test_types_names_and_settings(fake):
    data = load_cifar10(fake['parent'], n_val_per_class=2, md5sums=fake['sums'])
    assert data.name == 'cifar10' and data.class_names == tuple(NAMES) and data.n_classes == 10
    assert data.pad == 4 and data.flip is True
    for x, y in [(data.train_x, data.train_y), (data.val_x, data.val_y),
                 (data.test_x, data.test_y)]:
        assert x.dtype == numpy.uint8 and x.shape[1:] == (3, 32, 32)
        assert y.dtype == numpy.int32 and y.shape == (len(x),)


def test_split_counts_disjoint_covering_and_labels_kept(fake):
    data = load_cifar10(fake['parent'], n_val_per_class=3, md5sums=fake['sums'])
    assert numpy.bincount(data.val_y, minlength=10).tolist() == [3] * 10
    assert numpy.bincount(data.train_y, minlength=10).tolist() == [7] * 10
    train_ids, val_ids = ids(data.train_x), ids(data.val_x)
    assert not set(train_ids) & set(val_ids)
    assert sorted(set(train_ids) | set(val_ids)) == list(range(5 * PER_BATCH))
    numpy.testing.assert_array_equal(data.train_y, fake['train_labels'][train_ids])
    numpy.testing.assert_array_equal(data.val_y, fake['train_labels'][val_ids])


def test_split_is_deterministic_per_seed(fake):
    a = load_cifar10(fake['parent'], split_seed=1, n_val_per_class=3, md5sums=fake['sums'])
    b = load_cifar10(fake['parent'], split_seed=1, n_val_per_class=3, md5sums=fake['sums'])
    c = load_cifar10(fake['parent'], split_seed=2, n_val_per_class=3, md5sums=fake['sums'])
    numpy.testing.assert_array_equal(a.val_x, b.val_x)
    numpy.testing.assert_array_equal(a.train_y, b.train_y)
    assert set(ids(a.val_x)) != set(ids(c.val_x))


def test_mean_image_is_that_of_the_training_split(fake):
    data = load_cifar10(fake['parent'], n_val_per_class=2, md5sums=fake['sums'])
    assert data.mean.dtype == numpy.float32 and data.mean.shape == (3, 32, 32)
    numpy.testing.assert_allclose(data.mean, data.train_x.astype(numpy.float64).mean(0) / 255,
                                  rtol=1e-6)
    everything = fake['train'].reshape(-1, 3, 32, 32).astype(numpy.float64).mean(0) / 255
    assert not numpy.allclose(data.mean, everything)


def test_accepts_the_folder_itself_and_str_keys(fake, tmp_path):
    a = load_cifar10(fake['parent'], n_val_per_class=2, md5sums=fake['sums'])
    b = load_cifar10(fake['folder'], n_val_per_class=2, md5sums=fake['sums'])
    numpy.testing.assert_array_equal(a.train_x, b.train_x)
    # The official (Python 2) pickles load with str keys under latin1.
    folder = str(tmp_path / 'strkeys')
    *_, sums = write_batches(folder, bytes_keys=False)
    c = load_cifar10(folder, n_val_per_class=2, md5sums=sums)
    numpy.testing.assert_array_equal(a.train_x, c.train_x)
    assert c.class_names == tuple(NAMES)


def test_missing_file_is_named(fake):
    os.remove(os.path.join(fake['folder'], 'data_batch_3'))
    with pytest.raises(FileNotFoundError, match='data_batch_3.*missing'):
        load_cifar10(fake['parent'], md5sums=fake['sums'])


def test_truncated_file_is_named(fake):
    path = os.path.join(fake['folder'], 'data_batch_2')
    with open(path, 'rb') as f:
        content = f.read()
    with open(path, 'wb') as f:
        f.write(content[:len(content) // 2])
    with pytest.raises(ValueError, match='data_batch_2 is truncated or corrupt: MD5'):
        load_cifar10(fake['parent'], n_val_per_class=2, md5sums=fake['sums'])
    # Without MD5 checks the broken pickle is still reported by name.
    with pytest.raises(ValueError, match='data_batch_2 cannot be unpickled'):
        load_cifar10(fake['parent'], n_val_per_class=2, md5sums={})


def test_corrupted_file_is_named(fake):
    path = os.path.join(fake['folder'], 'test_batch')
    with open(path, 'r+b') as f:
        f.seek(500)
        byte = f.read(1)
        f.seek(500)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ValueError, match='test_batch is truncated or corrupt'):
        load_cifar10(fake['parent'], n_val_per_class=2, md5sums=fake['sums'])


def _rewrite(fake, name, transform):
    """Replace batch ``name`` by ``transform(its dict)``, pickled as the official files are."""
    path = os.path.join(fake['folder'], name)
    with open(path, 'rb') as f:
        batch = pickle.load(f, encoding='latin1')
    with open(path, 'wb') as f:
        pickle.dump(transform(batch), f, protocol=2)
    return path


def _one_line_error(fake, name):
    """The DataError of loading without MD5 checks (so the content is read); it names the
    file and is one line."""
    with pytest.raises(DataError) as error:
        load_cifar10(fake['parent'], n_val_per_class=2, md5sums={})
    message = str(error.value)
    assert os.path.join(fake['folder'], name) in message and '\n' not in message
    return message


@pytest.mark.parametrize('cut', [0, 1, 100, -1])
def test_a_truncated_batch_names_the_file(fake, cut):
    path = os.path.join(fake['folder'], 'data_batch_4')
    with open(path, 'rb') as f:
        content = f.read()
    with open(path, 'wb') as f:
        f.write(content[:cut if cut >= 0 else len(content) + cut])
    assert 'cannot be unpickled' in _one_line_error(fake, 'data_batch_4')


def test_a_batch_without_data_names_the_file_and_the_entry(fake):
    _rewrite(fake, 'data_batch_5', lambda d: {k: v for k, v in d.items() if k != b'data'})
    assert 'has no "data" entry' in _one_line_error(fake, 'data_batch_5')


@pytest.mark.parametrize('change, words', [
    (lambda d: {**d, b'data': d[b'data'][:, :1000]}, '(20, 1000)'),
    (lambda d: {**d, b'data': d[b'data'].astype(numpy.float32)}, 'float32'),
    (lambda d: {**d, b'labels': d[b'labels'][:-1]}, '(19,)'),
    (lambda d: {**d, b'labels': [str(v) for v in d[b'labels']]}, 'integer labels'),
    (lambda d: {**d, b'data': [[1, 2], [3]]}, 'not an array'),
    (lambda d: [d], 'holds a list, not a dict'),
])
def test_a_batch_of_the_wrong_shape_or_type_names_the_file(fake, change, words):
    _rewrite(fake, 'test_batch', change)
    assert words in _one_line_error(fake, 'test_batch')


def test_a_label_out_of_range_names_the_file_and_the_entry(fake):
    def transform(d):
        d[b'labels'][7] = 10
        return d
    _rewrite(fake, 'data_batch_1', transform)
    assert 'label 10 of entry 7 is outside [0, 10)' in _one_line_error(fake, 'data_batch_1')


def test_meta_without_label_names_names_the_file(fake):
    _rewrite(fake, 'batches.meta', lambda d: {b'num_vis': 3072})
    assert '"label_names"' in _one_line_error(fake, 'batches.meta')


def test_official_sums_are_checked_by_default(fake):
    with pytest.raises(ValueError, match='data_batch_1 is truncated or corrupt.*{}'.format(
            cifar10.MD5SUMS['data_batch_1'])):
        load_cifar10(fake['parent'])


def test_too_few_images_per_class(fake):
    with pytest.raises(ValueError, match='only 10 samples'):
        load_cifar10(fake['parent'], n_val_per_class=11, md5sums=fake['sums'])


def make_archive(fake, tmp_path):
    archive = str(tmp_path / 'cifar-10-python.tar.gz')
    with tarfile.open(archive, 'w:gz') as tar:
        tar.add(fake['folder'], arcname='cifar-10-batches-py')
    return archive


def test_download_when_absent(fake, tmp_path, monkeypatch, capsys):
    archive = make_archive(fake, tmp_path)
    root = str(tmp_path / 'chainer_root')
    calls = []

    def fake_download(url):
        calls.append(url)
        return archive

    monkeypatch.setattr(chainer.dataset.download, '_dataset_root', root)
    monkeypatch.setattr(chainer.dataset.download, 'cached_download', fake_download)
    monkeypatch.setattr(cifar10, 'ARCHIVE_MD5', md5(archive))
    data = load_cifar10(None, n_val_per_class=2, md5sums=fake['sums'])
    assert calls == ['https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz']
    destination = os.path.join(root, 'cifar10', 'cifar-10-batches-py')
    assert sorted(os.listdir(destination)) == sorted(cifar10.FILES)
    printed = capsys.readouterr().out
    assert cifar10.URL in printed and destination in printed
    assert len(data.train_x) + len(data.val_x) == 5 * PER_BATCH
    # Second call: the data is there, nothing is downloaded.
    load_cifar10(None, n_val_per_class=2, md5sums=fake['sums'])
    assert len(calls) == 1


def test_download_with_bad_archive_md5(fake, tmp_path, monkeypatch):
    archive = make_archive(fake, tmp_path)
    monkeypatch.setattr(chainer.dataset.download, '_dataset_root', str(tmp_path / 'root'))
    monkeypatch.setattr(chainer.dataset.download, 'cached_download', lambda url: archive)
    with pytest.raises(ValueError, match='archive .*cifar-10-python.tar.gz is truncated'):
        load_cifar10(None, md5sums=fake['sums'])

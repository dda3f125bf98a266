"""datasets/clothing1m.py on real annotation lines (tests/fixtures/clothing1m, see its README).

The noisy annotation files are too large to ship, so each test root gets a small
noisy_label_kv.txt / noisy_train_key_list.txt in the official format, built from real clean
training keys; images are tiny JPEGs written at the listed paths.
"""
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy
import pytest
from PIL import Image

from chainer.links.model.vision.resnet import prepare

from datasets import clothing1m
from datasets.errors import DataError
from datasets.clothing1m import (CAFFE_BGR_MEAN, CLASS_NAMES, Clothing1MDataset, class_names,
                                 clean_labels_of_noisy_train, load_clothing1m, read_annotations)
from updaters.counter_rng import STREAM_AUGMENT, CounterRandom

FIXTURES = Path(__file__).parent / 'fixtures' / 'clothing1m'
ANNOTATION_FILES = ['noisy_label_kv.txt', 'noisy_train_key_list.txt', 'clean_label_kv.txt',
                    'clean_val_key_list.txt', 'clean_test_key_list.txt']


def _lines(path):
    return [line for line in Path(path).read_text().split('\n') if line]


def _noisy_label(i):
    return (3 * i + 5) % 14


@pytest.fixture
def root(tmp_path):
    """A Clothing1M root holding the fixture files and a small noisy training set."""
    for name in os.listdir(FIXTURES):
        if name.endswith('.txt'):
            shutil.copy(FIXTURES / name, tmp_path / name)
    keys = _lines(FIXTURES / 'clean_train_key_list.txt')
    train_keys = keys[:100]
    # The real noisy kv file also labels images outside the noisy key list.
    kv = ''.join('{} {}\n'.format(key, _noisy_label(i)) for i, key in enumerate(keys))
    (tmp_path / 'noisy_label_kv.txt').write_text(kv)
    (tmp_path / 'noisy_train_key_list.txt').write_text('\n'.join(train_keys))  # no final newline
    return tmp_path


def _write_jpeg(root, relative, array, mode='RGB'):
    path = Path(root) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(numpy.asarray(array, dtype=numpy.uint8))
    image.convert(mode).save(str(path), format='JPEG', quality=95)
    return path


def _random_image(rng, width, height):
    return rng.randint(0, 256, (height, width, 3))


# --- annotations -------------------------------------------------------------------------------

def test_fixture_is_small_and_ends_like_the_real_files():
    assert sum(p.stat().st_size for p in FIXTURES.iterdir()) < 100 * 1024
    for name in ['clean_val_key_list.txt', 'clean_test_key_list.txt']:
        assert not (FIXTURES / name).read_text().endswith('\n')


def test_splits_match_the_annotation_lines(root):
    splits = read_annotations(str(root))
    assert set(splits) == {'train', 'val', 'test'}
    clean = dict(line.split(' ') for line in _lines(FIXTURES / 'clean_label_kv.txt'))
    for split, name in [('val', 'clean_val_key_list.txt'), ('test', 'clean_test_key_list.txt')]:
        paths, labels = splits[split]
        keys = _lines(FIXTURES / name)
        assert paths == keys
        assert labels.dtype == numpy.int32
        numpy.testing.assert_array_equal(labels, [int(clean[key]) for key in keys])
    assert len(splits['val'][0]) == 205 and len(splits['test'][0]) == 211
    # First lines of the fixtures, read by eye.
    assert splits['val'][0][0] == 'images/0/00/1429296456,2096860000.jpg'
    assert splits['val'][1][0] == 7
    assert splits['test'][0][0] == 'images/0/00/1278541879,867148000.jpg'
    assert splits['test'][1][0] == 13

    paths, labels = splits['train']
    assert paths == _lines(FIXTURES / 'clean_train_key_list.txt')[:100]
    numpy.testing.assert_array_equal(labels, [_noisy_label(i) for i in range(100)])
    for _, labels in splits.values():
        assert labels.min() >= 0 and labels.max() <= 13


def test_class_names_from_the_file_or_the_constant(root):
    assert class_names(str(root)) == list(CLASS_NAMES)
    assert class_names(str(root))[13] == 'Underwear'
    os.remove(root / 'category_names_eng.txt')
    assert class_names(str(root)) == list(CLASS_NAMES)


@pytest.mark.parametrize('name', ANNOTATION_FILES)
def test_missing_annotation_file_is_named(root, name):
    os.remove(root / name)
    with pytest.raises(FileNotFoundError) as error:
        read_annotations(str(root))
    message = str(error.value)
    assert str(root / name) in message
    assert 'images/' in message          # says what the layout must be
    for other in ANNOTATION_FILES:
        assert other in message


def test_key_without_label_names_key_and_file(root):
    key = 'images/9/99/0000000000,0000000000.jpg'
    with open(root / 'clean_test_key_list.txt', 'a') as f:
        f.write('\n' + key)
    number = (root / 'clean_test_key_list.txt').read_text().split('\n').index(key) + 1
    with pytest.raises(DataError) as error:
        read_annotations(str(root))
    assert key in str(error.value)
    assert str(root / 'clean_label_kv.txt') in str(error.value)
    assert '{}, line {}:'.format(root / 'clean_test_key_list.txt', number) in str(error.value)


def test_a_malformed_key_list_line_names_file_and_line(root):
    lines = _lines(root / 'clean_val_key_list.txt')
    lines[4] += ' 7'                      # a kv line pasted into a key list
    (root / 'clean_val_key_list.txt').write_text('\n'.join(lines) + '\n')
    with pytest.raises(DataError, match='expected one relative image path') as error:
        read_annotations(str(root))
    assert '{}, line 5:'.format(root / 'clean_val_key_list.txt') in str(error.value)


@pytest.mark.parametrize('name', ['clean_label_kv.txt', 'noisy_train_key_list.txt'])
def test_a_damaged_annotation_file_names_file_and_line(root, name):
    content = (root / name).read_bytes().split(b'\n')
    content[2] = content[2][:10] + b'\xff\xfe' + content[2][12:]    # damaged bytes on line 3
    (root / name).write_bytes(b'\n'.join(content))
    with pytest.raises(DataError, match='not UTF-8') as error:
        read_annotations(str(root))
    assert '{}, line 3:'.format(root / name) in str(error.value)
    assert '\n' not in str(error.value)


@pytest.mark.parametrize('line, match', [
    ('images/9/99/1,2.jpg 14', 'outside 0-13'),
    ('images/9/99/1,2.jpg -1', 'outside 0-13'),
    ('images/9/99/1,2.jpg T-Shirt', 'not an integer'),
    ('images/9/99/1,2.jpg', 'expected'),
])
def test_bad_kv_line_names_file_and_line(root, line, match):
    n_lines = len(_lines(root / 'noisy_label_kv.txt'))
    with open(root / 'noisy_label_kv.txt', 'a') as f:
        f.write(line + '\n')
    with pytest.raises(DataError, match=match) as error:
        read_annotations(str(root))
    assert '{}, line {}'.format(root / 'noisy_label_kv.txt', n_lines + 1) in str(error.value)


def test_conflicting_labels_for_one_key_are_refused(root):
    first = _lines(root / 'clean_label_kv.txt')[0]
    key, label = first.split(' ')
    with open(root / 'clean_label_kv.txt', 'a') as f:
        f.write('{} {}\n'.format(key, (int(label) + 1) % 14))
    with pytest.raises(ValueError, match='two labels'):
        read_annotations(str(root))


def test_clean_labels_of_noisy_train_against_a_hand_built_kv(root):
    keys = ['images/0/00/a,1.jpg', 'images/0/00/b,2.jpg', 'images/1/10/c,3.jpg',
            'images/2/20/d,4.jpg', 'images/3/30/e,5.jpg']
    (root / 'noisy_train_key_list.txt').write_text('\n'.join(keys))
    (root / 'noisy_label_kv.txt').write_text(''.join('{} 1\n'.format(key) for key in keys))
    # Labelled: a (4), c (0), e (13); b and d are not; f is clean but not in the noisy list.
    (root / 'clean_label_kv.txt').write_text(
        'images/3/30/e,5.jpg 13\nimages/0/00/a,1.jpg 4\nimages/9/90/f,6.jpg 7\n'
        'images/1/10/c,3.jpg 0\n')
    clean = clean_labels_of_noisy_train(str(root))
    assert clean.dtype == numpy.int32
    assert clean.tolist() == [4, -1, 0, -1, 13]


def test_clean_labels_of_noisy_train_in_training_order(root):
    paths, _ = read_annotations(str(root))['train']
    kv = dict(line.split(' ') for line in _lines(FIXTURES / 'clean_label_kv.txt'))
    # The fixture's training keys all come from the clean training list, so all are labelled.
    assert clean_labels_of_noisy_train(str(root)).tolist() == [int(kv[p]) for p in paths]
    os.remove(root / 'clean_label_kv.txt')
    with pytest.raises(FileNotFoundError, match='clean_label_kv.txt'):
        clean_labels_of_noisy_train(str(root))


# --- images ------------------------------------------------------------------------------------

def test_examples_have_the_network_layout_and_centre_crop_is_prepare(root):
    paths, labels = read_annotations(str(root))['val']
    rng = numpy.random.RandomState(0)
    sizes = [(40, 30), (30, 40), (256, 256), (500, 333), (17, 23)]
    for path, (width, height) in zip(paths, sizes):
        _write_jpeg(root, path, _random_image(rng, width, height))
    dataset = Clothing1MDataset(str(root), paths[:len(sizes)], labels[:len(sizes)], train=False)
    assert len(dataset) == len(sizes)
    for i in range(len(sizes)):
        image, label = dataset[i]
        assert image.shape == (3, 224, 224) and image.dtype == numpy.float32
        assert label.dtype == numpy.int32 and label == labels[i]
        numpy.testing.assert_array_equal(dataset[i][0], image)       # deterministic
        with Image.open(str(root / paths[i])) as decoded:
            expected = prepare(decoded, size=(256, 256))[:, 16:240, 16:240]
        numpy.testing.assert_array_equal(image, expected)


def test_bgr_order_and_caffe_mean(root):
    path = 'images/0/00/single,colour.jpg'
    _write_jpeg(root, path, numpy.full((30, 40, 3), (200, 100, 50)))
    with Image.open(str(root / path)) as decoded:
        rgb = numpy.asarray(decoded.convert('RGB'))
    assert (rgb == rgb[0, 0]).all()                 # a solid colour survives JPEG exactly ...
    assert numpy.abs(rgb[0, 0].astype(int) - (200, 100, 50)).max() <= 2   # ... up to rounding
    red, green, blue = rgb[0, 0].astype(numpy.float32)

    image, _ = Clothing1MDataset(str(root), [path], [0], train=False)[0]
    assert CAFFE_BGR_MEAN == (103.063, 115.903, 123.152)
    mean = numpy.float32(CAFFE_BGR_MEAN)
    for channel, value in enumerate([blue, green, red]):
        assert (image[channel] == value - mean[channel]).all()

    rgb_image, _ = Clothing1MDataset(str(root), [path], [0], train=False, mean=(0, 0, 0),
                                     channel_order='RGB')[0]
    for channel, value in enumerate([red, green, blue]):
        assert (rgb_image[channel] == value).all()


def _left_right_image(root):
    """Left half red, right half blue; returns its relative path."""
    array = numpy.zeros((48, 64, 3))
    array[:, :32] = (255, 0, 0)
    array[:, 32:] = (0, 0, 255)
    path = 'images/0/00/left,right.jpg'
    _write_jpeg(root, path, array)
    return path


def _flipped(image):
    """True if the red half (BGR channel 2 high) is on the right."""
    return image[2, :, -1].mean() > image[2, :, 0].mean()


def test_training_crops_and_flips_at_random_evaluation_does_not(root):
    path = _left_right_image(root)
    train = Clothing1MDataset(str(root), [path], [3], train=True, seed=0)
    images = [train[0][0] for _ in range(40)]
    flips = [_flipped(image) for image in images]
    assert 5 < sum(flips) < 35
    unflipped = [image for image, flip in zip(images, flips) if not flip]
    assert any(not numpy.array_equal(unflipped[0], image) for image in unflipped[1:])  # crops
    evaluation = Clothing1MDataset(str(root), [path], [3], train=False, seed=0)
    assert not any(_flipped(evaluation[0][0]) for _ in range(10))


def test_training_randomness_is_seeded(root):
    path = _left_right_image(root)

    def draws(seed, n=6):
        dataset = Clothing1MDataset(str(root), [path], [3], train=True, seed=seed)
        return [dataset[0][0] for _ in range(n)]

    first, again, other = draws(1), draws(1), draws(2)
    assert all(numpy.array_equal(a, b) for a, b in zip(first, again))
    assert not all(numpy.array_equal(a, b) for a, b in zip(first, other))


def test_a_copy_in_another_process_reseeds(root):
    path = _left_right_image(root)
    parent = Clothing1MDataset(str(root), [path], [3], train=True, seed=1)
    worker = Clothing1MDataset(str(root), [path], [3], train=True, seed=1)
    worker._pid = -1                      # as a forked worker sees it
    a = [parent[0][0] for _ in range(6)]
    b = [worker[0][0] for _ in range(6)]
    assert not all(numpy.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize('mode', ['L', 'CMYK'])
def test_grey_and_cmyk_jpegs_become_three_channels(root, mode):
    path = 'images/0/00/mode,{}.jpg'.format(mode)
    _write_jpeg(root, path, _random_image(numpy.random.RandomState(3), 50, 70), mode=mode)
    image, _ = Clothing1MDataset(str(root), [path], [0], train=True)[0]
    assert image.shape == (3, 224, 224) and image.dtype == numpy.float32


def test_missing_image_is_named(root):
    paths, labels = read_annotations(str(root))['test']
    dataset = Clothing1MDataset(str(root), paths, labels, train=False)
    with pytest.raises(FileNotFoundError) as error:
        dataset[2]
    assert str(root / paths[2]) in str(error.value)


def test_a_missing_image_names_its_key_list(root):
    _, val, _, _, _ = load_clothing1m(str(root))
    with pytest.raises(FileNotFoundError) as error:
        val[3]
    message = str(error.value)
    assert str(root / val.paths[3]) in message and '\n' not in message
    assert 'entry 3 of this split, listed in {}'.format(root / 'clean_val_key_list.txt') \
        in message


def _damage(path, how):
    content = path.read_bytes()
    path.write_bytes({'truncated': content[:len(content) // 2], 'cut after the header':
                      content[:100], 'empty': b'', 'text': b'not a JPEG\n'}[how])


@pytest.mark.parametrize('how', ['truncated', 'cut after the header', 'empty', 'text'])
def test_a_damaged_image_names_the_image_and_its_entry(root, how):
    train, _, _, _, _ = load_clothing1m(str(root))
    for i in (0, 5):
        _write_jpeg(root, train.paths[i], _random_image(numpy.random.RandomState(i), 60, 50))
    _damage(root / train.paths[5], how)
    train[0]                                             # an intact image still loads
    with pytest.raises(DataError, match='cannot be decoded') as error:
        train[5]
    message = str(error.value)
    assert str(root / train.paths[5]) in message and '\n' not in message
    assert 'entry 5 of this split, listed in {}'.format(root / 'noisy_train_key_list.txt') \
        in message


def test_load_clothing1m(root):
    train, val, test, n_classes, names = load_clothing1m(str(root), seed=5)
    assert (len(train), len(val), len(test)) == (100, 205, 211)
    assert train.train and not val.train and not test.train
    assert train.seed == 5
    assert n_classes == clothing1m.N_CLASSES == 14
    assert names == list(CLASS_NAMES)
    numpy.testing.assert_array_equal(train.labels, [_noisy_label(i) for i in range(100)])


# --- batches -----------------------------------------------------------------------------------

BATCH_SIZES = [(40, 30), (30, 40), (256, 256), (300, 200), (17, 23), (64, 64), (257, 300)]


def _batch_dataset(root, train):
    rng = numpy.random.RandomState(4)
    paths = ['images/{}/0{}/batch,{}.jpg'.format(i % 3, i, i) for i in range(len(BATCH_SIZES))]
    for path, (width, height) in zip(paths, BATCH_SIZES):
        _write_jpeg(root, path, _random_image(rng, width, height))
    labels = numpy.arange(len(paths)) % 14
    return Clothing1MDataset(str(root), paths, labels, train=train, seed=0)


def _expected(root, path, top, left, flip):
    """The transform written out with PIL and numpy only."""
    with Image.open(str(Path(root) / path)) as decoded:
        rgb = numpy.asarray(decoded.convert('RGB').resize((256, 256), Image.BICUBIC),
                            dtype=numpy.float32)
    crop = rgb[top:top + 224, left:left + 224]
    if flip:
        crop = crop[:, ::-1]
    return crop[:, :, ::-1].transpose(2, 0, 1) - numpy.float32(CAFFE_BGR_MEAN).reshape(3, 1, 1)


class FixedDraws(object):
    """A random source that returns given draws and records how it was asked."""

    def __init__(self, offsets, uniforms):
        self.offsets, self.uniforms, self.calls = offsets, uniforms, []

    def randint(self, low, high=None, size=None):
        self.calls.append(('randint', low, high, size))
        return numpy.array(self.offsets)

    def random_sample(self, size):
        self.calls.append(('random_sample', size))
        return numpy.array(self.uniforms)


def test_load_batch_is_the_transform_at_the_drawn_offsets_and_flips(root):
    dataset = _batch_dataset(root, train=True)
    indices = numpy.array([3, 0, 6, 4, 3], dtype=numpy.int32)
    offsets = [(0, 32), (32, 0), (5, 17), (16, 16), (31, 2)]
    uniforms = [0.7, 0.2, 0.49, 0.5, 0.0]
    draws = FixedDraws(offsets, uniforms)
    batch = dataset.load_batch(indices, draws)
    assert draws.calls == [('randint', 0, 33, (5, 2)), ('random_sample', 5)]   # one draw each
    assert batch.shape == (5, 3, 224, 224) and batch.dtype == numpy.float32
    for k, i in enumerate(indices):
        top, left = offsets[k]
        expected = _expected(root, dataset.paths[i], top, left, uniforms[k] < 0.5)
        numpy.testing.assert_array_equal(batch[k], expected)


def test_evaluation_batch_is_the_centre_crop_and_matches_get_example(root):
    dataset = _batch_dataset(root, train=False)
    batch = dataset.load_batch([5, 1, 2])
    for k, i in enumerate([5, 1, 2]):
        numpy.testing.assert_array_equal(batch[k], _expected(root, dataset.paths[i], 16, 16, False))
        numpy.testing.assert_array_equal(batch[k], dataset[i][0])


def test_batch_draws_depend_on_the_key_only_not_on_threads(root):
    dataset = _batch_dataset(root, train=True)
    indices = numpy.arange(len(dataset))

    def rng(counter):
        return CounterRandom(numpy, 3, STREAM_AUGMENT, counter)

    serial = dataset.load_batch(indices, rng(7))
    with ThreadPoolExecutor(3) as executor:
        threaded = dataset.load_batch(indices, rng(7), executor)
        other = dataset.load_batch(indices, rng(8), executor)
    numpy.testing.assert_array_equal(serial, threaded)
    assert not numpy.array_equal(serial, other)


def test_a_missing_image_in_a_threaded_batch_is_named(root):
    dataset = _batch_dataset(root, train=False)
    os.remove(root / dataset.paths[2])
    with ThreadPoolExecutor(2) as executor, pytest.raises(FileNotFoundError) as error:
        dataset.load_batch([0, 1, 2, 3], executor=executor)
    assert str(root / dataset.paths[2]) in str(error.value)


def test_a_truncated_image_in_a_threaded_batch_is_named(root):
    dataset = _batch_dataset(root, train=True)
    _damage(root / dataset.paths[4], 'truncated')
    with ThreadPoolExecutor(2) as executor, pytest.raises(DataError) as error:
        dataset.load_batch([0, 1, 4, 3], rng=numpy.random.RandomState(0), executor=executor)
    assert str(root / dataset.paths[4]) in str(error.value)
    assert 'entry 4 of this split' in str(error.value)

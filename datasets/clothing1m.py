"""Clothing1M: the official annotation files -> (paths, labels) per split (and the clean labels
that part of the noisy training set has), and a Chainer data set that decodes and transforms the
images for an ImageNet-pre-trained ResNet-50, one at a time or as a batch decoded in threads.

Layout expected under ``root`` (the data set as it ships, Xiao et al., CVPR 2015)::

    root/
      images/0/00/1429296456,2096860000.jpg ...   the JPEG files (about 1M)
      noisy_label_kv.txt        "images/... .jpg <label>" per line, the noisy labels
      noisy_train_key_list.txt  one relative image path per line: the noisy training set
      clean_label_kv.txt        "images/... .jpg <label>" per line, the clean labels
      clean_val_key_list.txt    the clean validation set (model selection)
      clean_test_key_list.txt   the clean test set (reported accuracy)
      category_names_eng.txt    optional: line k names class k

The paper trains on the noisy training set only (never on ``clean_train_key_list.txt``), selects
by clean validation accuracy and reports clean test accuracy.

Image transform (the paper: "We resize the image to 256x256 and crop it to 224x224 randomly.
Then the horizontal random flip"), as ``chainer.links.model.vision.resnet.prepare`` (what the
Caffe-converted ImageNet weights expect): PIL RGB, bicubic resize to 256x256 (aspect ratio not
kept), 224x224 crop (random for training, ``[16:240, 16:240]`` for evaluation), random flip for
training, BGR, 0-255 scale minus the Caffe mean pixel, CHW float32."""
import os

import chainer
import numpy
from PIL import Image

from datasets.errors import DataError

N_CLASSES = 14

# English class names of the official category_names_eng.txt; index k is label k.
CLASS_NAMES = ('T-Shirt', 'Shirt', 'Knitwear', 'Chiffon', 'Sweater', 'Hoodie', 'Windbreaker',
               'Jacket', 'Downcoat', 'Suit', 'Shawl', 'Dress', 'Vest', 'Underwear')

# The label kv file of the clean labels (val, test, and part of the noisy training set).
CLEAN_LABEL_KV = 'clean_label_kv.txt'

# The annotation files of each split: (key list, label kv file).
SPLIT_FILES = {
    'train': ('noisy_train_key_list.txt', 'noisy_label_kv.txt'),
    'val': ('clean_val_key_list.txt', CLEAN_LABEL_KV),
    'test': ('clean_test_key_list.txt', CLEAN_LABEL_KV),
}

RESIZE = 256      # both sides, before cropping
CROP = 224        # side of the square crop fed to the network
RESAMPLE = Image.BICUBIC

# Channel order of the output image: L.ResNet50Layers' Caffe weights were trained on BGR images.
CHANNEL_ORDER = 'BGR'

# Mean pixel (B, G, R) subtracted from the 0-255 image: the values of chainer's resnet.prepare.
CAFFE_BGR_MEAN = (103.063, 115.903, 123.152)

_LAYOUT_HELP = (
    'The Clothing1M root must hold the official annotation files next to images/: '
    + ', '.join(sorted({name for pair in SPLIT_FILES.values() for name in pair}))
    + ' (kv files: "images/<a>/<bc>/<name>.jpg <label 0-13>" per line; key lists: one '
    'relative image path per line).')


def check_files(root):
    """FileNotFoundError, naming what is missing and the layout, unless ``root`` holds every
    annotation file a run reads."""
    if not os.path.isdir(root):
        raise FileNotFoundError('Clothing1M directory {} does not exist. {}'.format(
            root, _LAYOUT_HELP))
    for names in SPLIT_FILES.values():
        for name in names:
            _annotation_path(root, name)


def _annotation_path(root, name):
    path = os.path.join(root, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            'Clothing1M annotation file {} not found. {}'.format(path, _LAYOUT_HELP))
    return path


def _fields(path):
    """(line number, whitespace-separated fields) of each non-blank line of a text file;
    DataError naming the file and line where a line is not UTF-8 (a damaged file)."""
    with open(path, 'rb') as f:
        for number, raw in enumerate(f, 1):
            try:
                fields = raw.decode('utf-8').split()
            except UnicodeDecodeError as e:
                raise DataError('{}, line {}: not UTF-8 text ({}); the file is damaged, copy it '
                                'again from the data set'.format(path, number, e.reason)) from None
            if fields:
                yield number, fields


def _key_lines(path):
    """(line number, relative image path) of each key of a key-list file."""
    keys = []
    for number, fields in _fields(path):
        if len(fields) != 1:
            raise DataError('{}, line {}: expected one relative image path, got {!r}'
                            .format(path, number, ' '.join(fields)))
        keys.append((number, fields[0]))
    return keys


def read_label_kv(path):
    """Map relative image path -> int label (0-13) from a ``*_label_kv.txt`` file; DataError
    naming the file and line for a malformed line, a label outside 0-13, or two labels."""
    labels = {}
    for number, fields in _fields(path):
        if len(fields) != 2:
            raise DataError('{}, line {}: expected "<relative path> <label>", got {!r}'
                            .format(path, number, ' '.join(fields)))
        key, text = fields
        try:
            label = int(text)
        except ValueError:
            raise DataError('{}, line {}: label {!r} is not an integer'
                            .format(path, number, text)) from None
        if not 0 <= label < N_CLASSES:
            raise DataError('{}, line {}: label {} is outside 0-{}'
                            .format(path, number, label, N_CLASSES - 1))
        if labels.setdefault(key, label) != label:
            raise DataError('{}, line {}: {} is listed with two labels, {} and {}'
                            .format(path, number, key, labels[key], label))
    return labels


def _labels_of(key_lines, kv, kv_path, key_list_path):
    labels = numpy.empty(len(key_lines), dtype=numpy.int32)
    for i, (number, key) in enumerate(key_lines):
        try:
            labels[i] = kv[key]
        except KeyError:
            raise DataError('{}, line {}: {} has no label in {}'
                            .format(key_list_path, number, key, kv_path)) from None
    return labels


def read_annotations(root):
    """The noisy training set and the clean validation and test sets: ``{'train': (paths,
    labels), 'val': (...), 'test': (...)}``, image paths relative to ``root`` in key-list order and
    int32 labels 0-13 (noisy for 'train', clean otherwise). FileNotFoundError for a missing
    annotation file, DataError for a damaged or malformed line."""
    kv_cache = {}
    splits = {}
    for split, (key_name, kv_name) in SPLIT_FILES.items():
        key_path = _annotation_path(root, key_name)
        kv_path = _annotation_path(root, kv_name)
        if kv_path not in kv_cache:
            kv_cache[kv_path] = read_label_kv(kv_path)
        key_lines = _key_lines(key_path)
        splits[split] = ([key for _, key in key_lines],
                         _labels_of(key_lines, kv_cache[kv_path], kv_path, key_path))
    return splits


def clean_labels_of_noisy_train(root):
    """The clean label of each image of the noisy training set (int32, in the order of
    ``read_annotations(root)['train']``): its label in ``clean_label_kv.txt``, or -1 where that
    file does not label the image."""
    key_path = _annotation_path(root, SPLIT_FILES['train'][0])
    clean = read_label_kv(_annotation_path(root, CLEAN_LABEL_KV))
    return numpy.array([clean.get(key, -1) for _, key in _key_lines(key_path)], dtype=numpy.int32)


def class_names(root):
    """The 14 class names: from ``root/category_names_eng.txt`` if present, else CLASS_NAMES."""
    path = os.path.join(root, 'category_names_eng.txt')
    if not os.path.isfile(path):
        return list(CLASS_NAMES)
    names = [' '.join(fields) for _, fields in _fields(path)]
    if len(names) != N_CLASSES:
        raise DataError('{} lists {} class names; Clothing1M has {}'
                        .format(path, len(names), N_CLASSES))
    return names


class Clothing1MDataset(chainer.dataset.DatasetMixin):
    """Clothing1M images for an ImageNet-pre-trained (Caffe-converted) ResNet-50.

    ``get_example(i)`` returns ``(image, label)``: ``image`` a float32 array of shape
    (3, 224, 224), channels in ``channel_order`` (BGR by default), 0-255 scale minus ``mean``;
    ``label`` an int32 scalar (0-13). :meth:`load_batch` gives many images at once, decoded in
    threads, with the crops and flips drawn from a given random source; the labels of the whole
    split are the int32 array ``labels``.

    Args:
        root (str): Clothing1M directory; image i is ``root/paths[i]``.
        paths (list of str): image paths relative to ``root``.
        labels (array of int): one label per path.
        train (bool): random 224 crop + random horizontal flip if True; centre crop otherwise.
        mean (3 floats): subtracted per output channel, in ``channel_order``.
        channel_order (str): 'BGR' (what L.ResNet50Layers' ImageNet weights expect) or 'RGB'.
        seed (int or None): seed of this data set's own ``numpy.random.RandomState``, used for
            the training crops and flips when no random source is given: reproducible one image
            at a time (SerialIterator), in scheduling order under a MultithreadIterator, and
            reseeded from (seed, process id) in a MultiprocessIterator's worker (not
            reproducible). :meth:`load_batch` with a keyed ``rng`` is reproducible in every case.
        source (str or None): the key-list file the paths come from, named (with the image
            and its entry) when an image is missing or cannot be decoded.

    Errors: a missing image is a FileNotFoundError, an image that cannot be decoded (truncated,
    corrupt) a :class:`~datasets.errors.DataError`; both name the image and its entry.
    """

    def __init__(self, root, paths, labels, train, mean=CAFFE_BGR_MEAN,
                 channel_order=CHANNEL_ORDER, seed=0, source=None):
        if len(paths) != len(labels):
            raise ValueError('{} paths but {} labels'.format(len(paths), len(labels)))
        if channel_order not in ('BGR', 'RGB'):
            raise ValueError("channel_order must be 'BGR' or 'RGB', not {!r}"
                             .format(channel_order))
        self.root = root
        self.paths = list(paths)
        self.labels = numpy.asarray(labels, dtype=numpy.int32)
        self.train = bool(train)
        self.mean = numpy.asarray(mean, dtype=numpy.float32).reshape(3, 1, 1)
        self.channel_order = channel_order
        self.seed = seed
        self.source = source
        self._pid = os.getpid()
        self._rng = numpy.random.RandomState(seed)

    def __len__(self):
        return len(self.paths)

    def _random_state(self):
        if os.getpid() != self._pid:   # a copy in a worker process
            self._pid = os.getpid()
            seed = None if self.seed is None else [self.seed, self._pid]
            self._rng = numpy.random.RandomState(seed)
        return self._rng

    def _load(self, i):
        path = os.path.join(self.root, self.paths[i])
        where = 'entry {} of this split{}'.format(
            i, '' if self.source is None else ', listed in {}'.format(self.source))
        if not os.path.isfile(path):
            raise FileNotFoundError(
                'Clothing1M image {} not found ({}). The images/ folder of the data set must '
                'sit in {}, next to the annotation files.'.format(path, where, self.root))
        try:
            with Image.open(path) as image:
                return image.convert('RGB').resize((RESIZE, RESIZE), RESAMPLE)
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
            # truncated or corrupt JPEG, not an image at all, unreadable
            raise DataError('Clothing1M image {} ({}) cannot be decoded ({}: {}); replace it '
                            'with a good copy from the data set'.format(
                                path, where, type(e).__name__, e)) from None

    def _draw(self, n, rng):
        """Crop offsets (n, 2) as (top, left) and flips (n,) bool: one batched draw from ``rng``
        for training, the centre crop unflipped for evaluation."""
        if not self.train:
            return (numpy.full((n, 2), (RESIZE - CROP) // 2, dtype=numpy.int64),
                    numpy.zeros(n, dtype=bool))
        rng = self._random_state() if rng is None else rng
        offsets = numpy.asarray(rng.randint(0, RESIZE - CROP + 1, size=(n, 2)))
        flips = numpy.asarray(rng.random_sample(n)) < 0.5
        return offsets, flips

    def _transform_into(self, out, i, top, left, flip):
        """Decode image ``i``, crop at (top, left), flip if asked, and write the network input
        (CHW, ``channel_order``, minus ``mean``) into ``out``."""
        image = self._load(i).crop((left, top, left + CROP, top + CROP))
        array = numpy.asarray(image, dtype=numpy.float32)    # (224, 224, 3) RGB
        if flip:
            array = array[:, ::-1]
        if self.channel_order == 'BGR':
            array = array[:, :, ::-1]
        numpy.subtract(array.transpose(2, 0, 1), self.mean, out=out)

    def load_batch(self, indices, rng=None, executor=None):
        """The images ``indices`` as one float32 batch of shape (n, 3, 224, 224).

        For a training set the crops and flips of the whole batch are drawn before any decoding,
        ``rng.randint(0, 33, size=(n, 2))`` (top, left) and ``rng.random_sample(n) < 0.5``, so the
        batch of host ``indices`` depends on ``rng`` (numpy arrays; None: this data set's own
        random state) only, not on the scheduling. ``executor`` decodes in its threads (Pillow
        releases the GIL); None: one after another here."""
        indices = numpy.asarray(indices).reshape(-1)
        n = len(indices)
        offsets, flips = self._draw(n, rng)
        out = numpy.empty((n, 3, CROP, CROP), dtype=numpy.float32)

        def load(k):
            self._transform_into(out[k], int(indices[k]), int(offsets[k, 0]), int(offsets[k, 1]),
                                 bool(flips[k]))

        loads = map(load, range(n)) if executor is None else executor.map(load, range(n))
        list(loads)   # runs every load; re-raises the first error
        return out

    def get_example(self, i):
        return self.load_batch([i])[0], self.labels[i]


def load_clothing1m(root, seed=0):
    """The three Clothing1M data sets of the paper, ``(train, val, test, 14, class_names)``:
    ``train`` noisy and augmented (seeded by ``seed``), ``val`` and ``test`` clean, centre crops."""
    splits = read_annotations(root)

    def split(name, train):
        return Clothing1MDataset(root, *splits[name], train=train, seed=seed,
                                 source=os.path.join(root, SPLIT_FILES[name][0]))

    train, val, test = split('train', True), split('val', False), split('test', False)
    return train, val, test, N_CLASSES, class_names(root)

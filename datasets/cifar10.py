"""CIFAR-10 from the official "python version" batches, split 45k / 5k / 10k as the anchors do.

The batches (``cifar-10-batches-py/data_batch_1`` .. ``data_batch_5``, ``test_batch``,
``batches.meta``) are pickled dicts: ``data`` is uint8 (N, 3072), each row the R plane, then the G
plane, then the B plane, each 32 x 32 row-major; ``labels`` is a list of N ints; ``batches.meta``
has ``label_names``. Every file is checked against the official MD5 sum before it is read."""
import hashlib
import os
import pickle
import tarfile

import chainer.dataset.download
import numpy

from datasets.errors import DataError
from datasets.image_data import ImageData, mean_image, stratified_split

URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'
FOLDER = 'cifar-10-batches-py'

#: MD5 of the official archive at :data:`URL`.
ARCHIVE_MD5 = 'c58f30108f718f92721af3b95e74349a'

#: MD5 of every file inside the official archive's ``cifar-10-batches-py`` folder.
MD5SUMS = {
    'data_batch_1': 'c99cafc152244af753f735de768cd75f',
    'data_batch_2': 'd4bba439e000b95fd0a9bffe97cbabec',
    'data_batch_3': '54ebc095f3ab1f0389bbae665268c751',
    'data_batch_4': '634d18415352ddfa80567beed471001a',
    'data_batch_5': '482c414d41f54cd18b22e5b47cb7c3cb',
    'test_batch': '40351d587109b95175f43aff81a1287e',
    'batches.meta': '5ff9c542aee3614f3951f8cda6e48888',
}

TRAIN_FILES = ('data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5')
TEST_FILE = 'test_batch'
META_FILE = 'batches.meta'
FILES = TRAIN_FILES + (TEST_FILE, META_FILE)
IMAGE_SHAPE = (3, 32, 32)

_FIX = ('delete it and let the data set download again (no --data-dir; data_dir=None in Python), '
        'or extract a fresh copy of ' + URL)


def file_md5(path):
    """Hex MD5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _batches_folder(data_dir):
    """The folder holding the batch files: ``data_dir/cifar-10-batches-py`` or ``data_dir``."""
    nested = os.path.join(data_dir, FOLDER)
    return nested if os.path.isdir(nested) else data_dir


def verify_files(folder, md5sums=None):
    """Check that every CIFAR-10 file exists in ``folder`` and has its MD5 sum (``md5sums``: file
    name -> hex MD5; None: :data:`MD5SUMS`; a file it lacks is not checked). FileNotFoundError
    for a missing file, DataError for a wrong MD5; both name the file."""
    md5sums = MD5SUMS if md5sums is None else md5sums
    for name in FILES:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                'CIFAR-10 file {} is missing: leave out --data-dir (data_dir=None in Python) to '
                'download the data set into {}, or download {} yourself and give the folder it '
                'extracts to with --data-dir (the one that holds {}/, or that folder itself)'.format(
                    path, chainer.dataset.download.get_dataset_directory('cifar10', False), URL,
                    FOLDER))
        expected = md5sums.get(name)
        if expected is not None:
            got = file_md5(path)
            if got != expected:
                raise DataError('CIFAR-10 file {} is truncated or corrupt: MD5 {} instead of '
                                 '{}; {}'.format(path, got, expected, _FIX))


def _load_pickle(path):
    try:
        with open(path, 'rb') as f:
            # The official files come from Python 2: latin1 turns their str keys into str.
            d = pickle.load(f, encoding='latin1')
    except Exception as e:  # truncated or not a pickle at all
        raise DataError('CIFAR-10 file {} cannot be unpickled ({}: {}); {}'.format(
            path, type(e).__name__, e, _FIX)) from e
    if not isinstance(d, dict):
        raise DataError('CIFAR-10 file {} holds a {}, not a dict; {}'.format(
            path, type(d).__name__, _FIX))
    return {k.decode('latin1') if isinstance(k, bytes) else k: v for k, v in d.items()}


def read_batch(path, n_classes=10):
    """One data batch: uint8 images (N, 3, 32, 32) and int32 labels (N,); DataError naming the
    file and the wrong entry where it is damaged or not a CIFAR-10 batch."""
    d = _load_pickle(path)
    for key in ('data', 'labels'):
        if key not in d:
            raise DataError('CIFAR-10 file {} has no "{}" entry (it has {}); {}'.format(
                path, key, ', '.join(repr(k) for k in sorted(d, key=str)) or 'none', _FIX))
    try:
        data = numpy.asarray(d['data'])
        labels = numpy.asarray(d['labels'])
    except (TypeError, ValueError) as e:     # ragged lists and the like
        raise DataError('CIFAR-10 file {}: its "data" or "labels" entry is not an array ({}); '
                        '{}'.format(path, e, _FIX)) from None
    if data.dtype != numpy.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 \
            or labels.shape != (len(data),) or (labels.size and labels.dtype.kind not in 'iu'):
        raise DataError('CIFAR-10 file {} has data {} {} and labels {} {}, expected uint8 '
                        '(N, 3072) and N integer labels; {}'.format(
                            path, data.dtype, data.shape, labels.dtype, labels.shape, _FIX))
    bad = numpy.flatnonzero((labels < 0) | (labels >= n_classes))
    if bad.size:
        raise DataError('CIFAR-10 file {}: label {} of entry {} is outside [0, {}); {}'.format(
            path, labels[bad[0]], bad[0], n_classes, _FIX))
    return data.reshape((-1,) + IMAGE_SHAPE), labels.astype(numpy.int32)


def read_label_names(path):
    """The class names from ``batches.meta``, as a tuple of str."""
    d = _load_pickle(path)
    names = d.get('label_names')
    if not isinstance(names, (list, tuple)) or not names:
        raise DataError('CIFAR-10 file {} has no list of "label_names"; {}'.format(path, _FIX))
    return tuple(n.decode('latin1') if isinstance(n, bytes) else str(n) for n in names)


def _safe_extract(archive_path, destination):
    with tarfile.open(archive_path, 'r:gz') as tar:
        root = os.path.realpath(destination)
        for member in tar.getmembers():
            target = os.path.realpath(os.path.join(destination, member.name))
            if os.path.commonpath([root, target]) != root or member.issym() or member.islnk():
                raise DataError('archive {} holds an unsafe entry {!r}; it is not the official '
                                 'CIFAR-10 archive, delete it'.format(archive_path, member.name))
        safe = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}
        tar.extractall(destination, **safe)


def download():
    """Download (``chainer.dataset.download.cached_download``, cache under
    ``CHAINER_DATASET_ROOT``/_dl_cache), check against :data:`ARCHIVE_MD5` and extract CIFAR-10
    into Chainer's data set directory, unless already there; returns the ``cifar-10-batches-py``
    folder."""
    root = chainer.dataset.download.get_dataset_directory('cifar10')
    folder = os.path.join(root, FOLDER)
    if all(os.path.isfile(os.path.join(folder, name)) for name in FILES):
        return folder
    print('CIFAR-10: downloading {} (about 163 MB) with Chainer\'s downloader into its cache '
          '{}'.format(URL, os.path.join(chainer.dataset.download.get_dataset_root(),
                                        '_dl_cache')), flush=True)
    try:
        archive = chainer.dataset.download.cached_download(URL)
    except (OSError, ValueError) as error:       # no network, a proxy, a full disk, ...
        reason = getattr(error, 'reason', None) or error
        raise FileNotFoundError(
            'CIFAR-10 is not in {} and could not be downloaded from {} ({}): download it where '
            'there is a network and put {}/ there, or give the folder that holds it with '
            '--data-dir (data_dir= in Python)'.format(root, URL, reason, FOLDER))
    got = file_md5(archive)
    if got != ARCHIVE_MD5:
        raise DataError('the downloaded CIFAR-10 archive {} is truncated or corrupt: MD5 {} '
                         'instead of {}; delete it and try again'.format(archive, got, ARCHIVE_MD5))
    print('CIFAR-10: extracting {} into {}'.format(archive, folder), flush=True)
    _safe_extract(archive, root)
    return folder


def load_cifar10(data_dir=None, split_seed=0, n_val_per_class=500, md5sums=None):
    """CIFAR-10 as :class:`~datasets.image_data.ImageData`, split as in Tanaka et al.

    The 50k training images are split, stratified and seeded (``split_seed``), into
    ``n_val_per_class`` validation images per class (500: 5k) and the rest for training (45k);
    test is the official test batch. The mean image is the training part's; ``pad=4``,
    ``flip=True`` (the anchors' augmentation). ``data_dir``: a folder holding
    ``cifar-10-batches-py/`` or that folder itself (None: Chainer's data set directory,
    downloaded there if absent). ``md5sums``: as for :func:`verify_files`."""
    folder = download() if data_dir is None else _batches_folder(os.fspath(data_dir))
    verify_files(folder, md5sums)
    class_names = read_label_names(os.path.join(folder, META_FILE))
    n_classes = len(class_names)
    parts = [read_batch(os.path.join(folder, name), n_classes) for name in TRAIN_FILES]
    x = numpy.concatenate([p[0] for p in parts])
    y = numpy.concatenate([p[1] for p in parts])
    test_x, test_y = read_batch(os.path.join(folder, TEST_FILE), n_classes)
    val_idx, train_idx = stratified_split(y, n_val_per_class, split_seed)
    train_x = x[train_idx]
    return ImageData(name='cifar10', train_x=train_x, train_y=y[train_idx], val_x=x[val_idx],
                     val_y=y[val_idx], test_x=numpy.ascontiguousarray(test_x), test_y=test_y,
                     mean=mean_image(train_x), n_classes=n_classes, class_names=class_names,
                     pad=4, flip=True)

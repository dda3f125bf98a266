"""The in-memory form of an image-classification data set, and the helpers that build it.

Every loader in :mod:`datasets` returns an :class:`ImageData`: host (numpy) arrays of uint8
images and int32 *clean* labels for a train / validation / test split, plus what training needs to
know about the images (their mean, the crop padding, whether flipping is allowed). Label noise is
added later, to the training labels only (see :mod:`datasets.noise`); moving the arrays to a GPU is
the caller's business."""
import dataclasses

import numpy


@dataclasses.dataclass(frozen=True, eq=False)
class ImageData:
    """One data set, split into train / validation / test, as host numpy arrays.

    Attributes:
        name (str): short name of the data set, e.g. ``'cifar10'``.
        train_x, val_x, test_x (numpy.ndarray): uint8 images, shape (N, C, H, W), values 0..255.
        train_y, val_y, test_y (numpy.ndarray): int32 clean labels, shape (N,), in [0, n_classes).
        mean (numpy.ndarray): float32 (C, H, W), the per-pixel mean of ``train_x / 255``, i.e. in
            [0, 1] units. It is computed on the training split only.
        n_classes (int): number of classes.
        class_names (tuple of str): one name per class, index = label.
        pad (int): zero padding on each side for the training random crop (0: no crop).
        flip (bool): whether random horizontal flips are a valid augmentation.

    The container is frozen (fields cannot be reassigned); treat the arrays as read-only too.
    Consistency (dtypes, shapes, label ranges) is checked on construction."""

    name: str
    train_x: numpy.ndarray
    train_y: numpy.ndarray
    val_x: numpy.ndarray
    val_y: numpy.ndarray
    test_x: numpy.ndarray
    test_y: numpy.ndarray
    mean: numpy.ndarray
    n_classes: int
    class_names: tuple
    pad: int
    flip: bool

    def __post_init__(self):
        image_shape = None
        for split in ('train', 'val', 'test'):
            x = getattr(self, split + '_x')
            y = getattr(self, split + '_y')
            if not isinstance(x, numpy.ndarray) or x.dtype != numpy.uint8 or x.ndim != 4:
                raise ValueError(
                    '{}_x must be a uint8 numpy array of shape (N, C, H, W), got {} {}; convert '
                    'the images with numpy.asarray(x, dtype=numpy.uint8)'.format(
                        split, type(x).__name__, getattr(x, 'shape', '')))
            if image_shape is None:
                image_shape = x.shape[1:]
            elif x.shape[1:] != image_shape:
                raise ValueError('{}_x has images of shape {}, but train_x has {}; all splits '
                                 'must share one image shape'.format(split, x.shape[1:],
                                                                     image_shape))
            if (not isinstance(y, numpy.ndarray) or y.dtype != numpy.int32
                    or y.shape != x.shape[:1]):
                raise ValueError(
                    '{}_y must be an int32 numpy array of shape ({},), got {} {} {}; convert the '
                    'labels with numpy.asarray(y, dtype=numpy.int32)'.format(
                        split, len(x), type(y).__name__, getattr(y, 'dtype', ''),
                        getattr(y, 'shape', '')))
            if y.size and (y.min() < 0 or y.max() >= self.n_classes):
                raise ValueError('{}_y has labels outside [0, {}): min {}, max {}'.format(
                    split, self.n_classes, y.min(), y.max()))
        if (not isinstance(self.mean, numpy.ndarray) or self.mean.dtype != numpy.float32
                or self.mean.shape != image_shape):
            raise ValueError('mean must be a float32 numpy array of shape {} (one image), got {} '
                             '{}; compute it with mean_image(train_x)'.format(
                                 image_shape, getattr(self.mean, 'dtype', type(self.mean)),
                                 getattr(self.mean, 'shape', '')))
        if len(self.class_names) != self.n_classes:
            raise ValueError('class_names has {} names but n_classes is {}; give one name per '
                             'class'.format(len(self.class_names), self.n_classes))
        if not isinstance(self.pad, int) or self.pad < 0:
            raise ValueError('pad must be a non-negative int, got {!r}'.format(self.pad))
        if not isinstance(self.flip, bool):
            raise ValueError('flip must be a bool, got {!r}'.format(self.flip))

    @property
    def image_shape(self):
        """(C, H, W) of every image."""
        return self.train_x.shape[1:]

    def __repr__(self):
        return ('ImageData({!r}: train {}, val {}, test {}, images {}, {} classes, pad {}, '
                'flip {})'.format(self.name, len(self.train_x), len(self.val_x),
                                  len(self.test_x), self.image_shape, self.n_classes, self.pad,
                                  self.flip))


def _check_labels(labels):
    labels = numpy.asarray(labels)
    if labels.ndim != 1 or not numpy.issubdtype(labels.dtype, numpy.integer):
        raise ValueError('labels must be a 1-D array of integers, got dtype {} shape {}'.format(
            labels.dtype, labels.shape))
    return labels


def stratified_partition(labels, n_per_class, seed):
    """Split sample indices into class-balanced parts, reproducibly.

    Each class's indices are shuffled once (``numpy.random.RandomState(seed)``, one
    ``permutation`` per class, classes in increasing order); part k takes the next
    ``n_per_class[k]`` of them, and the last part takes what is left. Returns
    ``len(n_per_class) + 1`` sorted int64 index arrays, disjoint, covering ``range(N)``."""
    labels = _check_labels(labels)
    counts = [int(n) for n in n_per_class]
    if any(n < 0 for n in counts):
        raise ValueError('n_per_class must be non-negative, got {}'.format(list(n_per_class)))
    bounds = numpy.cumsum([0] + counts)
    classes, sizes = numpy.unique(labels, return_counts=True)
    if len(classes) and sizes.min() < bounds[-1]:
        raise ValueError('class {} has only {} samples, but {} per class were asked for; ask '
                         'for at most {} per class'.format(classes[sizes.argmin()], sizes.min(),
                                                           bounds[-1], sizes.min()))
    rng = numpy.random.RandomState(seed)
    parts = [[] for _ in range(len(counts) + 1)]
    for cls in classes:
        members = rng.permutation(numpy.flatnonzero(labels == cls))
        for k in range(len(counts)):
            parts[k].append(members[bounds[k]:bounds[k + 1]])
        parts[-1].append(members[bounds[-1]:])
    return [numpy.sort(numpy.concatenate(p)).astype(numpy.int64) if p
            else numpy.zeros(0, numpy.int64) for p in parts]


def stratified_split(labels, n_per_class, seed):
    """Pick exactly ``n_per_class`` samples of every class, reproducibly: ``(first_indices,
    rest_indices)`` of :func:`stratified_partition` with one part."""
    first, rest = stratified_partition(labels, [n_per_class], seed)
    return first, rest


def mean_image(x):
    """The per-pixel mean of uint8 images ``x`` (N, C, H, W), N >= 1, in [0, 1] units: float32
    (C, H, W), accumulated in float64 without a float copy of ``x``."""
    if not isinstance(x, numpy.ndarray) or x.dtype != numpy.uint8 or x.ndim != 4 or not len(x):
        raise ValueError('mean_image needs a non-empty uint8 numpy array of shape (N, C, H, W), '
                         'got {} {} {}'.format(type(x).__name__, getattr(x, 'dtype', ''),
                                               getattr(x, 'shape', '')))
    return (x.mean(axis=0, dtype=numpy.float64) / 255.0).astype(numpy.float32)

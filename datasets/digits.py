"""scikit-learn's handwritten digits: a small real image data set for demos and tests.

1,797 real 8 x 8 grayscale scans of the digits 0-9 (values 0..16), shipped inside scikit-learn,
so it needs no network. Small enough to train a network end to end on a CPU in seconds."""
import os
import types
import zlib

import numpy

from datasets.errors import DataError
from datasets.image_data import ImageData, mean_image, stratified_partition

#: A class-dependent noise mapping for the digits (source -> target), for demos of asymmetric
#: noise. It is this package's choice, not from a paper: five source classes flipped to a
#: similar-looking digit, with one swapped pair (5 <-> 6) as CIFAR-10's cat <-> dog:
#: 2 -> 7, 3 -> 8, 9 -> 4, 5 -> 6, 6 -> 5.
DIGITS_ASYMMETRIC = types.MappingProxyType({2: 7, 3: 8, 9: 4, 5: 6, 6: 5})


def load_digits(split_seed=0, n_val_per_class=20, n_test_per_class=30):
    """The scikit-learn digits as :class:`~datasets.image_data.ImageData`.

    Images become uint8 (N, 1, 8, 8) scaled from 0..16 to 0..255 by ``round(v * 255 / 16)``. The
    split is stratified and seeded (``numpy.random.RandomState(split_seed)``, see
    :func:`~datasets.image_data.stratified_partition`): ``n_test_per_class`` test and
    ``n_val_per_class`` validation images per class, the rest (about 130 per class) for training.
    ``pad=1`` (a 1-pixel shift on 8 x 8 images) and ``flip=False``: digits are not
    mirror-symmetric, a flipped 2, 3, 4, 5, 6, 7 or 9 is no longer that digit.

    Returns:
        ImageData: images uint8 (N, 1, 8, 8), int32 labels, float32 (1, 8, 8) mean of train.

    Raises:
        DataError: scikit-learn's digits file is damaged (the message names it).
    """
    from sklearn.datasets import load_digits as sklearn_load_digits  # heavy: import on use

    try:
        bunch = sklearn_load_digits()
    except (OSError, ValueError, EOFError, zlib.error) as e:   # a damaged scikit-learn install
        import sklearn.datasets
        path = os.path.join(os.path.dirname(sklearn.datasets.__file__), 'data', 'digits.csv.gz')
        raise DataError('scikit-learn digits file {} cannot be read ({}: {}); reinstall '
                        'scikit-learn'.format(path, type(e).__name__, e)) from None
    x = numpy.round(bunch.images * (255.0 / 16.0)).astype(numpy.uint8)[:, None]
    y = bunch.target.astype(numpy.int32)
    test_idx, val_idx, train_idx = stratified_partition(
        y, [n_test_per_class, n_val_per_class], split_seed)
    train_x = x[train_idx]
    return ImageData(name='digits', train_x=train_x, train_y=y[train_idx], val_x=x[val_idx],
                     val_y=y[val_idx], test_x=x[test_idx], test_y=y[test_idx],
                     mean=mean_image(train_x), n_classes=10,
                     class_names=tuple(str(d) for d in range(10)), pad=1, flip=False)

"""CIFAR-10-shaped random images: the pipeline's checks and benchmarks where CIFAR-10 is absent.

Uniform random uint8 images of 3 x 32 x 32 with uniform random labels, split 45k / 5k / 10k
like CIFAR-10, with CIFAR-10's augmentation (pad 4, flips). There is nothing to learn in them
(test accuracy stays near 10 %); they exercise the same arrays, network and code paths at the
same cost, so a machine without CIFAR-10 (and without a network) can still check and time a GPU."""
import numpy

from datasets.image_data import ImageData, mean_image

#: CIFAR-10's split sizes.
SIZES = {'train': 45000, 'val': 5000, 'test': 10000}


def load_synthetic(seed=0, n_train=SIZES['train'], n_val=SIZES['val'], n_test=SIZES['test'],
                   n_classes=10, shape=(3, 32, 32)):
    """Random images and labels drawn from ``numpy.random.RandomState(seed)`` as
    :class:`~datasets.image_data.ImageData` named ``'synthetic'``."""
    rng = numpy.random.RandomState(seed)
    arrays = {}
    for split, n in (('train', n_train), ('val', n_val), ('test', n_test)):
        arrays[split + '_x'] = rng.randint(0, 256, size=(n,) + tuple(shape), dtype=numpy.uint8)
        arrays[split + '_y'] = rng.randint(0, n_classes, size=n).astype(numpy.int32)
    return ImageData(name='synthetic', mean=mean_image(arrays['train_x']), n_classes=n_classes,
                     class_names=tuple('class{}'.format(k) for k in range(n_classes)),
                     pad=4, flip=True, **arrays)

"""datasets: arrays in, arrays out (host uint8 images, int32 labels); knows nothing of trainers."""
import chainer_compat  # noqa: F401  (must precede the first chainer import)

from datasets.augment import crop_flip, normalize, random_crop_flip  # noqa: F401
from datasets.cifar10 import load_cifar10  # noqa: F401
from datasets.errors import DataError  # noqa: F401
from datasets.digits import DIGITS_ASYMMETRIC, load_digits  # noqa: F401
from datasets.image_data import (  # noqa: F401
    ImageData, mean_image, stratified_partition, stratified_split)
from datasets.noise import (  # noqa: F401
    CIFAR10_ASYMMETRIC, asymmetric_noise, symmetric_noise, transition_matrix)
from datasets.clothing1m import (  # noqa: F401
    Clothing1MDataset, load_clothing1m, read_annotations)

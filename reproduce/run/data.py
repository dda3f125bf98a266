"""The data sets a run can use, each described once (loading, input checks, noise, network,
hyper-parameters, how images reach the device). Nothing else in ``reproduce/`` tests a data set's
name. To add one: a loader in ``datasets/`` and a :class:`DataSet` entry in :data:`DATA_SETS`."""
import dataclasses
import os
import types

from datasets import noise as noise_lib
from datasets.digits import DIGITS_ASYMMETRIC
from reproduce.run import hparams


@dataclasses.dataclass(frozen=True)
class DataSet:
    """One data set as the runs use it."""

    name: str
    help: str                   # one line about it
    load: object                # config -> ImageData (or Clothing1MData)
    noises: tuple               # the noise kinds it takes; ('real',): its own
    default_rate: float
    asymmetric_mapping: object  # source -> target class of its asymmetric noise, or None
    row: object                 # (noise, rate) -> {alpha, beta, lr, mixup_alpha}, or None
    model: dict                 # {'arch': ...} plus its arguments
    schedules: object           # () -> (step1, step2) settings (copies)
    pencil: object              # () -> PENCIL's settings (a copy)
    eval_batch_size: int
    host_images: bool           # decoded on the host batch by batch (too many for the device)
    transition: str             # Forward T's default matrix: 'true' or 'estimate'
    needs: tuple                # the options a run must be given ('data_dir', 'weights')
    check_inputs: object        # config -> None; FileNotFoundError (one line) for missing files
    n_classes: int
    tables: tuple               # the table scripts that offer it

    @property
    def default_noise(self):
        return self.noises[0]

    @property
    def real_noise(self):
        return self.noises == ('real',)


# ----- loaders and input checks -----
def _load_digits(config):
    from datasets.digits import load_digits
    return load_digits(split_seed=config.split_seed)


def _load_cifar10(config):
    from datasets.cifar10 import load_cifar10
    return load_cifar10(config.data_dir, split_seed=config.split_seed)


def _load_synthetic(config):
    from datasets.synthetic import load_synthetic
    return load_synthetic(seed=config.split_seed)


class Clothing1MData(object):
    """Clothing1M as the runs need it: the noisy training set and the clean validation and test
    sets, read batch by batch; ``train_y``: each training image's clean label, or -1."""

    def __init__(self, root):
        from datasets import clothing1m
        self.train, self.val, self.test, self.n_classes, self.class_names = \
            clothing1m.load_clothing1m(root)
        self.train_y = clothing1m.clean_labels_of_noisy_train(root)


def _check_cifar10(config):
    from datasets.cifar10 import load_cifar10
    load_cifar10(config.data_dir)


def _check_clothing1m(config):
    from datasets import clothing1m
    clothing1m.check_files(config.data_dir)
    if config.weights != 'none' and not os.path.isfile(config.weights):
        raise FileNotFoundError(
            "ResNet-50 weights file {} does not exist: convert the ImageNet weights as the "
            "datasets/README.md says, or pass --weights none".format(config.weights))


# ----- the data sets -----
_CIFAR10_SHARED = dict(
    noises=('symmetric', 'asymmetric'), default_rate=0.5,
    asymmetric_mapping=noise_lib.CIFAR10_ASYMMETRIC, row=hparams.table1,
    model={'arch': 'preact_resnet32'},
    schedules=lambda: (dict(hparams.CIFAR10_STEP1), dict(hparams.CIFAR10_STEP2)),
    pencil=lambda: dict(hparams.PENCIL_CIFAR10), eval_batch_size=1000, host_images=False,
    transition='true', needs=(), n_classes=10, tables=(2, 3))

DATA_SETS = types.MappingProxyType({d.name: d for d in (
    DataSet(name='cifar10', help='the paper: CIFAR-10, with synthetic noise',
            load=_load_cifar10, check_inputs=_check_cifar10, **_CIFAR10_SHARED),
    DataSet(name='digits', help="this package's small real data set (scikit-learn's "
                                '8x8 digits) for a quick look on a CPU',
            load=_load_digits, noises=('symmetric', 'asymmetric'), default_rate=0.5,
            asymmetric_mapping=DIGITS_ASYMMETRIC,
            row=lambda noise, rate: dict(hparams.DIGITS_TABLE[noise]),
            model=dict(hparams.DIGITS_MODEL, arch='preact_resnet'),
            schedules=lambda: (dict(hparams.DIGITS_STEP1), dict(hparams.DIGITS_STEP2)),
            pencil=lambda: dict(hparams.PENCIL_DIGITS), eval_batch_size=1000,
            host_images=False, transition='true', needs=(), check_inputs=lambda config: None,
            n_classes=10, tables=(2, 3)),
    DataSet(name='synthetic', help='CIFAR-10-shaped random images, for pipeline checks and '
                                   'timing only (nothing to learn)',
            load=_load_synthetic, check_inputs=lambda config: None, **_CIFAR10_SHARED),
    DataSet(name='clothing1m', help='Clothing1M, with its own real noise',
            load=lambda config: Clothing1MData(config.data_dir), noises=('real',),
            default_rate=0.0, asymmetric_mapping=None, row=lambda noise, rate: None,
            model={'arch': 'resnet50'},
            schedules=lambda: (dict(hparams.CLOTHING1M_STEP1), dict(hparams.CLOTHING1M_STEP2)),
            pencil=lambda: dict(hparams.PENCIL_CLOTHING1M), eval_batch_size=100,
            host_images=True, transition='estimate', needs=('data_dir', 'weights'),
            check_inputs=_check_clothing1m, n_classes=14, tables=(4,)),
)})

NAMES = tuple(DATA_SETS)
#: Every noise kind any data set takes.
NOISE_KINDS = ('symmetric', 'asymmetric', 'real')


def data_set(name):
    """The description of data set ``name``; a ValueError naming the known ones otherwise."""
    try:
        return DATA_SETS[name]
    except KeyError:
        raise ValueError('unknown data set {!r}: choose one of {}'.format(name, ', '.join(NAMES)))


def noisy_labels(config, data):
    """The training labels with the configured noise (host int32), or the data set's own."""
    spec = data_set(config.dataset)
    if spec.real_noise:
        return data.train.labels
    if config.noise == 'symmetric':
        return noise_lib.symmetric_noise(data.train_y, config.rate, data.n_classes,
                                         seed=config.noise_seed)
    return noise_lib.asymmetric_noise(data.train_y, config.rate, seed=config.noise_seed,
                                      mapping=spec.asymmetric_mapping, n_classes=data.n_classes)


def true_transition(config, n_classes):
    """The true noise transition matrix of the configured synthetic noise."""
    spec = data_set(config.dataset)
    mapping = spec.asymmetric_mapping if config.noise == 'asymmetric' else None
    return noise_lib.transition_matrix(config.noise, config.rate, n_classes, mapping=mapping)

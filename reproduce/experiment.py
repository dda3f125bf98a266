"""One run of the method and its baselines, wired from a configuration.

This is the only module that joins the layers: data set -> noisy labels -> device arrays ->
network -> updater + extensions -> trainer. A run of the method is

* step 1 (``JointOptimizationUpdater``), once per (noise, trial), which writes the corrected
  labels (soft Y and argmax Y, with their accuracy against the clean labels) to ``labels.npz``;
* step 2 (``MixupUpdater``) forked from those labels twice: ``ours`` (Lc + Lmix) and ``tanaka``
  (Lmix weight 0, Tanaka et al.'s second step);
* the ``cross_entropy`` baseline on the noisy labels with step 2's schedule, and Forward T
  (``forward_t``) with the true, a given, or an estimated noise transition matrix (the estimate
  comes from the cross-entropy network, which then runs first);
* PENCIL (``pencil``) with its own three-stage schedule.

Each part trains in its own directory (``step1/``, ``ours/``, ``tanaka/``, ``cross_entropy/``)
holding its log, per-epoch curves, a snapshot after every epoch, and ``result.json`` (written last,
atomically) with its numbers and provenance. Starting the same run again skips the parts that have
a ``result.json`` and resumes the others from their snapshot.

Command line (a single run; the table scripts run many)::

    python -m reproduce.experiment --dataset digits --noise symmetric --rate 0.5 --out runs/x
"""
import argparse
import dataclasses
import json
import os
import sys
import time

import chainer_compat  # noqa: F401  (before chainer)
import chainer
import numpy
from chainer import training
from chainer.training import extensions as chainer_extensions

from datasets import augment, noise
from reproduce import hparams
from reproduce.provenance import provenance
from updaters import atomic
from updaters.baselines import CrossEntropyUpdater
from updaters.baselines import ESTIMATE_PERCENTILE, estimate_transition
from updaters.extensions import (AccuracyTracker, DeviceSplit, LabelAccuracyReport,
                                 NonFiniteLossError, StopOnNonFinite, probabilities_of_batches)
from updaters.feed import DeviceImageFeed, IndexIterator
from updaters.fused_sgd import FusedMomentumSGD
from updaters.joint import JointOptimizationUpdater
from updaters.labels import LabelTable
from updaters.mixup import MixupUpdater

METHODS = ('cross_entropy', 'forward_t', 'tanaka', 'pencil', 'ours')
DATASETS = ('digits', 'cifar10', 'clothing1m', 'synthetic')
#: Data sets trained with CIFAR-10's network and settings (synthetic: CIFAR-10-shaped random
#: images, for checks and benchmarks where CIFAR-10 is absent).
CIFAR10_LIKE = ('cifar10', 'synthetic')
NOISE_KINDS = ('symmetric', 'asymmetric', 'real')
SNAPSHOT = 'snapshot.npz'
MODEL = 'model.npz'
TRANSITION = 'transition.npy'
RESULT = 'result.json'
CONFIG = 'config.json'
#: RunConfig fields that do not change what a run computes (where it runs, how it reports); a
#: run may resume with other values of these, and they are not part of its identity.
NOT_IDENTITY = ('device', 'data_dir', 'progress', 'eval_batch_size', 'loader_threads', 'weights',
                'tf32')
#: Forward T's matrix, besides a .npy file: the true one of the synthetic noise (the default
#: there), or Patrini et al.'s estimate from this run's cross-entropy network (the default on
#: Clothing1M, which has no true one).
TRANSITIONS = ('true', 'estimate')


class SettingsMismatchError(ValueError):
    """An output directory already holds a run made with other settings."""


@dataclasses.dataclass
class RunConfig:
    """Everything that decides one run. Unset seeds default to ``trial``.

    The hyper-parameters default to the paper's (:mod:`reproduce.hparams`) for CIFAR-10 and to
    this package's digits settings; ``step1`` / ``step2`` / ``pencil`` override single entries
    (for instance ``step1={'epochs': 3}``; on the command line ``--set step1.epochs=3``) and
    ``epochs_scale`` shortens every schedule proportionally.
    """

    dataset: str = 'digits'
    noise: str = 'symmetric'
    rate: float = 0.5
    trial: int = 0
    device: str = '@numpy'
    data_dir: str = None
    noise_seed: int = None
    split_seed: int = None
    init_seed: int = None
    order_seed: int = None
    mixup_seed: int = None
    epochs_scale: float = 1.0
    step1: dict = dataclasses.field(default_factory=dict)
    step2: dict = dataclasses.field(default_factory=dict)
    pencil: dict = dataclasses.field(default_factory=dict)
    transition: str = None             # Forward T's matrix: TRANSITIONS or a .npy file
    mixup_weight: float = 1.0          # w of Lmix in "ours"
    lc_on: str = 'clean'               # interpretation choice 2: 'clean' or 'mixed'
    step1_labels: str = 'soft'         # train step 1 on 'soft' Y or 'hard' argmax Y
    step2_labels: str = 'soft'         # interpretation choice 3: 'soft' or 'hard'
    step2_init: str = 'fresh'          # interpretation choice 1: 'fresh' or 'step1'
    eval_batch_size: int = None        # default: 1000 (32x32 images), 100 (Clothing1M)
    progress: bool = True
    tf32: bool = False                 # TF32 matrix products on the GPU (CUPY_TF32); recorded
    # Clothing1M only
    weights: str = None                # ImageNet ResNet-50 .npz (models.resnet50); 'none': random
    iterations_per_epoch: int = None   # subsample: each epoch a random subset of this many batches
    loader_threads: int = 8            # image decoding threads

    def __post_init__(self):
        for name in ('noise_seed', 'split_seed', 'init_seed', 'order_seed', 'mixup_seed'):
            if getattr(self, name) is None:
                setattr(self, name, self.trial)
        if self.transition is None:
            self.transition = 'estimate' if self.dataset == 'clothing1m' else 'true'
        self.validate()

    def validate(self):
        choices = {'dataset': DATASETS, 'noise': NOISE_KINDS, 'lc_on': ('clean', 'mixed'),
                   'step1_labels': ('soft', 'hard'), 'step2_labels': ('soft', 'hard'),
                   'step2_init': ('fresh', 'step1')}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError('unknown {} {!r}: choose one of {}'.format(
                    name, getattr(self, name), ', '.join(allowed)))
        if not 0 <= self.rate < 1:
            raise ValueError('noise rate {} is outside [0, 1)'.format(self.rate))
        if (self.dataset == 'clothing1m') != (self.noise == 'real'):
            raise ValueError("Clothing1M has its own real noise (noise 'real'); the other data "
                             "sets take 'symmetric' or 'asymmetric' noise")
        if self.transition == 'true' and self.noise == 'real':
            raise ValueError("Clothing1M has no true noise transition matrix: Forward T takes "
                             "--transition estimate (the default there) or an estimated matrix "
                             "(.npy, 14 x 14)")
        if self.dataset == 'clothing1m':
            if self.rate != 0:
                raise ValueError('Clothing1M takes no noise rate (its noise is real)')
            if not self.data_dir:
                raise ValueError('Clothing1M needs --data-dir: the directory holding its '
                                 'annotation files and images/')
            if not self.weights:
                raise ValueError("Clothing1M needs --weights: the ImageNet ResNet-50 weights "
                                 "converted to .npz (README, 'Clothing1M'), or 'none' to train "
                                 "from random weights (not the paper's setting)")
        if self.iterations_per_epoch is not None and self.iterations_per_epoch < 1:
            raise ValueError('iterations_per_epoch must be at least 1, got {}'.format(
                self.iterations_per_epoch))
        if self.mixup_weight <= 0:
            raise ValueError('--mixup-weight must be positive, got {:g}: with weight 0 "ours" '
                             'is exactly Tanaka et al.\'s second step, which is the tanaka row '
                             '(--methods tanaka)'.format(self.mixup_weight))
        if self.epochs_scale <= 0:
            raise ValueError('epochs_scale must be positive, got {}'.format(self.epochs_scale))
        for part, defaults in _setting_defaults(self.dataset).items():
            unknown = sorted(set(getattr(self, part)) - set(defaults))
            if unknown:
                raise ValueError('unknown {} setting(s) {}: the {} settings are {}'.format(
                    part, ', '.join(unknown), part, ', '.join(sorted(defaults))))
            for key, value in getattr(self, part).items():
                _check_setting_kind('{}.{}'.format(part, key), value, defaults[key])
        from updaters.pencil import LOSS_VARIANTS
        if self.pencil.get('losses', 'official') not in LOSS_VARIANTS:
            raise ValueError('pencil.losses must be one of {}, got {!r}'.format(
                ', '.join(LOSS_VARIANTS), self.pencil['losses']))
        self.settings()   # the resolved schedules are checked there (hparams.check_schedule)

    def settings(self):
        """The resolved hyper-parameters: {'model', 'step1', 'step2', 'pencil'}."""
        step1, step2 = hparams.schedules(self.dataset)
        if self.dataset == 'clothing1m':
            row = {'mixup_alpha': step2['mixup_alpha']}
            model = {'arch': 'resnet50'}
        else:
            row = (hparams.table1(self.noise, self.rate) if self.dataset in CIFAR10_LIKE
                   else hparams.DIGITS_TABLE[self.noise])
            step1.update(alpha=row['alpha'], beta=row['beta'], lr=row['lr'])
            model = ({'arch': 'preact_resnet32'} if self.dataset in CIFAR10_LIKE
                     else dict(hparams.DIGITS_MODEL, arch='preact_resnet'))
        pencil = hparams.pencil_settings(self.dataset)
        for step, overrides in ((step1, self.step1), (step2, self.step2), (pencil, self.pencil)):
            step.update({k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
        step2.setdefault('mixup_alpha', row['mixup_alpha'])
        step1, step2, pencil = (hparams.scaled(step, self.epochs_scale)
                                for step in (step1, step2, pencil))
        pencil['epochs'] = sum(pencil['stages'])
        for part, step in (('step1', step1), ('step2', step2), ('pencil', pencil)):
            hparams.check_schedule(part, step)
        return {'model': model, 'step1': step1, 'step2': step2, 'pencil': pencil}

    def identity(self):
        """The fields that decide what the run computes, as JSON-ready data."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k not in NOT_IDENTITY}
        if self.dataset == 'clothing1m':   # the file's name, not where it lies on this machine
            fields['weights'] = os.path.basename(self.weights)
        fields['transition'] = self.transition_name()
        return json.loads(json.dumps(fields))

    def transition_name(self):
        """Forward T's matrix source: 'true', 'estimate', or the file's name (not where it lies
        on this machine)."""
        return (self.transition if self.transition in TRANSITIONS
                else os.path.basename(self.transition))

    def label(self):
        """The data set and schedule part of the run's name (also the folder of its tables):
        ``<dataset>[-x<epochs scale>][-i<iterations per epoch>]``."""
        label = self.dataset if self.epochs_scale == 1 else '{}-x{:g}'.format(
            self.dataset, self.epochs_scale)
        if self.iterations_per_epoch:
            label += '-i{}'.format(self.iterations_per_epoch)
        return label

    def name(self):
        """The run's directory name below the output root, made from its settings:
        ``<label()>/<noise>-<rate in %>/trial<k>``."""
        setting = 'real' if self.noise == 'real' else '{}-{:g}'.format(
            self.noise, round(100 * self.rate, 4))
        return os.path.join(self.label(), setting, 'trial{}'.format(self.trial))

    def evaluation_batch_size(self):
        if self.eval_batch_size:
            return self.eval_batch_size
        return 100 if self.dataset == 'clothing1m' else 1000


def _setting_defaults(dataset):
    """The entries that ``step1`` / ``step2`` / ``pencil`` may override on ``dataset``, with a
    value of each one's kind (its default, or a number for Table 1's entries)."""
    step1, step2 = hparams.schedules(dataset)
    step1.update({k: step1.get(k, 1.0) for k in ('alpha', 'beta', 'lr')})
    step2.setdefault('mixup_alpha', 1.0)
    return {'step1': step1, 'step2': step2, 'pencil': hparams.pencil_settings(dataset)}


def _setting_keys(dataset):
    """The entries that ``step1`` / ``step2`` / ``pencil`` may override on ``dataset``."""
    return {part: set(values) for part, values in _setting_defaults(dataset).items()}


def _check_setting_kind(name, value, default):
    """Refuses an override whose kind differs from its default's (one line)."""
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if isinstance(default, tuple):
        ok, kind = isinstance(value, (list, tuple)) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value), 'a list of integers'
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), 'a word'
    elif default is None:       # window: None means every epoch
        ok, kind = value is None or (isinstance(value, int) and not isinstance(value, bool)), \
            'an integer or null'
    elif isinstance(default, int) and not isinstance(default, bool):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), 'an integer'
    else:
        ok, kind = number(value), 'a number'
    if not ok:
        raise ValueError('--set {} takes {}, got {}'.format(name, kind, json.dumps(value)))


def parse_settings(items):
    """``--set`` values (``'<part>.<key>=<value>'``, the value as JSON, e.g. ``step1.lr=0.03``
    or ``pencil.stages=[5,10,10]``, or a word, e.g. ``pencil.losses=paper``) as RunConfig
    overrides: {'step1': {...}, 'step2': {...},
    'pencil': {...}}. Unknown keys are refused by :class:`RunConfig`."""
    overrides = {'step1': {}, 'step2': {}, 'pencil': {}}
    for item in items or ():
        name, sep, text = item.partition('=')
        part, dot, key = name.partition('.')
        if not sep or not dot or part not in overrides or not key:
            raise ValueError('--set takes <part>.<key>=<value> with part one of {}; got {!r}'
                             .format(', '.join(overrides), item))
        try:
            value = json.loads(text)
        except ValueError:   # a word: a string setting, e.g. pencil.losses=paper
            value = text
        overrides[part][key] = value
    return overrides


def settings_options(config):
    """The ``--set`` arguments that give ``config``'s overrides on a command line."""
    args = []
    for part in ('step1', 'step2', 'pencil'):
        for key, value in sorted(getattr(config, part).items()):
            args += ['--set', '{}.{}={}'.format(part, key, json.dumps(
                list(value) if isinstance(value, tuple) else value))]
    return args


def extra_command_options(config):
    """(flag, value) pairs that the command line of ``config`` needs beyond the common ones."""
    options = []
    if config.weights:
        options.append(('--weights', config.weights if config.weights == 'none'
                        else os.path.abspath(config.weights)))
    if config.iterations_per_epoch:
        options.append(('--iterations-per-epoch', str(config.iterations_per_epoch)))
    if config.dataset == 'clothing1m':
        options.append(('--loader-threads', str(config.loader_threads)))
    return options


def check_inputs(config):
    """Fails early, with one line saying what to do, when the data or weights a run needs are
    not there; fetches CIFAR-10 once (so that concurrent runs do not all download it)."""
    if config.dataset == 'cifar10':
        from datasets.cifar10 import load_cifar10
        load_cifar10(config.data_dir)
    elif config.dataset == 'clothing1m':
        from datasets import clothing1m
        if not os.path.isdir(config.data_dir):
            raise FileNotFoundError('Clothing1M directory {} does not exist. {}'.format(
                config.data_dir, clothing1m._LAYOUT_HELP))
        for names in clothing1m.SPLIT_FILES.values():
            for name in names:
                clothing1m._annotation_path(config.data_dir, name)
        if config.weights != 'none' and not os.path.isfile(config.weights):
            raise FileNotFoundError(
                "ResNet-50 weights file {} does not exist: convert the ImageNet weights as the "
                "README's Clothing1M section says, or pass --weights none".format(config.weights))


def check_run_dir(run_dir, config):
    """Claims ``run_dir`` for ``config``: writes its identity to ``config.json``, or, if the
    directory already holds one, refuses (:class:`SettingsMismatchError`) when it differs.
    Nothing in the directory is touched on a mismatch."""
    path = os.path.join(run_dir, CONFIG)
    identity = config.identity()
    if os.path.exists(path):
        with open(path) as f:
            recorded = json.load(f)
        # a field added to RunConfig after the run was made counts as its default there
        defaults = json.loads(json.dumps(dataclasses.asdict(RunConfig())))
        differ = sorted(k for k in set(recorded) | set(identity)
                        if recorded.get(k, defaults.get(k)) != identity.get(k, defaults.get(k)))
        if differ:
            raise SettingsMismatchError(
                '{} holds a run made with other settings ({}); nothing was changed there: use '
                'another --out, or delete that directory to start it again'.format(
                    run_dir, ', '.join('{} {} there, {} now'.format(
                        k, json.dumps(recorded.get(k)), json.dumps(identity.get(k)))
                        for k in differ)))
        return
    atomic.write_json(path, identity)


# ----------------------------------------------------------------------------------------------
# Data and model


def load_data(config):
    """The clean :class:`datasets.image_data.ImageData` of the configured data set (for
    Clothing1M, a :class:`Clothing1MData`)."""
    if config.dataset == 'clothing1m':
        return Clothing1MData(config.data_dir)
    if config.dataset == 'digits':
        from datasets.digits import load_digits
        return load_digits(split_seed=config.split_seed)
    if config.dataset == 'synthetic':
        from datasets.synthetic import load_synthetic
        return load_synthetic(seed=config.split_seed)
    from datasets.cifar10 import load_cifar10
    return load_cifar10(config.data_dir, split_seed=config.split_seed)


def noisy_labels(config, data):
    """The training labels with the configured synthetic noise (host int32)."""
    if config.noise == 'real':
        return data.train.labels
    if config.noise == 'symmetric':
        return noise.symmetric_noise(data.train_y, config.rate, data.n_classes, seed=config.noise_seed)
    mapping = asymmetric_mapping(config.dataset)
    return noise.asymmetric_noise(data.train_y, config.rate, seed=config.noise_seed,
                                  mapping=mapping, n_classes=data.n_classes)


def asymmetric_mapping(dataset):
    if dataset == 'digits':
        from datasets.digits import DIGITS_ASYMMETRIC
        return DIGITS_ASYMMETRIC
    return noise.CIFAR10_ASYMMETRIC


def build_model(config, data, settings):
    """The network of ``settings['model']``: ``preact_resnet32`` (the paper's CIFAR-10 network,
    :func:`models.preact_resnet32`), ``preact_resnet`` (a smaller PreActResNet: digits) or
    ``resnet50`` (Clothing1M), initialised from ``config.init_seed``."""
    numpy.random.seed(config.init_seed)  # Chainer's initialisers draw from numpy's global RNG
    spec = dict(settings['model'])
    arch = spec.pop('arch')
    if arch == 'resnet50':
        from models import ResNet50
        return ResNet50(n_classes=data.n_classes,
                        pretrained_path=None if config.weights == 'none' else config.weights)
    from models import PreActResNet, preact_resnet32
    if arch == 'preact_resnet32':
        return preact_resnet32(n_classes=data.n_classes, in_channels=data.train_x.shape[1])
    return PreActResNet(n_classes=data.n_classes, in_channels=data.train_x.shape[1], **spec)


class Clothing1MData(object):
    """Clothing1M as the runs need it: the noisy training set (with training augmentation) and
    the clean validation and test sets, read from disk batch by batch; ``train_y`` holds the
    clean label of each noisy training image where the data set has one, -1 elsewhere."""

    def __init__(self, root):
        from datasets import clothing1m
        self.train, self.val, self.test, self.n_classes, self.class_names = \
            clothing1m.load_clothing1m(root)
        self.train_y = clothing1m.clean_labels_of_noisy_train(root)


class HostData(object):
    """Clothing1M's counterpart of :class:`DeviceData`: labels on the device, images decoded on
    the host for every batch (:class:`updaters.feed.HostImageFeed`)."""

    def __init__(self, data, labels_noisy, device, order_seed, iterations_per_epoch, threads):
        from updaters.feed import HostImageFeed, HostSplit
        self.device = device
        self.n_classes = data.n_classes
        self.n = len(data.train)
        self.clean = device.send(data.train_y)
        self.noisy = device.send(labels_noisy)
        self.feed = HostImageFeed(data.train, seed=order_seed, device=device, threads=threads)
        self.splits = {'val': HostSplit(data.val, device=device, threads=threads),
                       'test': HostSplit(data.test, device=device, threads=threads)}
        self.preprocess = None
        self.order_seed = order_seed
        self.iterations_per_epoch = iterations_per_epoch
        self.threads = threads

    def train_split(self):
        """The noisy training images as an evaluation batch source (centre crop), with their
        noisy labels."""
        from datasets.clothing1m import Clothing1MDataset
        from updaters.feed import HostSplit
        train = self.feed.dataset
        plain = Clothing1MDataset(train.root, train.paths, train.labels, train=False)
        return HostSplit(plain, device=self.device, threads=self.threads)

    def iterator(self, batch_size):
        # host indices: the feed loads a batch without waiting for the device's queued work
        return IndexIterator(self.n, batch_size, seed=self.order_seed, xp=numpy,
                             iterations_per_epoch=self.iterations_per_epoch)


class DeviceData(object):
    """The data set's arrays on the training device, and the functions that feed them."""

    def __init__(self, data, labels_noisy, device, order_seed, iterations_per_epoch=None):
        self.device = device
        self.iterations_per_epoch = iterations_per_epoch
        self.n_classes = data.n_classes
        self.train_x = device.send(data.train_x)
        self.clean = device.send(data.train_y)
        self.noisy = device.send(labels_noisy)
        self.mean = device.send(data.mean)
        self.splits = {'val': (device.send(data.val_x), device.send(data.val_y)),
                       'test': (device.send(data.test_x), device.send(data.test_y))}
        mean, pad, flip = self.mean, data.pad, data.flip
        self.feed = DeviceImageFeed(
            self.train_x, lambda x, rng: augment.random_crop_flip(x, mean, rng, pad=pad, flip=flip),
            seed=order_seed)
        self.preprocess = lambda x: augment.normalize(x, mean)
        self.order_seed = order_seed

    def train_split(self):
        """The training images as an evaluation batch source (no augmentation), with their
        noisy labels."""
        return DeviceSplit(self.train_x, self.noisy, self.preprocess)

    def iterator(self, batch_size):
        return IndexIterator(len(self.train_x), batch_size, seed=self.order_seed,
                             xp=self.device.xp, iterations_per_epoch=self.iterations_per_epoch)


# ----------------------------------------------------------------------------------------------
# Training one part


def _optimizer(model, step):
    """Momentum SGD with weight decay, as one operation over all parameters
    (:class:`updaters.fused_sgd.FusedMomentumSGD`; the arithmetic of Chainer's MomentumSGD with
    a WeightDecay hook)."""
    return FusedMomentumSGD(lr=step['lr'], momentum=step['momentum'],
                            weight_decay=step['weight_decay']).setup(model)


def _read_json(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return None


def _read_result(out_dir):
    return _read_json(os.path.join(out_dir, RESULT))


def _save_uncompressed(path, target):
    """The snapshot's writer: Chainer compresses by default, which costs seconds per epoch for
    float parameters and label buffers that hardly compress."""
    chainer.serializers.save_npz(path, target, compression=False)


def _train(updater, epochs, out_dir, tracker, config, extra_extensions=(), milestones=None,
           lr_decay=0.1, report_keys=()):
    """Run ``updater`` for ``epochs`` in ``out_dir``, resuming from its snapshot if there is one."""
    trainer = training.Trainer(updater, (epochs, 'epoch'), out=out_dir)
    trainer.extend(StopOnNonFinite())
    trainer.extend(tracker)
    if milestones:
        trainer.extend(chainer_extensions.ExponentialShift('lr', lr_decay),
                       trigger=training.triggers.ManualScheduleTrigger(list(milestones), 'epoch'))
    trainer.extend(chainer_extensions.observe_lr(), trigger=(1, 'epoch'))
    trainer.extend(chainer_extensions.LogReport(trigger=(1, 'epoch'), filename='log.json'))
    for extension in extra_extensions:
        trainer.extend(extension)
    trainer.extend(chainer_extensions.snapshot(savefun=_save_uncompressed, filename=SNAPSHOT),
                   trigger=(1, 'epoch'))
    if config.progress:
        keys = ['epoch', 'main/loss', 'val/accuracy', 'test/accuracy'] + list(report_keys)
        trainer.extend(chainer_extensions.PrintReport(keys + ['lr', 'elapsed_time']))
        trainer.extend(chainer_extensions.ProgressBar(update_interval=10))
    snapshot = os.path.join(out_dir, SNAPSHOT)
    if os.path.exists(snapshot):
        chainer.serializers.load_npz(snapshot, trainer)
        if config.progress:
            print('{}: resuming from epoch {} ({})'.format(updater.step_name, updater.epoch,
                                                           snapshot))
    started = time.time()
    trainer.run(show_loop_exception_msg=False)
    return time.time() - started


def _final_loss(out_dir):
    """The mean training loss of the last epoch, from the part's ``log.json`` (None if absent)."""
    log = _read_json(os.path.join(out_dir, 'log.json')) or []
    return log[-1].get('main/loss') if log else None


def _finish(out_dir, config, settings, step_name, step, tracker, seconds, **extra):
    curves = tracker.summary()
    result = {
        'part': step_name,
        'config': dataclasses.asdict(config),
        'settings': {k: settings[k] for k in ('model',)},
        'step': step,
        'epochs': step['epochs'],
        'accuracy': curves,
        'best_test': curves['best']['test'],
        'last_test': curves['last']['test'],
        'final_loss': _final_loss(out_dir),
        'train_seconds': seconds,
        'provenance': provenance(config.device),
    }
    result.update(extra)
    atomic.write_json(os.path.join(out_dir, RESULT), result)
    return result


def use_tf32(enabled):
    """Sets CuPy's TF32 switch for this process's float32 matrix products (CuPy reads
    ``CUPY_TF32`` at its first product): on only when asked for, so that a run's numbers are
    float32 ones unless ``--tf32`` says otherwise; the provenance records it."""
    os.environ['CUPY_TF32'] = '1' if enabled else '0'


def _setup(config, data, noisy, out_dir, init_weights=None):
    """What every part builds first: settings, device, device data, model, accuracy tracker."""
    use_tf32(config.tf32)
    settings = config.settings()
    device = chainer.get_device(config.device)
    device.use()
    if config.dataset == 'clothing1m':
        arrays = HostData(data, noisy, device, config.order_seed, config.iterations_per_epoch,
                          config.loader_threads)
    else:
        arrays = DeviceData(data, noisy, device, config.order_seed, config.iterations_per_epoch)
    model = build_model(config, data, settings)
    if init_weights:
        chainer.serializers.load_npz(init_weights, model)
    model.to_device(device)
    tracker = AccuracyTracker(arrays.splits, arrays.preprocess,
                              batch_size=config.evaluation_batch_size(),
                              path=os.path.join(out_dir, 'accuracy.json'))
    return settings, device, arrays, model, tracker


def step1_updater(config, settings, arrays, model, device):
    """Step 1's updater on ``arrays`` (:class:`DeviceData` or :class:`HostData`), with its label
    table as ``updater.label_table``."""
    step = settings['step1']
    table = LabelTable(arrays.noisy, arrays.n_classes, window=step['window'],
                       begin=step['begin'], device=device)
    return JointOptimizationUpdater(
        arrays.iterator(step['batch_size']), _optimizer(model, step), arrays.feed, table,
        alpha=step['alpha'], beta=step['beta'], label_kind=config.step1_labels, device=device)


def step2_updater(config, settings, arrays, model, device, targets, mixup_weight):
    """Step 2's updater on fixed ``targets`` (host float32 (n, c)), Lmix weight
    ``mixup_weight`` (0: Tanaka's second step)."""
    step = settings['step2']
    return MixupUpdater(
        arrays.iterator(step['batch_size']), _optimizer(model, step), arrays.feed,
        device.send(targets), mixup_alpha=step['mixup_alpha'], mixup_weight=mixup_weight,
        lc_on=config.lc_on, seed=config.mixup_seed, device=device)


def cross_entropy_updater(settings, arrays, model, device, transition=None):
    """The cross-entropy baseline's updater with step 2's settings; with ``transition`` (host
    (c, c)), Forward T's."""
    step = settings['step2']
    return CrossEntropyUpdater(
        arrays.iterator(step['batch_size']), _optimizer(model, step), arrays.feed, arrays.noisy,
        transition=None if transition is None else device.send(transition), device=device)


def pencil_updater(settings, arrays, model, device):
    """PENCIL's updater with its settings (``settings['pencil']``)."""
    from updaters.pencil import PencilUpdater
    step = settings['pencil']
    return PencilUpdater(
        arrays.iterator(step['batch_size']), _optimizer(model, step), arrays.feed, arrays.noisy,
        arrays.n_classes, step['stages'], alpha=step['alpha'], beta=step['beta'],
        label_lr=step['label_lr'], k=step['k'], losses=step['losses'], device=device)


def run_step1(config, data, noisy, out_dir, extra_extensions=()):
    """Step 1: trains the label-correction network, writes ``labels.npz`` and ``result.json``."""
    done = _read_result(out_dir)
    if done is not None:
        return done
    settings, device, arrays, model, tracker = _setup(config, data, noisy, out_dir)
    step = settings['step1']
    updater = step1_updater(config, settings, arrays, model, device)
    table = updater.label_table
    labels_report = LabelAccuracyReport(table, arrays.noisy, arrays.clean,
                                        path=os.path.join(out_dir, 'label_accuracy.json'))
    seconds = _train(updater, step['epochs'], out_dir, tracker, config,
                     [labels_report] + list(extra_extensions),
                     report_keys=['labels/accuracy'])
    table.save(os.path.join(out_dir, 'labels.npz'), noisy=noisy, clean=data.train_y)
    atomic.save_model(os.path.join(out_dir, MODEL), model)
    accuracy, fixed, broken = labels_report.measure()
    noisy_accuracy = _noisy_accuracy(noisy, data.train_y)
    return _finish(out_dir, config, settings, 'step1', step, tracker, seconds,
                   labels={'noisy_accuracy': noisy_accuracy, 'corrected_accuracy': accuracy,
                           'fixed': fixed, 'broken': broken})


def _noisy_accuracy(noisy, clean):
    """Share of noisy labels equal to the clean one (Clothing1M: where a clean one is known)."""
    known = clean >= 0
    return float(numpy.mean(noisy[known] == clean[known]))


def load_corrected_labels(step1_dir, kind='soft'):
    """Step 1's labels as float32 (n, c) training targets: soft Y or one-hot of argmax Y."""
    path = os.path.join(step1_dir, 'labels.npz')
    if not os.path.exists(path):
        raise FileNotFoundError('{} is missing: step 1 has not finished in {}'.format(path, step1_dir))
    with numpy.load(path) as f:
        soft = f['soft']
    if kind == 'soft':
        return soft.astype(numpy.float32)
    return numpy.eye(soft.shape[1], dtype=numpy.float32)[soft.argmax(axis=1)]


def run_step2(config, data, noisy, targets, out_dir, mixup_weight, init_weights=None,
              extra_extensions=()):
    """Step 2 on fixed ``targets`` (host float32 (n, c)): ours (w > 0) or Tanaka's (w = 0)."""
    done = _read_result(out_dir)
    if done is not None:
        return done
    settings, device, arrays, model, tracker = _setup(config, data, noisy, out_dir, init_weights)
    step = settings['step2']
    updater = step2_updater(config, settings, arrays, model, device, targets, mixup_weight)
    seconds = _train(updater, step['epochs'], out_dir, tracker, config, extra_extensions,
                     milestones=step['milestones'], lr_decay=step['lr_decay'])
    return _finish(out_dir, config, settings, 'step2', step, tracker, seconds,
                   mixup_weight=mixup_weight)


def transition_of(config, n_classes):
    """Forward T's given matrix: the true one of the configured synthetic noise, or the one in
    the .npy file ``config.transition`` (checked: c x c, non-negative, rows summing to 1).
    (``'estimate'`` is computed during the run: :func:`estimated_transition`.)"""
    if config.transition == 'true':
        mapping = asymmetric_mapping(config.dataset) if config.noise == 'asymmetric' else None
        return noise.transition_matrix(config.noise, config.rate, n_classes, mapping=mapping)
    if not os.path.isfile(config.transition):
        raise FileNotFoundError('transition matrix file {} does not exist'.format(
            config.transition))
    t = numpy.load(config.transition).astype(numpy.float32)
    if t.shape != (n_classes, n_classes) or (t < 0).any() or not numpy.allclose(
            t.sum(axis=1), 1, atol=1e-3):
        raise ValueError('{} is not a {} x {} transition matrix (non-negative, rows summing to '
                         '1)'.format(config.transition, n_classes, n_classes))
    return t


def estimated_transition(config, data, settings, arrays, device, network_dir, path):
    """Patrini et al.'s estimate of T (:func:`updaters.baselines.estimate_transition`) from the
    cross-entropy network saved in ``network_dir``, predicted on the training images without
    augmentation; saved to ``path`` (.npy) once and read from there on a resume."""
    if os.path.exists(path):
        return numpy.load(path)
    weights = os.path.join(network_dir, MODEL)
    if not os.path.exists(weights):
        raise FileNotFoundError(
            '{} is missing: Forward T estimates its matrix with the cross-entropy network, which '
            'is saved when that run finishes (a run finished by an older version of this '
            'package did not save it: delete {} to train it again)'.format(weights, network_dir))
    model = build_model(config, data, settings)
    chainer.serializers.load_npz(weights, model)
    model.to_device(device)
    source = arrays.train_split()
    probabilities = probabilities_of_batches(
        model, source.batches(config.evaluation_batch_size()))
    t = chainer.backend.CpuDevice().send(estimate_transition(probabilities))
    atomic.save_npy(path, t)
    return t


def run_cross_entropy(config, data, noisy, out_dir, extra_extensions=(), forward=False,
                      network_dir=None):
    """The cross-entropy baseline on the noisy labels, with step 2's schedule; with
    ``forward``, Forward T (the loss through the noise transition matrix: given, or estimated
    with the cross-entropy network finished in ``network_dir``). The plain baseline saves its
    network (``model.npz``) for that estimate."""
    done = _read_result(out_dir)
    if done is not None:
        return done
    estimate = forward and config.transition == 'estimate'
    # a given matrix is read (and a bad file refused) before anything is built
    transition = transition_of(config, data.n_classes) if forward and not estimate else None
    settings, device, arrays, model, tracker = _setup(config, data, noisy, out_dir)
    if estimate:
        transition = estimated_transition(config, data, settings, arrays, device, network_dir,
                                          os.path.join(out_dir, TRANSITION))
    step = settings['step2']
    updater = cross_entropy_updater(settings, arrays, model, device, transition)
    seconds = _train(updater, step['epochs'], out_dir, tracker, config, extra_extensions,
                     milestones=step['milestones'], lr_decay=step['lr_decay'])
    extra = {}
    if transition is None:
        atomic.save_model(os.path.join(out_dir, MODEL), model)
    else:
        extra['transition'] = {
            'source': {'true': 'true', 'estimate': 'estimated'}.get(config.transition, 'file'),
            'matrix': numpy.asarray(transition).tolist()}
        if estimate:
            extra['transition'].update(network='cross_entropy', percentile=ESTIMATE_PERCENTILE)
    return _finish(out_dir, config, settings, updater.step_name, step, tracker, seconds,
                   **extra)


def run_pencil(config, data, noisy, out_dir, extra_extensions=()):
    """PENCIL (Yi & Wu, CVPR 2019): its three stages with its own schedule; writes its
    corrected labels (``labels.npz``) and their accuracy per epoch like step 1."""
    from updaters.pencil import PencilLearningRate, pencil_lr_schedule
    done = _read_result(out_dir)
    if done is not None:
        return done
    settings, device, arrays, model, tracker = _setup(config, data, noisy, out_dir)
    step = settings['pencil']
    updater = pencil_updater(settings, arrays, model, device)
    labels_report = LabelAccuracyReport(updater.labels, arrays.noisy, arrays.clean,
                                        path=os.path.join(out_dir, 'label_accuracy.json'))
    schedule = PencilLearningRate(pencil_lr_schedule(step['stages'], step['lr'], step['lr3']))
    seconds = _train(updater, step['epochs'], out_dir, tracker, config,
                     [labels_report, schedule] + list(extra_extensions),
                     report_keys=['labels/accuracy'])
    updater.save(os.path.join(out_dir, 'labels.npz'), noisy=noisy, clean=data.train_y)
    accuracy, fixed, broken = labels_report.measure()
    return _finish(out_dir, config, settings, 'pencil', step, tracker, seconds,
                   labels={'noisy_accuracy': _noisy_accuracy(noisy, data.train_y),
                           'corrected_accuracy': accuracy, 'fixed': fixed, 'broken': broken})


def run(config, out_dir, methods=METHODS, extra_extensions=()):
    """Runs the configured methods in ``out_dir``; returns {method: result dict}.

    Step 1 runs once (when 'tanaka' or 'ours' is asked for) and both step-2 forks read its labels.
    Forward T with ``transition='estimate'`` runs the cross-entropy baseline first (asked for or
    not) and estimates its matrix from that network.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError('unknown method(s) {}: choose from {}'.format(
            ', '.join(map(repr, unknown)), ', '.join(METHODS)))
    check_run_dir(out_dir, config)
    data = load_data(config)
    return run_with_data(config, data, noisy_labels(config, data), out_dir, methods,
                         extra_extensions)


def run_with_data(config, data, noisy, out_dir, methods=METHODS, extra_extensions=()):
    """:func:`run` on given data and noisy labels (host arrays), without claiming ``out_dir``
    (the GPU check's parity runs train on a small data set of their own)."""
    results = {}
    ce_dir = os.path.join(out_dir, 'cross_entropy')
    estimate = 'forward_t' in methods and config.transition == 'estimate'
    if 'cross_entropy' in methods or estimate:   # the estimate needs the cross-entropy network
        results['cross_entropy'] = run_cross_entropy(config, data, noisy, ce_dir,
                                                     extra_extensions)
    if 'forward_t' in methods:
        results['forward_t'] = run_cross_entropy(
            config, data, noisy, os.path.join(out_dir, 'forward_t'), extra_extensions,
            forward=True, network_dir=ce_dir)
    if 'pencil' in methods:
        results['pencil'] = run_pencil(config, data, noisy, os.path.join(out_dir, 'pencil'),
                                       extra_extensions)
    if 'tanaka' in methods or 'ours' in methods:
        step1_dir = os.path.join(out_dir, 'step1')
        results['step1'] = run_step1(config, data, noisy, step1_dir, extra_extensions)
        targets = load_corrected_labels(step1_dir, config.step2_labels)
        init = os.path.join(step1_dir, MODEL) if config.step2_init == 'step1' else None
        for method, weight in (('tanaka', 0.0), ('ours', config.mixup_weight)):
            if method in methods:
                results[method] = run_step2(config, data, noisy, targets,
                                            os.path.join(out_dir, method), weight, init,
                                            extra_extensions)
    return results


# ----------------------------------------------------------------------------------------------
# Command line


def _parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--dataset', choices=DATASETS, default='digits')
    p.add_argument('--data-dir', default=None,
                   help='CIFAR-10 directory (default: download into Chainer\'s dataset root)')
    p.add_argument('--noise', choices=NOISE_KINDS, default=None,
                   help="default: 'real' for clothing1m, else 'symmetric'")
    p.add_argument('--rate', type=float, default=None, help='default: 0.5 (0 for clothing1m)')
    p.add_argument('--trial', type=int, default=0, help='default for every seed')
    for seed in ('noise', 'split', 'init', 'order', 'mixup'):
        p.add_argument('--{}-seed'.format(seed), type=int, default=None)
    p.add_argument('--methods', default=','.join(METHODS),
                   help='comma-separated subset of ' + ', '.join(METHODS))
    p.add_argument('--device', default='@numpy', help="Chainer device: '@numpy' or '@cupy:0'")
    p.add_argument('--epochs-scale', type=float, default=1.0)
    p.add_argument('--mixup-weight', type=float, default=1.0)
    p.add_argument('--transition', default=None,
                   help="Forward T's matrix: 'true' (the synthetic noise's), 'estimate' "
                        "(Patrini et al.'s, from this run's cross-entropy network) or a .npy "
                        "file; default: 'estimate' for clothing1m, else 'true'")
    p.add_argument('--set', action='append', default=[], metavar='PART.KEY=VALUE',
                   help='override one hyper-parameter of step1, step2 or pencil, e.g. '
                        'step1.lr=0.03 or pencil.stages=[5,10,10] (repeatable)')
    p.add_argument('--lc-on', choices=('clean', 'mixed'), default='clean')
    p.add_argument('--step1-labels', choices=('soft', 'hard'), default='soft')
    p.add_argument('--step2-labels', choices=('soft', 'hard'), default='soft')
    p.add_argument('--step2-init', choices=('fresh', 'step1'), default='fresh')
    p.add_argument('--eval-batch-size', type=int, default=None)
    p.add_argument('--weights', default=None,
                   help="Clothing1M: ImageNet ResNet-50 weights (.npz), or 'none'")
    p.add_argument('--iterations-per-epoch', type=int, default=None,
                   help='Clothing1M: train each epoch on a random subset of this many batches')
    p.add_argument('--loader-threads', type=int, default=8, help='Clothing1M: decoding threads')
    p.add_argument('--quiet', action='store_true', help='no progress bar or per-epoch table')
    p.add_argument('--tf32', action='store_true',
                   help='TF32 matrix products on the GPU (faster, not float32: off by default; '
                        'recorded in the provenance)')
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument('--out', help='the run directory')
    where.add_argument('--root', help='output root: the run directory below it is named from '
                       'the settings (<dataset>[-x<scale>]/<noise>-<rate>/trial<k>)')
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        config = RunConfig(
            dataset=args.dataset, data_dir=args.data_dir,
            noise=args.noise or ('real' if args.dataset == 'clothing1m' else 'symmetric'),
            rate=args.rate if args.rate is not None else (
                0.0 if args.dataset == 'clothing1m' else 0.5),
            trial=args.trial, noise_seed=args.noise_seed, split_seed=args.split_seed,
            init_seed=args.init_seed, order_seed=args.order_seed, mixup_seed=args.mixup_seed,
            device=args.device, epochs_scale=args.epochs_scale, mixup_weight=args.mixup_weight,
            transition=args.transition,
            lc_on=args.lc_on, step1_labels=args.step1_labels, step2_labels=args.step2_labels,
            step2_init=args.step2_init, eval_batch_size=args.eval_batch_size,
            weights=args.weights, iterations_per_epoch=args.iterations_per_epoch,
            loader_threads=args.loader_threads, progress=not args.quiet, tf32=args.tf32,
            **parse_settings(args.set))
        out = args.out or os.path.join(args.root, config.name())
        results = run(config, out, methods=[m for m in args.methods.split(',') if m])
    except (ValueError, FileNotFoundError, NonFiniteLossError) as error:
        # one line, what is wrong and what to do; finished parts and snapshots stay on disk
        sys.exit('error: {}'.format(error))
    for method, result in results.items():
        line = '{:>14}: best {:.4f}  last {:.4f}'.format(method, result['best_test'],
                                                          result['last_test'])
        if 'labels' in result:
            line += '  labels {noisy_accuracy:.4f} -> {corrected_accuracy:.4f}'.format(
                **result['labels'])
        print(line)


if __name__ == '__main__':
    main()

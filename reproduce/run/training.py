"""What every part of a run shares: data on the device, network, optimizer, updaters, the
trainer with its extensions (resuming from the last snapshot), and the part's ``result.json``."""
import dataclasses
import functools
import os
import sys
import time
import types

import chainer
import numpy
from chainer import optimizer_hooks, optimizers
from chainer import training as chainer_training
from chainer.training import extensions as chainer_extensions

from datasets import augment
from reproduce.run import precision, rundir
from reproduce.run.provenance import provenance
import atomic_files as atomic
from updaters.baselines import CrossEntropyUpdater
from updaters.extensions import AccuracyTracker, DeviceSplit, StopOnNonFinite
from updaters.feed import DeviceImageFeed, HostImageFeed, HostSplit, IndexIterator
from updaters.joint import JointOptimizationUpdater
from updaters.labels import LabelTable
from updaters.mixup import MixupUpdater
from updaters.pencil import PencilUpdater


# ----- data on the device -----
class DeviceData(object):
    """The data set's arrays on the training device, and the functions that feed them."""

    def __init__(self, data, labels_noisy, device, order_seed, iterations_per_epoch=None):
        self.device, self.n_classes = device, data.n_classes
        self.order_seed, self.iterations_per_epoch = order_seed, iterations_per_epoch
        self.train_x = device.send(data.train_x)
        self.clean = device.send(data.train_y)
        self.noisy = device.send(labels_noisy)
        self.mean = device.send(data.mean)
        self.splits = {'val': (device.send(data.val_x), device.send(data.val_y)),
                       'test': (device.send(data.test_x), device.send(data.test_y))}
        mean, pad, flip = self.mean, data.pad, data.flip
        self.feed = DeviceImageFeed(self.train_x, lambda x, rng: augment.random_crop_flip(
            x, mean, rng, pad=pad, flip=flip), seed=order_seed)
        self.preprocess = lambda x: augment.normalize(x, mean)

    def train_split(self):
        """The training images (no augmentation) and noisy labels as an evaluation source."""
        return DeviceSplit(self.train_x, self.noisy, self.preprocess)

    def iterator(self, batch_size):
        return IndexIterator(len(self.train_x), batch_size, seed=self.order_seed,
                             xp=self.device.xp, iterations_per_epoch=self.iterations_per_epoch)


class HostData(object):
    """:class:`DeviceData` for images too many for the device (Clothing1M): labels on the
    device, images decoded on the host for every batch (:class:`updaters.feed.HostImageFeed`)."""

    def __init__(self, data, labels_noisy, device, order_seed, iterations_per_epoch, threads):
        self.device, self.n_classes, self.n = device, data.n_classes, len(data.train)
        self.order_seed, self.iterations_per_epoch = order_seed, iterations_per_epoch
        self.clean = device.send(data.train_y)
        self.noisy = device.send(labels_noisy)
        self.feed = HostImageFeed(data.train, seed=order_seed, device=device, threads=threads)
        self.splits = {'val': HostSplit(data.val, device=device, threads=threads),
                       'test': HostSplit(data.test, device=device, threads=threads)}
        self.preprocess, self.threads = None, threads

    def train_split(self):
        """The training images (centre crop) and noisy labels as an evaluation source."""
        from datasets.clothing1m import Clothing1MDataset
        train = self.feed.dataset
        plain = Clothing1MDataset(train.root, train.paths, train.labels, train=False,
                                  source=train.source)
        return HostSplit(plain, device=self.device, threads=self.threads)

    def iterator(self, batch_size):
        # host indices: the feed loads a batch without waiting for the device's queued work
        return IndexIterator(self.n, batch_size, seed=self.order_seed, xp=numpy,
                             iterations_per_epoch=self.iterations_per_epoch)


def place(config, data, noisy, device):
    """The data on ``device`` as the data set's description says (device or host images)."""
    if config.spec.host_images:
        return HostData(data, noisy, device, config.order_seed, config.iterations_per_epoch,
                        config.loader_threads)
    return DeviceData(data, noisy, device, config.order_seed, config.iterations_per_epoch)


# ----- network, optimizer, updaters -----
def build_model(config, data, settings):
    """The network of ``settings['model']`` (``preact_resnet32``: the paper's CIFAR-10 network;
    ``preact_resnet``: digits; ``resnet50``: Clothing1M), initialised from ``config.init_seed``."""
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


def optimizer(model, step):
    """Chainer's momentum SGD with its weight-decay hook, as Tanaka et al.'s code builds it."""
    sgd = optimizers.MomentumSGD(lr=step['lr'], momentum=step['momentum']).setup(model)
    sgd.add_hook(optimizer_hooks.WeightDecay(step['weight_decay']))
    return sgd


def step1_updater(config, settings, arrays, model, device):
    """Step 1's updater on ``arrays``, with its label table as ``updater.label_table``."""
    step = settings['step1']
    table = LabelTable(arrays.noisy, arrays.n_classes, window=step['window'],
                       begin=step['begin'], device=device)
    return JointOptimizationUpdater(
        arrays.iterator(step['batch_size']), optimizer(model, step), arrays.feed, table,
        alpha=step['alpha'], beta=step['beta'], label_kind=config.step1_labels, device=device)


def step2_updater(config, settings, arrays, model, device, targets, mixup_weight):
    """Step 2's updater on fixed ``targets`` (host float32 (n, c)); ``mixup_weight`` 0: Tanaka's."""
    step = settings['step2']
    return MixupUpdater(
        arrays.iterator(step['batch_size']), optimizer(model, step), arrays.feed,
        device.send(targets), mixup_alpha=step['mixup_alpha'], mixup_weight=mixup_weight,
        lc_on=config.lc_on, seed=config.mixup_seed, device=device)


def cross_entropy_updater(settings, arrays, model, device, transition=None):
    """Cross entropy with step 2's settings; with ``transition`` (host (c, c)), Forward T's."""
    step = settings['step2']
    return CrossEntropyUpdater(
        arrays.iterator(step['batch_size']), optimizer(model, step), arrays.feed, arrays.noisy,
        transition=None if transition is None else device.send(transition), device=device)


def pencil_updater(settings, arrays, model, device):
    """PENCIL's updater with its settings (``settings['pencil']``)."""
    step = settings['pencil']
    return PencilUpdater(
        arrays.iterator(step['batch_size']), optimizer(model, step), arrays.feed, arrays.noisy,
        arrays.n_classes, step['stages'], alpha=step['alpha'], beta=step['beta'],
        label_lr=step['label_lr'], k=step['k'], losses=step['losses'], device=device)


# ----- a part: set up, train (resuming), finish -----
@dataclasses.dataclass
class Part:
    """What every part builds first: its directory, settings, device, data, model, tracker."""

    out_dir: str
    config: object
    settings: dict
    device: object
    arrays: object
    model: object
    tracker: object
    title: str = None       # how messages name the part ('step1 (for tanaka and ours)')


def setup(config, data, noisy, out_dir, init_weights=None):
    """A :class:`Part` in ``out_dir`` (the network from ``init_weights`` when given)."""
    precision.use_tf32(config.tf32)
    settings = config.settings()
    device = chainer.get_device(config.device)
    device.use()
    arrays = place(config, data, noisy, device)
    model = build_model(config, data, settings)
    if init_weights:
        chainer.serializers.load_npz(init_weights, model)
    model.to_device(device)
    tracker = AccuracyTracker(arrays.splits, arrays.preprocess,
                              batch_size=config.evaluation_batch_size(),
                              path=os.path.join(out_dir, rundir.ACCURACY))
    return Part(out_dir, config, settings, device, arrays, model, tracker)


class RunStamp(chainer_training.Extension):
    """Keeps the run's and part's fingerprint (:func:`rundir.stamp`) in the snapshot; loading
    another run's or part's raises :class:`rundir.DamagedFile` (one without a stamp loads)."""

    trigger = (1, 'epoch')
    name = 'run_stamp'

    def __init__(self, stamp):
        self.stamp = stamp

    def __call__(self, trainer):
        pass

    def serialize(self, serializer):
        if not isinstance(serializer, chainer.serializer.Deserializer):
            serializer('stamp', self.stamp)
            return
        try:
            found = serializer('stamp', '')
        except KeyError:
            return
        if found != self.stamp:
            raise rundir.DamagedFile('of another run or part')


def stamp_of(part):
    return rundir.stamp(part.config.identity(), os.path.basename(os.path.normpath(part.out_dir)))


#: The snapshot's writer: Chainer's default compression costs seconds per epoch for float
#: parameters and label buffers that hardly compress.
_save_uncompressed = functools.partial(chainer.serializers.save_npz, compression=False)


def train(part, updater, epochs, extra_extensions=(), milestones=None, lr_decay=0.1,
          report_keys=()):
    """Runs ``updater`` for ``epochs`` in the part's directory, resuming from its snapshot if
    there is one; returns the seconds it trained."""
    out_dir, config = part.out_dir, part.config
    trainer = chainer_training.Trainer(updater, (epochs, 'epoch'), out=out_dir)
    trainer.extend(StopOnNonFinite())
    trainer.extend(RunStamp(stamp_of(part)))
    trainer.extend(part.tracker)
    if milestones:
        trainer.extend(chainer_extensions.ExponentialShift('lr', lr_decay),
                       trigger=chainer_training.triggers.ManualScheduleTrigger(
                           list(milestones), 'epoch'))
    trainer.extend(chainer_extensions.observe_lr(), trigger=(1, 'epoch'))
    trainer.extend(chainer_extensions.LogReport(trigger=(1, 'epoch'), filename=rundir.LOG))
    for extension in extra_extensions:
        trainer.extend(extension)
    trainer.extend(chainer_extensions.snapshot(savefun=_save_uncompressed,
                                               filename=rundir.SNAPSHOT), trigger=(1, 'epoch'))
    if config.progress:
        keys = ['epoch', 'main/loss', 'val/accuracy', 'test/accuracy'] + list(report_keys)
        tty = sys.stdout.isatty()       # escape codes only where a terminal reads them
        out = sys.stdout if tty else types.SimpleNamespace(
            write=lambda text: sys.stdout.write(text.replace('\033[J', '')), flush=sys.stdout.flush)
        trainer.extend(chainer_extensions.PrintReport(keys + ['lr', 'elapsed_time'], out=out))
        if tty:
            trainer.extend(chainer_extensions.ProgressBar(update_interval=10))
    snapshot = os.path.join(out_dir, rundir.SNAPSHOT)
    if os.path.exists(snapshot):
        # before trainer.run: ExponentialShift.initialize would otherwise set the lr first
        try:
            chainer.serializers.load_npz(snapshot, trainer)
        except Exception as error:    # damaged, or another run's or part's state: all restart
            reason = str(error).splitlines()[0][:100] if str(error) else type(error).__name__
            raise rundir.RestartPart(
                'note: {} cannot be loaded ({}): moved aside to {}; the part starts again from '
                'its first epoch'.format(snapshot, reason,
                                         os.path.basename(rundir.move_aside(snapshot))))
        if config.progress:
            print('{}: resuming after epoch {} of {} ({})'.format(
                part.title or os.path.basename(out_dir), updater.epoch, epochs, snapshot))
    started = time.time()
    trainer.run(show_loop_exception_msg=False)
    return time.time() - started


def finish(part, step_name, step, seconds, **extra):
    """Writes the part's ``result.json`` (last, atomically: the part is then finished)."""
    curves = part.tracker.summary()
    result = {
        'part': step_name,
        'config': dataclasses.asdict(part.config),
        'settings': {'model': part.settings['model']},
        'step': step,
        'epochs': step['epochs'],
        'accuracy': curves,
        'best_test': curves['best']['test'],
        'last_test': curves['last']['test'],
        'final_loss': rundir.final_loss(part.out_dir),
        'train_seconds': seconds,
        'provenance': provenance(part.config.device),
        'stamp': stamp_of(part),
    }
    result.update(extra)
    atomic.write_json(os.path.join(part.out_dir, rundir.RESULT), result)
    return result

"""The parts of the benchmark: CIFAR-10-shaped data, the device's clock and memory, one training
part built as the runs build it, and the timings of training, evaluation and throughput
(:mod:`reproduce.benchmark` puts them together and reports them)."""
import dataclasses
import gc
import math
import os
import statistics
import time
import types

import chainer
import numpy

from datasets import cifar10
from datasets.image_data import ImageData, mean_image
from datasets.synthetic import SIZES, load_synthetic
from reproduce import data as data_sets, hparams, opcount, precision, training
from reproduce.config import BATCH_NORMS, RunConfig
from updaters.extensions import AccuracyTracker

#: --model choices: 'resnet32' is the paper's network (RunConfig's CIFAR-10 model); 'tiny' the
#: small PreAct ResNet of the digits settings, for tests.
MODELS = {'resnet32': None, 'tiny': dict(hparams.DIGITS_MODEL, arch='preact_resnet')}
#: The timed training parts, in the order they run, with what each one is.
TRAINING_PARTS = (
    ('step1', 'step 1 (joint optimisation, label-table store)'),
    ('step2', 'step 2, ours (Lc + Lmix, mixed + clean batch)'),
    ('cross_entropy', 'cross-entropy baseline'),
    ('pencil', 'PENCIL, stage 2 (label-logit step)'),
)
EVALUATION = 'evaluation'
PARTS = tuple(name for name, _ in TRAINING_PARTS) + (EVALUATION,)
#: CIFAR-10's split sizes.
CIFAR10_SIZES = SIZES
#: The noise setting whose Table-1 hyper-parameters the updaters get (speed does not depend on
#: it: the rate only changes alpha, beta, the learning rate and the mix-up a).
NOISE, RATE = 'symmetric', 0.5
RANDOM_SEED = 0
MIB = float(1 << 20)


# ----------------------------------------------------------------------------------------------
# Data


def random_image_data(n_train, n_val, n_test):
    """CIFAR-10-shaped random data (:func:`datasets.synthetic.load_synthetic`, seed
    :data:`RANDOM_SEED`), named ``'random'`` here."""
    data = load_synthetic(RANDOM_SEED, n_train, n_val, n_test)
    return dataclasses.replace(data, name='random')


def cifar10_in_dataset_root():
    """The ``cifar-10-batches-py`` folder in Chainer's dataset root if every file is there."""
    root = chainer.dataset.get_dataset_directory('cifar10', create_directory=False)
    folder = os.path.join(root, cifar10.FOLDER)
    if all(os.path.isfile(os.path.join(folder, name)) for name in cifar10.FILES):
        return folder
    return None


def subset(data, n_train, n_val, n_test):
    """The first ``n_*`` images of each split of ``data`` (the mean image recomputed when the
    training split is cut); a ValueError when a split has fewer."""
    sizes = {'train': n_train, 'val': n_val, 'test': n_test}
    for split, n in sizes.items():
        have = len(getattr(data, split + '_x'))
        if n > have:
            raise ValueError('--n-{} {} is more than the {} {} images CIFAR-10 has'.format(
                split, n, have, split))
    if all(len(getattr(data, s + '_x')) == n for s, n in sizes.items()):
        return data
    arrays = {}
    for split, n in sizes.items():
        arrays[split + '_x'] = numpy.ascontiguousarray(getattr(data, split + '_x')[:n])
        arrays[split + '_y'] = numpy.ascontiguousarray(getattr(data, split + '_y')[:n])
    return ImageData(name=data.name, mean=mean_image(arrays['train_x']),
                     n_classes=data.n_classes, class_names=data.class_names, pad=data.pad,
                     flip=data.flip, **arrays)


def load_data(args):
    """``(ImageData, source)``: the real CIFAR-10 (cut to the asked sizes) when ``--data-dir``
    is given, when it is already in Chainer's dataset root, or with ``--download``; random images
    otherwise (and always with ``--random-data``). ``source`` is a dict with ``kind`` ('cifar10'
    or 'random') and a readable ``description``."""
    folder = None
    if not args.random_data:
        if args.data_dir:
            folder = args.data_dir
            found = 'from --data-dir'
        else:
            folder = cifar10_in_dataset_root()
            found = "found in Chainer's dataset root"
            if folder is None and args.download:
                folder = cifar10.download()
                found = "downloaded into Chainer's dataset root"
    if folder is not None:
        data = subset(cifar10.load_cifar10(folder), args.n_train, args.n_val, args.n_test)
        return data, {'kind': 'cifar10',
                      'description': 'the official CIFAR-10 batches, {}'.format(found)}
    data = random_image_data(args.n_train, args.n_val, args.n_test)
    why = ('--random-data' if args.random_data else
           "CIFAR-10 is not in Chainer's dataset root; give --data-dir or --download for it")
    return data, {'kind': 'random',
                  'description': 'uint8 images drawn with seed {} ({})'.format(RANDOM_SEED, why)}


# ----------------------------------------------------------------------------------------------
# Device: synchronisation and memory


def is_gpu(device):
    return device.xp is not numpy


def synchronize(device):
    """Wait until the device has finished everything queued (nothing to wait for on numpy)."""
    if is_gpu(device):
        device.xp.cuda.Device(device.device.id).synchronize()


class PeakMemory(object):
    """High-water marks of device memory on a GPU: the bytes CuPy's default memory pool holds
    (``total_bytes()``; the pool keeps what it once allocated, so sampling after the work is
    enough) and the device memory in use (``cudaMemGetInfo``: total - free, which counts the CUDA
    context and other processes too). On the CPU there is nothing to record (None)."""

    def __init__(self, device):
        self.device = device
        self.gpu = is_gpu(device)
        self.pool_bytes = 0
        self.used_bytes = 0

    def reset(self):
        """Start a new part: return unused pool blocks to the device and zero the marks."""
        self.pool_bytes = 0
        self.used_bytes = 0
        if self.gpu:
            gc.collect()
            synchronize(self.device)
            self.device.xp.get_default_memory_pool().free_all_blocks()

    def sample(self):
        if self.gpu:
            xp = self.device.xp
            self.pool_bytes = max(self.pool_bytes, int(xp.get_default_memory_pool().total_bytes()))
            free, total = xp.cuda.runtime.memGetInfo()
            self.used_bytes = max(self.used_bytes, int(total - free))

    def record(self):
        if not self.gpu:
            return None
        return {'pool_peak_bytes': self.pool_bytes, 'device_used_peak_bytes': self.used_bytes}


# ----------------------------------------------------------------------------------------------
# The parts, built as reproduce/experiment.py builds them


def run_config(args):
    """The :class:`~reproduce.config.RunConfig` whose settings the benchmark trains with."""
    batch = {'batch_size': args.batch_size}
    return RunConfig(
        dataset='cifar10', noise=NOISE, rate=RATE, device=args.device, data_dir=args.data_dir,
        overrides={'step1': dict(batch), 'step2': dict(batch), 'pencil': dict(batch)},
        eval_batch_size=args.eval_batch_size, tf32=args.tf32, batch_norm=args.batch_norm,
        progress=False)


def run_settings(config, model):
    settings = config.settings()
    if MODELS[model] is not None:
        settings['model'] = dict(MODELS[model])
    return settings


class TimedPart(object):
    """One part's device data, model, updater and tracker (as :func:`reproduce.training.setup`
    builds them)."""

    def __init__(self, name, config, settings, data, noisy, device):
        precision.use_tf32(config.tf32)    # as setup() does: --tf32 on, else float32 products
        self.name = name
        self.arrays = training.DeviceData(data, noisy, device, config.order_seed)
        model = training.build_model(config, data, settings)
        model.to_device(device)
        self.model = model
        self.label_table = None
        arrays = self.arrays
        if name == 'step1':
            step = settings['step1']
            self.updater = training.step1_updater(config, settings, arrays, model, device)
            self.label_table = self.updater.label_table
        elif name == 'step2':
            step = settings['step2']
            # Step 2 trains on step 1's labels; their values do not change the work: one-hot
            # rows of the noisy labels stand in for them (host float32 (n, c), as run_step2's).
            targets = numpy.eye(data.n_classes, dtype=numpy.float32)[noisy]
            self.updater = training.step2_updater(config, settings, arrays, model, device,
                                                    targets, config.mixup_weight)
        elif name == 'cross_entropy':
            step = settings['step2']
            self.updater = training.cross_entropy_updater(settings, arrays, model, device)
        elif name == 'pencil':
            # stage 2, the costliest: the network's step and the label logits' step
            step = dict(settings['pencil'])
            stages = step['stages']
            settings = dict(settings, pencil=dict(step, stages=(0,) + tuple(stages[1:])))
            self.updater = training.pencil_updater(settings, arrays, model, device)
        else:
            raise ValueError('unknown part {!r}'.format(name))
        self.step = step
        self.tracker = AccuracyTracker(arrays.splits, arrays.preprocess,
                                       batch_size=config.evaluation_batch_size())
        # What Trainer and LogReport do around every update (Trainer.__init__, Trainer.run).
        self.reporter = chainer.Reporter()
        self.reporter.add_observer('main', model)
        self.reporter.add_observers('main', model.namedlinks(skipself=True))
        self.summary = chainer.reporter.DictSummary()

    @property
    def iterator(self):
        return self.updater.get_iterator('main')

    def iterate(self, n, report=True):
        """``n`` training iterations, each as the trainer runs it (or bare)."""
        update = self.updater.update
        for _ in range(n):
            if report:
                observation = {}
                with self.reporter.scope(observation):
                    update()
                self.summary.add(observation)
            else:
                update()

    def evaluate(self):
        """One per-epoch evaluation: the tracker on the validation and test splits."""
        self.tracker(types.SimpleNamespace(updater=self.updater))


def _timed(device, work):
    """Seconds that ``work()`` takes, the device synchronised before each clock read."""
    synchronize(device)
    started = time.perf_counter()
    work()
    synchronize(device)
    return time.perf_counter() - started


def _median_or_zero(values):
    return statistics.median(values) if values else 0.0


def _single_iterations(part, device, n, report):
    """``n`` single iterations, each timed twice from a synchronised start: until the host
    returns (the Python work; on a GPU the kernels are queued asynchronously) and until the
    device is done. Returns the two lists of seconds."""
    host, total = [], []
    for _ in range(n):
        synchronize(device)
        started = time.perf_counter()
        part.iterate(1, report)
        returned = time.perf_counter()
        synchronize(device)
        host.append(returned - started)
        total.append(time.perf_counter() - started)
    return host, total


def measure_training(part, args, device, memory, n_train):
    """Times one training part; returns its record (see the module docstring)."""
    iterator = part.iterator
    per_epoch = iterator.iterations_per_epoch    # ceil(n_train / batch_size)
    report = not args.no_report
    first = _timed(device, lambda: part.iterate(1, report))    # kernels compiled here
    if args.warmup > 1:
        _timed(device, lambda: part.iterate(args.warmup - 1, report))
    operations = opcount.count_iteration(lambda: part.iterate(1, report),
                                         part.updater.get_optimizer('main'))
    host, single = _single_iterations(part, device, args.iterations, report)
    memory.sample()
    epoch_before = iterator.epoch
    raw = []
    for _ in range(args.repeats):
        raw.append(_timed(device, lambda: part.iterate(args.iterations, report)))
        memory.sample()
    boundaries = iterator.epoch - epoch_before
    end_raw = []
    if part.label_table is not None:
        # The table's end-of-epoch update (JointOptimizationUpdater calls it after an epoch's
        # last iteration), timed on its own on the same table, at epochs past ``begin`` so that
        # Y is updated (the case of most of step 1's epochs); training is over for this table.
        table = part.label_table
        epoch = max(table.epoch, table.begin)
        if args.warmup:
            epoch += 1
            _timed(device, lambda: table.end_epoch(epoch))
        for _ in range(args.repeats):
            epoch += 1
            end_raw.append(_timed(device, lambda: table.end_epoch(epoch)))
        memory.sample()
    per_iteration = statistics.median(raw) / args.iterations
    end_seconds = _median_or_zero(end_raw)
    per_epoch_seconds = per_iteration * per_epoch + end_seconds
    return {
        'updater': type(part.updater).__name__,
        'first_iteration_seconds': first,
        'host_seconds_per_iteration': statistics.median(host),
        'synchronized_seconds_per_iteration': statistics.median(single),
        'operations': operations,
        'batch_size': args.batch_size,
        'iterations_per_epoch': per_epoch,
        'iterations_per_repeat': args.iterations,
        'raw_seconds': raw,
        'seconds_per_iteration': per_iteration,
        'epoch_end_raw_seconds': end_raw,
        'epoch_end_seconds': end_seconds,
        'seconds_per_epoch': per_epoch_seconds,
        'images_per_second': n_train / per_epoch_seconds,
        'epoch_scaled_from_iterations': True,
        'epoch_ends_in_timed_iterations': boundaries,
        'schedule_epochs': part.step['epochs'],
        'peak_memory': memory.record(),
    }


#: Data and batch of the CPU iteration whose device work :func:`count_device_work` counts (the
#: counts do not depend on the batch size; the counted iteration is no epoch's last).
COUNT_SIZES = {'n_train': 32, 'n_val': 8, 'n_test': 8, 'batch_size': 8}


def count_device_work(name, config, settings, data, noisy):
    """The device work of one iteration of part ``name``, for each batch-normalisation variant
    (``{variant: counts}``, :func:`reproduce.opcount.count_array_operations` plus the function
    applications): counted on the CPU with :data:`COUNT_SIZES`, whatever the benchmark's device
    (the counts depend on the code, not on the device or the batch)."""
    sizes = COUNT_SIZES
    small = subset(data, sizes['n_train'], sizes['n_val'], sizes['n_test'])
    batch = {'batch_size': sizes['batch_size']}
    cpu = chainer.get_device('@numpy')
    counts = {}
    for variant in BATCH_NORMS:
        varied = dataclasses.replace(config, device='@numpy', batch_norm=variant)
        part = TimedPart(name, varied, dict(settings, **{
            key: dict(settings[key], **batch) for key in ('step1', 'step2', 'pencil')}),
            small, noisy[:sizes['n_train']], cpu)
        part.iterate(1)                                 # lazy set-up happens here
        nodes = opcount.count_iteration(lambda: part.iterate(1),
                                        part.updater.get_optimizer('main'))
        work = opcount.count_array_operations(lambda: part.iterate(1), part.updater)
        work['function_applications'] = nodes['function_applications']
        counts[variant] = work
    return counts


def measure_evaluation(part, args, device, memory, n_images, batch_size):
    """Times the per-epoch evaluation (both splits, test mode, no back-prop) with ``part``'s
    model; one repeat is one whole pass."""
    if args.warmup:
        _timed(device, part.evaluate)
    memory.sample()
    raw = []
    for _ in range(args.repeats):
        raw.append(_timed(device, part.evaluate))
        memory.sample()
    seconds = statistics.median(raw)
    sizes = [len(images) for images, _ in part.arrays.splits.values()]
    return {
        'splits': sorted(part.arrays.splits),
        'batch_size': batch_size,
        'images': n_images,
        'batches_per_epoch': sum(int(math.ceil(n / float(batch_size))) for n in sizes),
        'raw_seconds': raw,
        'seconds_per_epoch': seconds,
        'images_per_second': n_images / seconds,
        'epoch_scaled_from_iterations': False,
        'peak_memory': memory.record(),
    }


def benchmark_device(args):
    """The benchmark's Chainer device (``auto``: the first GPU CuPy sees, else the CPU)."""
    from reproduce.experiment import check_device, resolve_device
    check_device(args.device)              # one line (ValueError) for a device Chainer refuses
    args.device = resolve_device(args.device)
    device = chainer.get_device(args.device)
    if device.xp is not numpy and getattr(device.xp, '__name__', '') != 'cupy':
        raise ValueError("device {} is neither NumPy nor CuPy: use '@numpy' or "
                         "'@cupy:<id>'".format(device))
    device.use()
    return device


def _start_time(args):
    """The common start time: ``--start-at``, or the time written into ``--start-file`` once
    every process is ready (this one says so by creating ``<start-file>.<pid>.ready``)."""
    if not args.start_file:
        return args.start_at or time.time()
    with open('{}.{}.ready'.format(args.start_file, os.getpid()), 'w'):
        pass
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            with open(args.start_file) as f:
                return float(f.read())
        except (OSError, ValueError):     # not written yet, or being written
            time.sleep(0.05)
    raise ValueError('no start time in {} after 10 minutes'.format(args.start_file))


def run_throughput(args):
    """One process's share of a concurrency measurement: builds the ``--throughput`` part,
    warms up, waits for the common start time (so that every process of the measurement trains
    at once), trains for ``--duration`` seconds and returns the images it trained per second,
    with its peak memory."""
    device = benchmark_device(args)
    data, source = load_data(args)
    config = run_config(args)
    settings = run_settings(config, args.model)
    memory = PeakMemory(device)
    part = TimedPart(args.throughput, config, settings, data,
                 data_sets.noisy_labels(config, data), device)
    _timed(device, lambda: part.iterate(max(1, args.warmup), not args.no_report))
    memory.sample()
    start_at = _start_time(args)
    wait = start_at - time.time()
    if wait > 0:
        time.sleep(wait)
    synchronize(device)
    started = time.time()
    iterations = 0
    while time.time() - started < args.duration:
        part.iterate(1, not args.no_report)
        iterations += 1
    synchronize(device)
    seconds = time.time() - started
    memory.sample()
    return {'part': args.throughput, 'pid': os.getpid(), 'started': started,
            'late_by_seconds': max(0.0, started - start_at),
            'iterations': iterations, 'images': iterations * args.batch_size,
            'seconds': seconds, 'images_per_second': iterations * args.batch_size / seconds,
            'peak_memory': memory.record(), 'data': source['kind'],
            'device': {'spec': str(device), 'gpu': is_gpu(device)}}

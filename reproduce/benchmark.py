"""How fast the training pipeline runs: PreAct ResNet-32 on CIFAR-10-shaped data.

    python reproduce/benchmark.py                          # on the CPU
    python reproduce/benchmark.py --device @cupy:0 --json results/benchmark-gpu.json
    python -m reproduce.benchmark --model tiny --n-train 512 --n-val 128 --n-test 128 \\
        --batch-size 64 --iterations 3 --repeats 3 --warmup 1    # a smoke test

Measures, with the parts the runs are made of (:mod:`reproduce.experiment`'s settings, model,
device data and optimizer; the step updaters; the label table; the accuracy tracker):

* step 1: ``JointOptimizationUpdater`` iterations, each storing its softmax outputs in the label
  table, plus the table's end-of-epoch update (timed on its own, added once per epoch);
* step 2 of the method ("ours"): ``MixupUpdater`` with Lmix weight 1 (two forward passes);
* the cross-entropy baseline: ``CrossEntropyUpdater``;
* the per-epoch evaluation: validation and test splits with the evaluation batch size (1000).

Every training iteration runs as the trainer runs it: ``updater.update()`` inside a reporter scope
that observes the model, its observation added to a summary as ``LogReport`` adds it
(``--no-report`` leaves both out). Timing: ``--warmup`` iterations first, then ``--repeats`` timed
repeats of ``--iterations`` iterations each, the device synchronised before every clock read; the
median repeat gives the seconds per iteration, and an epoch is *scaled* from it to
``ceil(n_train / batch_size)`` iterations (no full epoch is run). An evaluation repeat is one
whole pass over both splits. On a GPU the peak of CuPy's memory pool and the device memory in use
(``cudaMemGetInfo``, all processes and the CUDA context included) are recorded per part.

The data are the real CIFAR-10 (45k / 5k / 10k, :mod:`datasets.cifar10`) when ``--data-dir`` is
given or the data set is already in Chainer's dataset root (``--download`` fetches it), and random
uint8 images of the same shape otherwise; the report says which. Nothing here asserts a speed: it
prints the figures, and ``--json`` writes them (atomically) with the provenance of the machine.
"""
import argparse
import dataclasses
import gc
import math
import os
import statistics
import sys
import time
import types

if __package__ in (None, ''):  # run as a file: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import chainer_compat  # noqa: F401,E402  (before chainer)
import chainer  # noqa: E402
import numpy  # noqa: E402

from datasets import cifar10  # noqa: E402
from datasets.synthetic import load_synthetic  # noqa: E402
from datasets.image_data import ImageData, mean_image  # noqa: E402
from reproduce import experiment, hparams, opcount  # noqa: E402
from reproduce.provenance import provenance  # noqa: E402
from updaters import atomic  # noqa: E402
from updaters.extensions import AccuracyTracker  # noqa: E402

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
#: CIFAR-10's split sizes and image shape.
CIFAR10_SIZES = {'train': 45000, 'val': 5000, 'test': 10000}
IMAGE_SHAPE = cifar10.IMAGE_SHAPE
N_CLASSES = 10
#: The noise setting whose Table-1 hyper-parameters the updaters get (speed does not depend on
#: it: the rate only changes alpha, beta, the learning rate and the mix-up a).
NOISE, RATE = 'symmetric', 0.5
RANDOM_SEED = 0
MIB = float(1 << 20)


# ----------------------------------------------------------------------------------------------
# Data


def random_image_data(n_train, n_val, n_test, n_classes=N_CLASSES, shape=IMAGE_SHAPE,
                      seed=RANDOM_SEED):
    """CIFAR-10-shaped random data (:func:`datasets.synthetic.load_synthetic`), named
    ``'random'`` here."""
    data = load_synthetic(seed, n_train, n_val, n_test, n_classes, shape)
    return dataclasses.replace(data, name='random')


def _cifar10_in_dataset_root():
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
            folder = _cifar10_in_dataset_root()
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
    """The :class:`~reproduce.experiment.RunConfig` whose settings the benchmark trains with."""
    batch = {'batch_size': args.batch_size}
    return experiment.RunConfig(
        dataset='cifar10', noise=NOISE, rate=RATE, device=args.device, data_dir=args.data_dir,
        step1=dict(batch), step2=dict(batch), pencil=dict(batch),
        eval_batch_size=args.eval_batch_size,
        progress=False)


def run_settings(config, model):
    settings = config.settings()
    if MODELS[model] is not None:
        settings['model'] = dict(MODELS[model])
    return settings


class _Part(object):
    """One part's device data, model, updater and tracker (see ``experiment._setup``)."""

    def __init__(self, name, config, settings, data, noisy, device):
        self.name = name
        self.arrays = experiment.DeviceData(data, noisy, device, config.order_seed)
        model = experiment.build_model(config, data, settings)
        model.to_device(device)
        self.model = model
        self.label_table = None
        arrays = self.arrays
        if name == 'step1':
            step = settings['step1']
            self.updater = experiment.step1_updater(config, settings, arrays, model, device)
            self.label_table = self.updater.label_table
        elif name == 'step2':
            step = settings['step2']
            # Step 2 trains on step 1's labels; their values do not change the work: one-hot
            # rows of the noisy labels stand in for them (host float32 (n, c), as run_step2's).
            targets = numpy.eye(data.n_classes, dtype=numpy.float32)[noisy]
            self.updater = experiment.step2_updater(config, settings, arrays, model, device,
                                                    targets, config.mixup_weight)
        elif name == 'cross_entropy':
            step = settings['step2']
            self.updater = experiment.cross_entropy_updater(settings, arrays, model, device)
        elif name == 'pencil':
            # stage 2, the costliest: the network's step and the label logits' step
            step = dict(settings['pencil'])
            stages = step['stages']
            settings = dict(settings, pencil=dict(step, stages=(0,) + tuple(stages[1:])))
            self.updater = experiment.pencil_updater(settings, arrays, model, device)
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


# ----------------------------------------------------------------------------------------------
# The benchmark


def environment(device):
    """cuDNN and TF32 state, as Chainer and CuPy see them."""
    return {
        'cudnn_available': bool(chainer.backends.cuda.cudnn_enabled) if is_gpu(device) else False,
        'use_cudnn': chainer.config.use_cudnn,
        'cudnn_deterministic': bool(chainer.config.cudnn_deterministic),
        'autotune': bool(chainer.config.autotune),
        'CUPY_TF32': os.environ.get('CUPY_TF32'),
        'NVIDIA_TF32_OVERRIDE': os.environ.get('NVIDIA_TF32_OVERRIDE'),
        'tf32': is_gpu(device) and os.environ.get('CUPY_TF32', '0') == '1',
    }


def _device(args):
    try:
        device = chainer.get_device(args.device)
    except (RuntimeError, ValueError) as error:
        raise ValueError('cannot use device {!r}: {}'.format(args.device, error))
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
    device = _device(args)
    data, source = load_data(args)
    config = run_config(args)
    settings = run_settings(config, args.model)
    memory = PeakMemory(device)
    part = _Part(args.throughput, config, settings, data,
                 experiment.noisy_labels(config, data), device)
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


def run_benchmark(args):
    """Runs every part; returns the result (JSON-ready dict)."""
    device = _device(args)
    data, source = load_data(args)
    config = run_config(args)
    settings = run_settings(config, args.model)
    noisy = experiment.noisy_labels(config, data)
    memory = PeakMemory(device)
    n_train = len(data.train_x)
    eval_batch = config.evaluation_batch_size()
    parts, n_parameters = {}, None
    for name, _ in TRAINING_PARTS:
        memory.reset()
        part = _Part(name, config, settings, data, noisy, device)
        n_parameters = sum(int(p.size) for p in part.model.params())
        parts[name] = measure_training(part, args, device, memory, n_train)
        if name == 'step2':   # evaluate the method's own network, its training state alive
            memory.reset()
            parts[EVALUATION] = measure_evaluation(
                part, args, device, memory, len(data.val_x) + len(data.test_x), eval_batch)
            parts[EVALUATION]['accuracy'] = part.tracker.summary()['last']
        del part
    memory.reset()
    evaluation = parts[EVALUATION]['seconds_per_epoch']
    schedule = {name: parts[name]['schedule_epochs'] * (parts[name]['seconds_per_epoch']
                                                         + evaluation)
                for name, _ in TRAINING_PARTS}
    peaks = [p['peak_memory'] for p in parts.values() if p['peak_memory']]
    return {
        'benchmark': 'training pipeline speed, PreAct ResNet on CIFAR-10-shaped data',
        'options': dict(vars(args)),
        'data': dict(source, n_train=n_train, n_val=len(data.val_x), n_test=len(data.test_x),
                     image_shape=list(data.image_shape), n_classes=data.n_classes),
        'model': {'name': args.model, 'settings': settings['model'],
                  'parameters': n_parameters},
        'settings': {'step1': settings['step1'], 'step2': settings['step2'],
                     'noise': NOISE, 'rate': RATE, 'mixup_weight': config.mixup_weight,
                     'lc_on': config.lc_on, 'eval_batch_size': eval_batch},
        'device': {'spec': str(device), 'gpu': is_gpu(device)},
        'environment': environment(device),
        'provenance': provenance(device),
        'timing': {
            'warmup_iterations': args.warmup, 'iterations_per_repeat': args.iterations,
            'repeats': args.repeats, 'statistic': 'median over repeats',
            'synchronize': ('cupy.cuda.Device.synchronize() before every clock read'
                            if is_gpu(device) else 'none needed (NumPy runs synchronously)'),
            'trainer_reporting': not args.no_report,
            'schedule_seconds_estimate': 'schedule epochs x (training epoch + evaluation); '
                                         'per-epoch snapshots and logs not included',
            'images_per_second': 'training: n_train / seconds per epoch; evaluation: val + '
                                 'test images / seconds per pass',
            'epochs': 'scaled from the timed iterations: seconds per iteration x iterations per '
                      'epoch (+ step 1\'s end-of-epoch label update, timed separately); '
                      'evaluation: one whole pass per repeat',
        },
        'parts': parts,
        'schedule_seconds_estimate': schedule,
        'peak_memory': None if not peaks else {
            key: max(p[key] for p in peaks)
            for key in ('pool_peak_bytes', 'device_used_peak_bytes')},
    }


# ----------------------------------------------------------------------------------------------
# Report


def _duration(seconds):
    if seconds >= 3600:
        return '{:.1f} h'.format(seconds / 3600)
    if seconds >= 60:
        return '{:.1f} min'.format(seconds / 60)
    return '{:.1f} s'.format(seconds)


def format_operations(result):
    """The host-side work of one iteration per part, as table lines."""
    lines = ['{:<50} {:>22} {:>14} {:>18}'.format(
        'work of one iteration', 'function applications', 'of them in bwd', 'update operations')]
    for name, label in TRAINING_PARTS:
        ops = result['parts'][name]['operations']
        lines.append('{:<50} {:>22} {:>14} {:>18}'.format(
            label, ops['function_applications'], ops['backward_calls'],
            ops['update_operations']))
    return lines


def format_report(result):
    """The result as a readable table (str)."""
    prov, env, data, timing = (result['provenance'], result['environment'], result['data'],
                               result['timing'])
    versions = ', '.join('{} {}'.format(k, 'none' if v is None else v)
                         for k, v in sorted(prov['versions'].items()) if k != 'cudnn')
    cudnn = 'available' if env['cudnn_available'] else 'not available'
    tf32 = 'CUPY_TF32={}'.format(env['CUPY_TF32']) if env['CUPY_TF32'] is not None else \
        'CUPY_TF32 unset'
    lines = [
        'Training-pipeline benchmark: PreAct ResNet ({}, {:,} parameters)'.format(
            result['model']['name'], result['model']['parameters']),
        'data      : {}, {}: {} train / {} val / {} test images of {}, {} classes'.format(
            data['kind'], data['description'], data['n_train'], data['n_val'], data['n_test'],
            'x'.join(map(str, data['image_shape'])), data['n_classes']),
        'device    : {} [{}]'.format(prov['device'], result['device']['spec']),
        'versions  : {}'.format(versions),
        'cuDNN     : {}; chainer.config.use_cudnn = {!r}'.format(cudnn, env['use_cudnn']),
        'TF32      : {} ({})'.format('on' if env['tf32'] else 'off', tf32),
        'commit    : {}   date {}'.format(prov['commit'], prov['date']),
        'timing    : median of {} repeats x {} iterations after {} warm-up iterations, device '
        'synchronised before each clock read{}'.format(
            timing['repeats'], timing['iterations_per_repeat'], timing['warmup_iterations'],
            '' if timing['trainer_reporting'] else ', bare updater (no reporter)'),
        '            epochs are SCALED from the timed iterations (s/iter x iterations per '
        'epoch, + step 1\'s label update); evaluation = one full val+test pass',
        '',
    ]
    gpu = result['device']['gpu']
    header = '{:<50} {:>6} {:>8} {:>9} {:>9} {:>10}'.format(
        'part', 'batch', 'it/epoch', 'ms/iter', 's/epoch', 'images/s')
    header += ' {:>9} {:>8}'.format('host ms', 'first s')
    if gpu:
        header += ' {:>10} {:>10}'.format('pool MiB', 'used MiB')
    lines += [header, '-' * len(header)]
    for name, label in TRAINING_PARTS + ((EVALUATION, 'evaluation (val + test, test mode)'),):
        part = result['parts'][name]
        if name == EVALUATION:
            iterations, ms = part['batches_per_epoch'], '-'
        else:
            iterations = part['iterations_per_epoch']
            ms = '{:.2f}'.format(1000 * part['seconds_per_iteration'])
        row = '{:<50} {:>6} {:>8} {:>9} {:>9.2f} {:>10.1f}'.format(
            label, part['batch_size'], iterations, ms, part['seconds_per_epoch'],
            part['images_per_second'])
        if name == EVALUATION:
            row += ' {:>9} {:>8}'.format('-', '-')
        else:
            row += ' {:>9.2f} {:>8.2f}'.format(1000 * part['host_seconds_per_iteration'],
                                               part['first_iteration_seconds'])
        if gpu:
            peak = part['peak_memory']
            row += ' {:>10.0f} {:>10.0f}'.format(peak['pool_peak_bytes'] / MIB,
                                                 peak['device_used_peak_bytes'] / MIB)
        lines.append(row)
    step1 = result['parts']['step1']
    lines += ['', 'host ms: the Python time of one iteration until the host returns (on a GPU '
              'the kernels run asynchronously: when it is close to ms/iter, the device waits on '
              'Python); first s: the first iteration (kernel compilation on a GPU)',
              "step 1's end-of-epoch label update: {:.2f} ms (in its s/epoch)".format(
                  1000 * step1['epoch_end_seconds'])]
    lines += [''] + format_operations(result)
    crossed = {n: result['parts'][n]['epoch_ends_in_timed_iterations'] for n, _ in TRAINING_PARTS}
    if any(crossed.values()):
        lines.append('note: the timed iterations crossed an epoch end ({}): those repeats hold a '
                     'short last batch and the epoch-end work'.format(
                         ', '.join('{} {}'.format(n, c) for n, c in crossed.items() if c)))
    lines.append('estimate for a full schedule (training + per-epoch evaluation): ' + ', '.join(
        '{} {} epochs {}'.format(name, result['parts'][name]['schedule_epochs'],
                                 _duration(seconds))
        for name, seconds in result['schedule_seconds_estimate'].items()))
    if result['peak_memory']:
        lines.append('peak device memory: pool {:.0f} MiB, in use on the device {:.0f} MiB'.format(
            result['peak_memory']['pool_peak_bytes'] / MIB,
            result['peak_memory']['device_used_peak_bytes'] / MIB))
    else:
        lines.append('peak device memory: not recorded (CPU)')
    lines.append('options   : ' + ' '.join('{}={}'.format(k, v)
                                            for k, v in sorted(result['options'].items())))
    return '\n'.join(lines)


# ----------------------------------------------------------------------------------------------
# Command line


def _count(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError('expected an integer, got {!r}'.format(text))
        if value < minimum:
            raise argparse.ArgumentTypeError('must be at least {}, got {}'.format(minimum, value))
        return value
    return parse


def parser():
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--device', default='@numpy', help="Chainer device: '@numpy' or '@cupy:0'")
    p.add_argument('--model', choices=sorted(MODELS), default='resnet32',
                   help="'resnet32': the paper's PreAct ResNet-32; 'tiny': the digits settings' "
                        "small PreAct ResNet (tests)")
    p.add_argument('--data-dir', default=None,
                   help="CIFAR-10 folder (default: Chainer's dataset root if it is there, else "
                        "random images)")
    p.add_argument('--download', action='store_true',
                   help="download CIFAR-10 into Chainer's dataset root if it is not there")
    p.add_argument('--random-data', action='store_true',
                   help='random images even where CIFAR-10 is on disk')
    p.add_argument('--n-train', type=_count(1), default=CIFAR10_SIZES['train'])
    p.add_argument('--n-val', type=_count(1), default=CIFAR10_SIZES['val'])
    p.add_argument('--n-test', type=_count(1), default=CIFAR10_SIZES['test'])
    p.add_argument('--batch-size', type=_count(1), default=hparams.CIFAR10_STEP1['batch_size'])
    p.add_argument('--eval-batch-size', type=_count(1), default=None,
                   help='default: 1000, as the runs')
    p.add_argument('--warmup', type=_count(0), default=20, help='untimed iterations first')
    p.add_argument('--iterations', type=_count(1), default=50, help='iterations per repeat')
    p.add_argument('--repeats', type=_count(1), default=5, help='timed repeats (median taken)')
    p.add_argument('--no-report', action='store_true',
                   help="bare updater.update() calls, without the trainer's reporter and summary")
    p.add_argument('--json', default=None, help='also write the result to this JSON file')
    p.add_argument('--throughput', choices=[name for name, _ in TRAINING_PARTS], default=None,
                   help='instead: train this part for --duration seconds from --start-at and '
                        'report images/s (one process of a concurrency measurement)')
    p.add_argument('--start-at', type=float, default=None,
                   help='with --throughput: the Unix time to start training at')
    p.add_argument('--start-file', default=None,
                   help='with --throughput: wait until this file holds the start time (each '
                        'process creates <file>.<pid>.ready when it is ready)')
    p.add_argument('--duration', type=float, default=10.0,
                   help='with --throughput: seconds to train')
    return p


def main(argv=None):
    """Parses ``argv``, runs the benchmark, prints the table, writes ``--json``; returns the
    result. Bad options exit with argparse's message (status 2)."""
    p = parser()
    args = p.parse_args(argv)
    if args.data_dir and args.random_data:
        p.error('--data-dir and --random-data exclude each other')
    try:
        result = run_throughput(args) if args.throughput else run_benchmark(args)
    except (ValueError, FileNotFoundError) as error:
        p.exit(2, '{}: error: {}\n'.format(p.prog, error))
    if args.throughput:
        print('{part}: {iterations} iterations in {seconds:.1f} s, {images_per_second:.1f} '
              'images/s'.format(**result), flush=True)
    else:
        print(format_report(result), flush=True)
    if args.json:
        atomic.write_json(args.json, result)
        print('written: {}'.format(args.json))
    return result


if __name__ == '__main__':
    main()

"""How fast the training pipeline runs: PreAct ResNet-32 on CIFAR-10-shaped data.

Times step 1, step 2 ("ours"), cross entropy, PENCIL's stage 2 and the per-epoch evaluation, each
part built as the runs build it and trained as the trainer trains it (reporter and summary;
``--no-report``: bare), the device synchronised before every clock read: the median of
``--repeats`` repeats of ``--iterations`` iterations, an epoch *scaled* from it (no full epoch
runs); on a GPU, peak memory too. Nothing asserts a speed: it prints the figures, and ``--json``
writes them with the machine's provenance.
"""
import dataclasses
import gc
import itertools
import math
import os
import statistics
import time
import types

import chainer
import numpy

import atomic_files as atomic
import chainer_compat
from datasets import cifar10
from datasets.image_data import ImageData, mean_image
from datasets.synthetic import SIZES as CIFAR10_SIZES, load_synthetic
from reproduce.batch import plan
from reproduce.run import (config as config_lib, data as data_sets, device as device_lib, hparams,
                           options, precision, preflight, training)
from reproduce.run.device import is_gpu, synchronize
from reproduce.run.options import BENCHMARK, option
from reproduce.run.provenance import provenance
from updaters.extensions import AccuracyTracker

#: --model: the paper's network (RunConfig's CIFAR-10 model) or the digits settings' small one.
MODELS = {'resnet32': None, 'tiny': dict(hparams.DIGITS_MODEL, arch='preact_resnet')}
#: The timed training parts, in the order they run, with what each one is.
TRAINING_PARTS = (
    ('step1', 'step 1 (joint optimisation, label-table store)'),
    ('step2', 'step 2, ours (Lc + Lmix, mixed + clean batch)'),
    ('cross_entropy', 'cross-entropy baseline'),
    ('pencil', 'PENCIL, stage 2 (label-logit step)'),
)
PART_NAMES = tuple(name for name, _ in TRAINING_PARTS)
EVALUATION = 'evaluation'
PARTS = PART_NAMES + (EVALUATION,)
#: The noise setting whose Table-1 hyper-parameters the updaters get (the rate changes alpha,
#: beta, the learning rate and the mix-up a, not the work).
NOISE, RATE = 'symmetric', 0.5
RANDOM_SEED = 0
MIB = float(1 << 20)


# ----------------------------------------------------------------------------------------------
# Data


def random_image_data(n_train, n_val, n_test):
    """CIFAR-10-shaped random uint8 images (seed :data:`RANDOM_SEED`), named ``'random'``."""
    return dataclasses.replace(load_synthetic(RANDOM_SEED, n_train, n_val, n_test), name='random')


def cifar10_in_dataset_root():
    """The ``cifar-10-batches-py`` folder in Chainer's dataset root if every file is there."""
    root = chainer.dataset.get_dataset_directory('cifar10', create_directory=False)
    folder = os.path.join(root, cifar10.FOLDER)
    if all(os.path.isfile(os.path.join(folder, name)) for name in cifar10.FILES):
        return folder
    return None


def subset(data, n_train, n_val, n_test):
    """The first ``n_*`` images of each split (the mean image recomputed when the training split
    is cut); a ValueError when a split has fewer."""
    sizes = {'train': n_train, 'val': n_val, 'test': n_test}
    for split, n in sizes.items():
        have = len(getattr(data, split + '_x'))
        if n > have:
            raise ValueError('--n-{} {} is more than the {} {} images CIFAR-10 has'.format(
                split, n, have, split))
    if all(len(getattr(data, s + '_x')) == n for s, n in sizes.items()):
        return data
    arrays = {split + end: numpy.ascontiguousarray(getattr(data, split + end)[:n])
              for split, n in sizes.items() for end in ('_x', '_y')}
    return ImageData(name=data.name, mean=mean_image(arrays['train_x']),
                     n_classes=data.n_classes, class_names=data.class_names, pad=data.pad,
                     flip=data.flip, **arrays)


def load_data(args):
    """``(ImageData, source)``: the real CIFAR-10, cut to the asked sizes, from ``--data-dir``,
    Chainer's dataset root or ``--download``; else (and with ``--random-data``) random images.
    ``source`` says which: ``kind`` ('cifar10' or 'random') and a ``description``."""
    folder = None
    if not args.random_data:
        folder, found = args.data_dir, 'from --data-dir'
        if not folder:
            folder, found = cifar10_in_dataset_root(), "found in Chainer's dataset root"
            if folder is None and args.download:
                folder, found = cifar10.download(), "downloaded into Chainer's dataset root"
    if folder is not None:
        data = subset(cifar10.load_cifar10(folder), args.n_train, args.n_val, args.n_test)
        return data, {'kind': 'cifar10',
                      'description': 'the official CIFAR-10 batches, {}'.format(found)}
    why = ('--random-data' if args.random_data else
           "CIFAR-10 is not in Chainer's dataset root; give --data-dir or --download for it")
    return random_image_data(args.n_train, args.n_val, args.n_test), {
        'kind': 'random',
        'description': 'uint8 images drawn with seed {} ({})'.format(RANDOM_SEED, why)}


# ----------------------------------------------------------------------------------------------
# The device's memory


class PeakMemory(object):
    """High-water marks of a GPU's memory: the bytes CuPy's pool holds (it keeps what it once
    allocated, so sampling after the work is enough) and the device memory in use
    (``cudaMemGetInfo``: the CUDA context and other processes included). None on the CPU."""

    def __init__(self, device):
        self.device, self.gpu = device, is_gpu(device)
        self.pool_bytes = self.used_bytes = 0

    def reset(self):
        """Start a new part: return unused pool blocks to the device and zero the marks."""
        self.pool_bytes = self.used_bytes = 0
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
# The parts, built as a run builds them


def run_config(args):
    """The :class:`~reproduce.run.config.RunConfig` whose settings the benchmark trains with."""
    batch = {'batch_size': args.batch_size}
    return config_lib.RunConfig(
        dataset='cifar10', noise=NOISE, rate=RATE, device=args.device, data_dir=args.data_dir,
        overrides={'step1': dict(batch), 'step2': dict(batch), 'pencil': dict(batch)},
        eval_batch_size=args.eval_batch_size, tf32=args.tf32, progress=False)


def run_settings(config, model):
    settings = config.settings()
    if MODELS[model] is not None:
        settings['model'] = dict(MODELS[model])
    return settings


class TimedPart(object):
    """One part's device data, model, updater and tracker, as
    :func:`reproduce.run.training.setup` builds them."""

    def __init__(self, name, config, settings, data, noisy, device):
        precision.use_tf32(config.tf32)    # as setup() does: --tf32 on, else float32 products
        self.name = name
        self.arrays = arrays = training.DeviceData(data, noisy, device, config.order_seed)
        self.model = model = training.build_model(config, data, settings)
        model.to_device(device)
        self.label_table = None
        if name == 'step1':
            step = settings['step1']
            self.updater = training.step1_updater(config, settings, arrays, model, device)
            self.label_table = self.updater.label_table
        elif name == 'step2':
            step = settings['step2']
            # Step 1's labels do not change the work: one-hot noisy labels stand in for them.
            targets = numpy.eye(data.n_classes, dtype=numpy.float32)[noisy]
            self.updater = training.step2_updater(config, settings, arrays, model, device,
                                                  targets, config.mixup_weight)
        elif name == 'cross_entropy':
            step = settings['step2']
            self.updater = training.cross_entropy_updater(settings, arrays, model, device)
        elif name == 'pencil':
            # stage 2, the costliest: the network's step and the label logits' step
            step = dict(settings['pencil'])
            settings = dict(settings, pencil=dict(step, stages=(0,) + tuple(step['stages'][1:])))
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
        for _ in range(n):
            if report:
                observation = {}
                with self.reporter.scope(observation):
                    self.updater.update()
                self.summary.add(observation)
            else:
                self.updater.update()

    def evaluate(self):
        """One per-epoch evaluation: the tracker on the validation and test splits."""
        self.tracker(types.SimpleNamespace(updater=self.updater))


# ----------------------------------------------------------------------------------------------
# Timing


def _timed(device, work):
    """Seconds that ``work()`` takes, the device synchronised before each clock read."""
    synchronize(device)
    started = time.perf_counter()
    work()
    synchronize(device)
    return time.perf_counter() - started


def _repeats(device, memory, n, work):
    """``n`` timings of ``work()``, the memory sampled after each."""
    raw = []
    for _ in range(n):
        raw.append(_timed(device, work))
        memory.sample()
    return raw


def _single_iterations(part, device, n, report):
    """``n`` single iterations, each timed from a synchronised start until the host returns (the
    Python work; a GPU queues the kernels) and until the device is done: two lists of seconds."""
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
    """Times one training part; returns its record (``timing`` in the result says how)."""
    iterator = part.iterator
    per_epoch = iterator.iterations_per_epoch    # ceil(n_train / batch_size)
    report = not args.no_report
    first = _timed(device, lambda: part.iterate(1, report))    # kernels compiled here
    if args.warmup > 1:
        _timed(device, lambda: part.iterate(args.warmup - 1, report))
    host, single = _single_iterations(part, device, args.iterations, report)
    memory.sample()
    epoch_before = iterator.epoch
    raw = _repeats(device, memory, args.repeats, lambda: part.iterate(args.iterations, report))
    end_raw = []
    if part.label_table is not None:
        # The table's end-of-epoch update, timed on its own at epochs past ``begin`` (where Y is
        # updated, as in most of step 1's epochs); training is over for this table.
        table = part.label_table
        epochs = itertools.count(max(table.epoch, table.begin) + 1)
        if args.warmup:
            _timed(device, lambda: table.end_epoch(next(epochs)))
        end_raw = _repeats(device, memory, args.repeats, lambda: table.end_epoch(next(epochs)))
    per_iteration = statistics.median(raw) / args.iterations
    end_seconds = statistics.median(end_raw) if end_raw else 0.0
    per_epoch_seconds = per_iteration * per_epoch + end_seconds
    return {
        'updater': type(part.updater).__name__,
        'first_iteration_seconds': first,
        'host_seconds_per_iteration': statistics.median(host),
        'synchronized_seconds_per_iteration': statistics.median(single),
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
        'epoch_ends_in_timed_iterations': iterator.epoch - epoch_before,
        'schedule_epochs': part.step['epochs'],
        'peak_memory': memory.record(),
    }


def measure_evaluation(part, args, device, memory, n_images, batch_size):
    """Times the per-epoch evaluation (both splits, test mode) with ``part``'s model; one repeat
    is one whole pass."""
    if args.warmup:
        _timed(device, part.evaluate)
    memory.sample()
    raw = _repeats(device, memory, args.repeats, part.evaluate)
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
# The benchmark and the throughput process


def benchmark_device(args):
    """The benchmark's Chainer device (``auto``: the first GPU CuPy sees, else the CPU)."""
    device_lib.check(args.device)          # one line (ValueError) for a device Chainer refuses
    args.device = device_lib.resolve(args.device)
    device = chainer.get_device(args.device)
    if device.xp is not numpy and getattr(device.xp, '__name__', '') != 'cupy':
        raise ValueError("device {} is neither NumPy nor CuPy: use '@numpy' or "
                         "'@cupy:<id>'".format(device))
    device.use()
    return device


def _prepare(args):
    """What every measurement starts from: device, data and their source, run configuration,
    settings, noisy labels and a memory record."""
    device = benchmark_device(args)
    data, source = load_data(args)
    config = run_config(args)
    return types.SimpleNamespace(
        device=device, data=data, source=source, config=config,
        settings=run_settings(config, args.model),
        noisy=data_sets.noisy_labels(config, data), memory=PeakMemory(device))


def environment(device):
    """cuDNN and TF32 state, as Chainer and CuPy see them."""
    gpu = is_gpu(device)
    return {
        'cudnn_available': bool(chainer.backends.cuda.cudnn_enabled) if gpu else False,
        'cudnn': chainer_compat.cudnn_status() if gpu else 'not used on the CPU',
        'use_cudnn': chainer.config.use_cudnn,
        'cudnn_deterministic': bool(chainer.config.cudnn_deterministic),
        'autotune': bool(chainer.config.autotune),
        'CUPY_TF32': os.environ.get('CUPY_TF32'),
        'NVIDIA_TF32_OVERRIDE': os.environ.get('NVIDIA_TF32_OVERRIDE'),
        'tf32': gpu and precision.tf32_in_force(),
    }


def run_benchmark(args):
    """Runs every part; returns the result (JSON-ready dict)."""
    s = _prepare(args)
    device, data, config, settings, memory = s.device, s.data, s.config, s.settings, s.memory
    n_train = len(data.train_x)
    eval_batch = config.evaluation_batch_size()
    parts, n_parameters = {}, None
    for name in args.parts:
        memory.reset()
        part = TimedPart(name, config, settings, data, s.noisy, device)
        n_parameters = sum(int(p.size) for p in part.model.params())
        parts[name] = measure_training(part, args, device, memory, n_train)
        if name == 'step2':   # evaluate the method's own network, its training state alive
            memory.reset()
            parts[EVALUATION] = measure_evaluation(
                part, args, device, memory, len(data.val_x) + len(data.test_x), eval_batch)
            parts[EVALUATION]['accuracy'] = part.tracker.summary()['last']
        del part
    memory.reset()
    evaluation = parts[EVALUATION]['seconds_per_epoch'] if EVALUATION in parts else 0.0
    peaks = [p['peak_memory'] for p in parts.values() if p['peak_memory']]
    return {
        'benchmark': 'training pipeline speed, PreAct ResNet on CIFAR-10-shaped data',
        'options': dict(vars(args)),
        'data': dict(s.source, n_train=n_train, n_val=len(data.val_x), n_test=len(data.test_x),
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
        'schedule_seconds_estimate': {
            name: parts[name]['schedule_epochs'] * (parts[name]['seconds_per_epoch'] + evaluation)
            for name in args.parts},
        'peak_memory': None if not peaks else {
            key: max(p[key] for p in peaks)
            for key in ('pool_peak_bytes', 'device_used_peak_bytes')},
    }


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
    """One process of a concurrency measurement: builds the ``--throughput`` part, warms up,
    waits for the common start (so that every process trains at once), trains for
    ``--duration`` seconds; returns the images it trained per second and its peak memory."""
    s = _prepare(args)
    device, memory, report = s.device, s.memory, not args.no_report
    part = TimedPart(args.throughput, s.config, s.settings, s.data, s.noisy, device)
    _timed(device, lambda: part.iterate(max(1, args.warmup), report))
    memory.sample()
    start_at = _start_time(args)
    wait = start_at - time.time()
    if wait > 0:
        time.sleep(wait)
    synchronize(device)
    started = time.time()
    iterations = 0
    while time.time() - started < args.duration:
        part.iterate(1, report)
        iterations += 1
    synchronize(device)
    seconds = time.time() - started
    memory.sample()
    return {'part': args.throughput, 'pid': os.getpid(), 'started': started,
            'late_by_seconds': max(0.0, started - start_at),
            'iterations': iterations, 'images': iterations * args.batch_size,
            'seconds': seconds, 'images_per_second': iterations * args.batch_size / seconds,
            'peak_memory': memory.record(), 'data': s.source['kind'],
            'device': {'spec': str(device), 'gpu': is_gpu(device)}}


# ----------------------------------------------------------------------------------------------
# Report


def format_report(result):
    """The result as a readable table (str)."""
    prov, env, data, timing = (result['provenance'], result['environment'], result['data'],
                               result['timing'])
    versions = ', '.join('{} {}'.format(k, 'none' if v is None else v)
                         for k, v in sorted(prov['versions'].items()) if k != 'cudnn')
    cudnn = env.get('cudnn') or ('available' if env['cudnn_available'] else 'not available')
    tf32 = ', '.join('{}={}'.format(name, env[name]) if env[name] is not None else
                     '{} unset'.format(name) for name in ('CUPY_TF32', 'NVIDIA_TF32_OVERRIDE'))
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
    header = '{:<50} {:>6} {:>8} {:>9} {:>9} {:>10} {:>9} {:>8}'.format(
        'part', 'batch', 'it/epoch', 'ms/iter', 's/epoch', 'images/s', 'host ms', 'first s')
    if gpu:
        header += ' {:>10} {:>10}'.format('pool MiB', 'used MiB')
    lines += [header, '-' * len(header)]
    for name, label in TRAINING_PARTS + ((EVALUATION, 'evaluation (val + test, test mode)'),):
        if name not in result['parts']:
            continue
        part = result['parts'][name]
        if name == EVALUATION:
            iterations, ms, host, first = part['batches_per_epoch'], '-', '-', '-'
        else:
            iterations = part['iterations_per_epoch']
            ms = '{:.2f}'.format(1000 * part['seconds_per_iteration'])
            host = '{:.2f}'.format(1000 * part['host_seconds_per_iteration'])
            first = '{:.2f}'.format(part['first_iteration_seconds'])
        row = '{:<50} {:>6} {:>8} {:>9} {:>9.2f} {:>10.1f} {:>9} {:>8}'.format(
            label, part['batch_size'], iterations, ms, part['seconds_per_epoch'],
            part['images_per_second'], host, first)
        if gpu:
            peak = part['peak_memory']
            row += ' {:>10.0f} {:>10.0f}'.format(peak['pool_peak_bytes'] / MIB,
                                                 peak['device_used_peak_bytes'] / MIB)
        lines.append(row)
    lines += ['', 'host ms: the Python time of one iteration until the host returns (on a GPU '
              'the kernels run asynchronously: when it is close to ms/iter, the device waits on '
              'Python); first s: the first iteration (kernel compilation on a GPU)']
    if 'step1' in result['parts']:
        lines.append("step 1's end-of-epoch label update: {:.2f} ms (in its s/epoch)".format(
            1000 * result['parts']['step1']['epoch_end_seconds']))
    crossed = {n: result['parts'][n]['epoch_ends_in_timed_iterations']
               for n in PART_NAMES if n in result['parts']}
    if any(crossed.values()):
        lines.append('note: the timed iterations crossed an epoch end ({}): those repeats hold a '
                     'short last batch and the epoch-end work'.format(
                         ', '.join('{} {}'.format(n, c) for n, c in crossed.items() if c)))
    lines.append('estimate for a full schedule (training + per-epoch evaluation): ' + ', '.join(
        '{} {} epochs {}'.format(name, result['parts'][name]['schedule_epochs'],
                                 plan.duration(seconds))
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


def _part_list(text):
    names = [name for name in text.split(',') if name]
    if not names or any(name not in PART_NAMES for name in names):
        raise ValueError('takes parts among {}, got {!r}'.format(', '.join(PART_NAMES), text))
    return [name for name in PART_NAMES if name in names]


@dataclasses.dataclass
class BenchmarkOptions:
    """The benchmark's own options (the device, evaluation batch and TF32 are the runs')."""

    model: str = option('resnet32', "the network: resnet32 (the paper's PreAct ResNet-32) or "
                        "tiny (the digits settings' small PreAct ResNet, for tests)",
                        commands=(BENCHMARK,), choices=tuple(sorted(MODELS)))
    data_dir: str = option(None, 'CIFAR-10 folder', commands=(BENCHMARK,), parse=options.path,
                           default_text="Chainer's dataset root if CIFAR-10 is there, else "
                                        "random images")
    download: bool = option(False, "download CIFAR-10 into Chainer's dataset root if it is not "
                            "there", commands=(BENCHMARK,), store_true=True)
    random_data: bool = option(False, 'random images even where CIFAR-10 is on disk',
                               commands=(BENCHMARK,), store_true=True)
    n_train: int = option(CIFAR10_SIZES['train'], 'training images', commands=(BENCHMARK,),
                          parse=options.integer(1))
    n_val: int = option(CIFAR10_SIZES['val'], 'validation images', commands=(BENCHMARK,),
                        parse=options.integer(1))
    n_test: int = option(CIFAR10_SIZES['test'], 'test images', commands=(BENCHMARK,),
                         parse=options.integer(1))
    batch_size: int = option(hparams.CIFAR10_STEP1['batch_size'], 'training batch',
                             commands=(BENCHMARK,), parse=options.integer(1))
    warmup: int = option(20, 'untimed iterations first (the first one timed apart)',
                         commands=(BENCHMARK,), parse=options.integer(0))
    iterations: int = option(50, 'iterations per repeat', commands=(BENCHMARK,),
                             parse=options.integer(1))
    repeats: int = option(5, 'timed repeats (median taken)', commands=(BENCHMARK,),
                          parse=options.integer(1))
    no_report: bool = option(False, "bare updater.update() calls, without the trainer's reporter "
                             'and summary', commands=(BENCHMARK,), store_true=True)
    json: str = option(None, 'also write the result to this JSON file', commands=(BENCHMARK,),
                       parse=options.path)
    throughput: str = option(None, 'instead: train this part for --duration seconds from the '
                             'common start and report images/s (one process of a concurrency '
                             'measurement)', commands=(BENCHMARK,), choices=PART_NAMES)
    start_at: float = option(None, 'with --throughput: the Unix time to start training at',
                             commands=(BENCHMARK,), parse=options.number)
    start_file: str = option(None, 'with --throughput: wait until this file holds the start '
                             'time (each process creates <file>.<pid>.ready when it is ready)',
                             commands=(BENCHMARK,))
    duration: float = option(10.0, 'with --throughput: seconds to train', commands=(BENCHMARK,),
                             parse=options.number, check=options.positive)
    parts: list = option(list(PART_NAMES), 'the training parts to time, comma-separated',
                         commands=(BENCHMARK,), parse=_part_list, render=','.join)


def parser():
    p = options.Parser(description=__doc__.split('\n\n')[0],
                       formatter_class=options.HelpFormatter)
    options.add_options(p, config_lib.RunConfig, BENCHMARK)
    options.add_options(p, BenchmarkOptions, BENCHMARK)
    return p


def check_json(path):
    """Refuses (ValueError, one line) a ``--json`` file that could not be written, before any
    work; creates nothing."""
    if os.path.isdir(path):
        raise ValueError('--json {} is a folder: name a file'.format(os.path.abspath(path)))
    preflight.folder(os.path.dirname(os.path.abspath(path)), '--json')


def main(argv=None):
    """Parses ``argv``, runs the benchmark, prints the table, writes ``--json``; returns the
    result. Bad options and an unwritable ``--json`` exit with one line (status 2)."""
    p = parser()
    args = p.parse_args(argv)
    if args.data_dir and args.random_data:
        p.error('--data-dir and --random-data exclude each other')
    try:
        if args.json:
            check_json(args.json)
        precision.use_tf32(args.tf32)       # before CUDA starts: float32 unless --tf32
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

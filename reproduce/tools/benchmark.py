"""How fast the training pipeline runs: PreAct ResNet-32 on CIFAR-10-shaped data.

Times step 1, step 2 ("ours"), cross entropy, PENCIL's stage 2 and the per-epoch evaluation, each
part built as the runs build it and trained as the trainer trains it (reporter and summary), the
device synchronised before every clock read: after ``--warmup`` iterations (the first timed
apart), the median of ``--repeats`` repeats of ``--iterations`` iterations, an epoch *scaled* from
it (step 1's end-of-epoch label update timed apart and added); the evaluation: one whole
validation + test pass a repeat. On a GPU, each part's peak memory too. ``--throughput PART``
instead trains one part for ``--duration`` seconds from a common start (one process of the GPU
check's concurrency measurement). It prints the figures; ``--json`` writes them with provenance.
"""
import dataclasses
import functools
import gc
import itertools
import os
import statistics
import time
import types

import chainer
import numpy

import atomic_files as atomic
import chainer_compat
from datasets import cifar10
from datasets.image_data import mean_image
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
#: The timed parts in the order they run (the evaluation: step 2's network), as reported.
LABELS = {
    'step1': 'step 1 (joint optimisation, label-table store)',
    'step2': 'step 2, ours (Lc + Lmix, mixed + clean batch)',
    'cross_entropy': 'cross-entropy baseline',
    'pencil': 'PENCIL, stage 2 (label-logit step)',
    'evaluation': 'evaluation (val + test, test mode)',
}
PARTS = tuple(LABELS)
PART_NAMES, EVALUATION = PARTS[:-1], PARTS[-1]     # the training parts; the evaluation
#: The noise setting whose Table-1 hyper-parameters the updaters get (the rate changes alpha,
#: beta, the learning rate and the mix-up a, not the work).
NOISE, RATE = 'symmetric', 0.5
RANDOM_SEED = 0


def cifar10_in_dataset_root():
    """The ``cifar-10-batches-py`` folder in Chainer's dataset root if every file is there."""
    root = chainer.dataset.get_dataset_directory('cifar10', create_directory=False)
    folder = os.path.join(root, cifar10.FOLDER)
    return folder if all(os.path.isfile(os.path.join(folder, f)) for f in cifar10.FILES) else None


def subset(data, n_train, n_val, n_test):
    """The first ``n_*`` images of each split (the mean image recomputed from the training split
    kept); a ValueError when a split has fewer."""
    sizes = {'train': n_train, 'val': n_val, 'test': n_test}
    have = {split: len(getattr(data, split + '_x')) for split in sizes}
    for split, n in sizes.items():
        if n > have[split]:
            raise ValueError('--n-{} {} is more than the {} {} images CIFAR-10 has'.format(
                split, n, have[split], split))
    arrays = {split + end: numpy.ascontiguousarray(getattr(data, split + end)[:n])
              for split, n in sizes.items() for end in ('_x', '_y')}
    return dataclasses.replace(data, mean=mean_image(arrays['train_x']), **arrays)


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
        return data, {'kind': 'cifar10', 'description': 'the official CIFAR-10 batches, ' + found}
    why = ('--random-data' if args.random_data else
           "CIFAR-10 is not in Chainer's dataset root; give --data-dir or --download for it")
    data = load_synthetic(RANDOM_SEED, args.n_train, args.n_val, args.n_test)    # CIFAR-10-shaped
    return dataclasses.replace(data, name='random'), {
        'kind': 'random',
        'description': 'uint8 images drawn with seed {} ({})'.format(RANDOM_SEED, why)}


def _free_pool(device):
    """Between parts: returns CuPy's unused pool blocks to the GPU (each part's peak its own)."""
    if is_gpu(device):
        gc.collect()
        synchronize(device)
        device.xp.get_default_memory_pool().free_all_blocks()


def _peak(device, peak):
    """``peak`` raised to a GPU's memory now: the bytes CuPy's pool holds (it keeps what it once
    allocated, so sampling after the work is enough) and the device memory in use
    (``cudaMemGetInfo``: the CUDA context and other processes included). None on the CPU."""
    if not is_gpu(device):
        return None
    free, total = device.xp.cuda.runtime.memGetInfo()
    now = {'pool_peak_bytes': int(device.xp.get_default_memory_pool().total_bytes()),
           'device_used_peak_bytes': int(total - free)}
    return {key: max(value, (peak or {}).get(key, 0)) for key, value in now.items()}


class TimedPart(object):
    """One part's device data, model, updater and tracker, as
    :func:`reproduce.run.training.setup` builds them."""

    def __init__(self, name, config, settings, data, noisy, device):
        precision.use_tf32(config.tf32)    # as setup() does: --tf32 on, else float32 products
        self.device, self.peak = device, None
        arrays = training.DeviceData(data, noisy, device, config.order_seed)
        self.model = model = training.build_model(config, data, settings)
        model.to_device(device)
        self.step = step = settings['step2' if name == 'cross_entropy' else name]
        if name == 'step1':
            self.updater = training.step1_updater(config, settings, arrays, model, device)
        elif name == 'step2':
            # Step 1's labels do not change the work: one-hot noisy labels stand in for them.
            targets = numpy.eye(data.n_classes, dtype=numpy.float32)[noisy]
            self.updater = training.step2_updater(config, settings, arrays, model, device,
                                                  targets, config.mixup_weight)
        elif name == 'cross_entropy':
            self.updater = training.cross_entropy_updater(settings, arrays, model, device)
        else:   # PENCIL's stage 2, the costliest: the network's step and the label logits' step
            settings = dict(settings, pencil=dict(step, stages=(0,) + tuple(step['stages'][1:])))
            self.updater = training.pencil_updater(settings, arrays, model, device)
        self.label_table = getattr(self.updater, 'label_table', None)
        self.tracker = AccuracyTracker(arrays.splits, arrays.preprocess,
                                       batch_size=config.evaluation_batch_size())
        # What Trainer and LogReport do around every update (Trainer.__init__, Trainer.run).
        self.reporter = chainer.Reporter()
        self.reporter.add_observer('main', model)
        self.reporter.add_observers('main', model.namedlinks(skipself=True))
        self.summary = chainer.reporter.DictSummary()

    def iterate(self, n):
        """``n`` training iterations, each as the trainer runs it."""
        for _ in range(n):
            observation = {}
            with self.reporter.scope(observation):
                self.updater.update()
            self.summary.add(observation)

    def evaluate(self):
        """One per-epoch evaluation: the tracker on the validation and test splits."""
        self.tracker(types.SimpleNamespace(updater=self.updater))

    def timed(self, work):
        """``(host, total)``: seconds until ``work()`` returns on the host (a GPU queues its
        kernels) and until the device is done, the device synchronised first; then the memory
        peak (:func:`_peak`) sampled."""
        synchronize(self.device)
        started = time.perf_counter()
        work()
        returned = time.perf_counter()
        synchronize(self.device)
        seconds = returned - started, time.perf_counter() - started
        self.peak = _peak(self.device, self.peak)
        return seconds

    def repeats(self, n, work):
        return [self.timed(work)[1] for _ in range(n)]


def measure_training(part, args, n_train):
    """Times one training part; returns its record."""
    per_epoch = part.updater.get_iterator('main').iterations_per_epoch  # ceil(n_train / batch)
    first = part.timed(lambda: part.iterate(1))[1]    # kernels compiled here
    part.iterate(max(0, args.warmup - 1))
    host = [part.timed(lambda: part.iterate(1))[0] for _ in range(args.iterations)]
    raw = part.repeats(args.repeats, lambda: part.iterate(args.iterations))
    end_raw = []
    if part.label_table is not None:
        # The table's end-of-epoch update, timed on its own at epochs past ``begin`` (where Y is
        # updated, as in most of step 1's epochs); training is over for this table.
        table = part.label_table
        epochs = itertools.count(max(table.epoch, table.begin) + 1)
        if args.warmup:
            table.end_epoch(next(epochs))
        end_raw = part.repeats(args.repeats, lambda: table.end_epoch(next(epochs)))
    per_iteration = statistics.median(raw) / args.iterations
    end_seconds = statistics.median(end_raw) if end_raw else 0.0
    seconds = per_iteration * per_epoch + end_seconds
    return {'updater': type(part.updater).__name__, 'batch_size': args.batch_size,
            'iterations_per_epoch': per_epoch, 'first_iteration_seconds': first,
            'host_seconds_per_iteration': statistics.median(host), 'raw_seconds': raw,
            'seconds_per_iteration': per_iteration, 'epoch_end_raw_seconds': end_raw,
            'epoch_end_seconds': end_seconds, 'seconds_per_epoch': seconds,
            'images_per_second': n_train / seconds, 'schedule_epochs': part.step['epochs'],
            'peak_memory': part.peak}


def measure_evaluation(part, args):
    """Times the per-epoch evaluation (both splits, test mode) with ``part``'s model; one repeat
    is one whole pass."""
    if args.warmup:
        part.evaluate()
    raw = part.repeats(args.repeats, part.evaluate)
    seconds, n_images = statistics.median(raw), sum(len(x) for x, _ in part.tracker.splits.values())
    return {'batch_size': part.tracker.batch_size, 'images': n_images, 'raw_seconds': raw,
            'seconds_per_epoch': seconds, 'images_per_second': n_images / seconds,
            'peak_memory': part.peak}


def _prepare(args):
    """What every measurement starts from: the device (``auto``: the first GPU CuPy sees, else
    the CPU), data and their source, the :class:`~reproduce.run.config.RunConfig` and settings
    the parts train with (``--model tiny``: the small network), noisy labels."""
    device_lib.check(args.device)          # one line (ValueError) for a device Chainer refuses
    args.device = device_lib.resolve(args.device)
    device = chainer.get_device(args.device)
    device.use()
    data, source = load_data(args)
    batch = {'batch_size': args.batch_size}
    config = config_lib.RunConfig(
        dataset='cifar10', noise=NOISE, rate=RATE, device=args.device, data_dir=args.data_dir,
        overrides={'step1': dict(batch), 'step2': dict(batch), 'pencil': dict(batch)},
        eval_batch_size=args.eval_batch_size, tf32=args.tf32, progress=False)
    settings = config.settings()
    settings['model'] = dict(MODELS[args.model] or settings['model'])
    return types.SimpleNamespace(device=device, data=data, source=source, config=config,
                                 settings=settings, noisy=data_sets.noisy_labels(config, data))


def run_benchmark(args):
    """Runs the asked parts (and, with step 2, the evaluation); returns the result (JSON-ready)."""
    s = _prepare(args)
    device, data = s.device, s.data
    n_train, parts, n_parameters = len(data.train_x), {}, None
    for name in args.parts:
        _free_pool(device)
        part = TimedPart(name, s.config, s.settings, data, s.noisy, device)
        n_parameters = sum(int(p.size) for p in part.model.params())
        parts[name] = measure_training(part, args, n_train)
        if name == 'step2':   # evaluate the method's own network, its training state alive
            _free_pool(device)
            part.peak = None
            parts[EVALUATION] = measure_evaluation(part, args)
        del part
    _free_pool(device)
    evaluation = parts[EVALUATION]['seconds_per_epoch'] if EVALUATION in parts else 0.0
    gpu = is_gpu(device)
    return {
        'options': dict(vars(args)),
        'data': dict(s.source, n_train=n_train, n_val=len(data.val_x), n_test=len(data.test_x)),
        'model': {'name': args.model, 'settings': s.settings['model'], 'parameters': n_parameters},
        'device': {'spec': str(device), 'gpu': gpu,
                   'cudnn': '{}; chainer.config.use_cudnn = {!r}'.format(
                       chainer_compat.cudnn_status(), chainer.config.use_cudnn)
                   if gpu else 'not used on the CPU'},
        'provenance': provenance(device),
        'parts': parts,
        # schedule epochs x (training epoch + evaluation); snapshots and logs not included
        'schedule_seconds_estimate': {
            name: parts[name]['schedule_epochs'] * (parts[name]['seconds_per_epoch'] + evaluation)
            for name in args.parts},
    }


def _wait_for_start(start_file):
    """Says this process is ready (creates ``<start-file>.<pid>.ready``), waits until the common
    start time is written into ``start_file``, then until that time."""
    open('{}.{}.ready'.format(start_file, os.getpid()), 'w').close()
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            with open(start_file) as f:
                return time.sleep(max(0.0, float(f.read()) - time.time()))
        except (OSError, ValueError):     # not written yet, or being written
            time.sleep(0.05)
    raise ValueError('no start time in {} after 10 minutes'.format(start_file))


def run_throughput(args):
    """One process of a concurrency measurement: builds the ``--throughput`` part, warms up,
    waits for the common start (``--start-file``: so that every process trains at once), trains
    for ``--duration`` seconds; returns the images it trained per second and its peak memory."""
    s = _prepare(args)
    part = TimedPart(args.throughput, s.config, s.settings, s.data, s.noisy, s.device)
    part.timed(lambda: part.iterate(max(1, args.warmup)))
    if args.start_file:
        _wait_for_start(args.start_file)
    synchronize(s.device)
    iterations, started = 0, time.time()
    while time.time() - started < args.duration:
        part.iterate(1)
        iterations += 1
    synchronize(s.device)
    seconds = time.time() - started
    part.peak = _peak(s.device, part.peak)
    images = iterations * args.batch_size
    return {'part': args.throughput, 'started': started, 'iterations': iterations,
            'images': images, 'seconds': seconds, 'images_per_second': images / seconds,
            'peak_memory': part.peak, 'data': s.source['kind'], 'device': str(s.device)}


def format_report(result):
    """The result as a readable table (str)."""
    prov, parts, gpu = result['provenance'], result['parts'], result['device']['gpu']
    lines = [
        'Training-pipeline benchmark: PreAct ResNet ({name}, {parameters:,} parameters)'.format(
            **result['model']),
        'data      : {kind}, {description}: {n_train} train / {n_val} val / {n_test} test '
        'images'.format(**result['data']),
        'device    : {} [{}]; commit {}, {}'.format(prov['device'], result['device']['spec'],
                                                   prov['commit'], prov['date']),
        'versions  : ' + ', '.join('{} {}'.format(k, v) for k, v in
                                   sorted(prov['versions'].items()) if k != 'cudnn'),
        'cuDNN     : ' + result['device']['cudnn'],
        'TF32      : {} ({})'.format('on' if gpu and prov['tf32'] else 'off', ', '.join(
            '{}={}'.format(k, v) for k, v in sorted(prov['tf32_environment'].items()))),
        'timing    : median of {repeats} repeats x {iterations} iterations after {warmup} warm-up'
        ' iterations, the device synchronised before each clock read'.format(**result['options']),
        '            epochs are SCALED from the timed iterations (s/iter x iterations per '
        "epoch, + step 1's label update); evaluation = one full val+test pass", '']
    columns = '{:<50} {:>6} {:>8} {:>9} {:>9} {:>9} {:>10} {:>8}' + ' {:>10}' * 2 * gpu
    header = columns.format('part', 'batch', 'it/epoch', 'ms/iter', 'host ms', 's/epoch',
                            'images/s', 'first s', 'pool MiB', 'used MiB')
    lines += [header, '-' * len(header)]
    for name in (name for name in PARTS if name in parts):
        part, memory = parts[name], parts[name]['peak_memory'] or {}
        cells = ['{:.2f}'.format(scale * part[key]) if key in part else '-' for key, scale in (
            ('seconds_per_iteration', 1000), ('host_seconds_per_iteration', 1000),
            ('seconds_per_epoch', 1), ('images_per_second', 1), ('first_iteration_seconds', 1))]
        lines.append(columns.format(
            LABELS[name], part['batch_size'], part.get('iterations_per_epoch', '-'), *cells,
            *('{:.0f}'.format(memory.get(key, 0) / 2.0 ** 20)
              for key in ('pool_peak_bytes', 'device_used_peak_bytes'))))
    lines += ['', 'host ms: one iteration until the host returns (a GPU runs the kernels '
              'asynchronously: near ms/iter, the device waits on Python); first s: the first '
              'iteration (kernel compilation on a GPU)',
              "pool MiB: CuPy's memory pool at its peak; used MiB: the device's memory in use at "
              'its peak (CUDA context and other processes included)' if gpu else
              'peak memory: not recorded on the CPU']
    if 'step1' in parts:
        lines.append("step 1's end-of-epoch label update: {:.2f} ms (in its s/epoch)".format(
            1000 * parts['step1']['epoch_end_seconds']))
    lines.append('estimate for a full schedule (training + {}): {}'.format(
        'per-epoch evaluation' if EVALUATION in parts else 'no evaluation: step2 not timed',
        ', '.join('{} {} epochs {}'.format(name, parts[name]['schedule_epochs'],
                                           plan.duration(seconds))
                  for name, seconds in result['schedule_seconds_estimate'].items())))
    return '\n'.join(lines)


def _part_list(text):
    names = options.words(text)
    if any(name not in PART_NAMES for name in names):
        raise ValueError('takes parts among {}, got {!r}'.format(', '.join(PART_NAMES), text))
    return [name for name in PART_NAMES if name in names]


_option = functools.partial(option, commands=(BENCHMARK,))
_count = functools.partial(_option, parse=options.integer(1))


@dataclasses.dataclass
class BenchmarkOptions:
    """The benchmark's own options (the device, evaluation batch and TF32 are the runs')."""

    model: str = _option('resnet32', "resnet32 (the paper's PreAct ResNet-32) or tiny (the "
                         "digits settings' small PreAct ResNet, for tests)", choices=sorted(MODELS))
    data_dir: str = _option(None, 'CIFAR-10 folder', parse=options.path, default_text="Chainer's "
                            'dataset root if CIFAR-10 is there, else random images')
    download: bool = _option(False, "download CIFAR-10 into Chainer's dataset root if it is not "
                             'there', store_true=True)
    random_data: bool = _option(False, 'random images even where CIFAR-10 is on disk',
                                store_true=True)
    n_train: int = _count(CIFAR10_SIZES['train'], 'training images')
    n_val: int = _count(CIFAR10_SIZES['val'], 'validation images')
    n_test: int = _count(CIFAR10_SIZES['test'], 'test images')
    batch_size: int = _count(hparams.CIFAR10_STEP1['batch_size'], 'training batch')
    warmup: int = _option(20, 'untimed iterations first (the first one timed apart)',
                          parse=options.integer(0))
    iterations: int = _count(50, 'iterations per repeat')
    repeats: int = _count(5, 'timed repeats (median taken)')
    parts: list = _option(list(PART_NAMES), 'the training parts to time, comma-separated (the '
                          'evaluation is timed with step2)', parse=_part_list, render=','.join)
    json: str = _option(None, 'also write the result to this JSON file', parse=options.path)
    throughput: str = _option(None, 'instead: train this part for --duration seconds and report '
                              'images/s (one process of a concurrency measurement)',
                              choices=PART_NAMES)
    start_file: str = _option(None, 'with --throughput: start when this file holds the start '
                              'time (each process creates <file>.<pid>.ready when it is ready)')
    duration: float = _option(10.0, 'with --throughput: seconds to train', parse=options.number)


def parser():
    p = options.Parser(description=__doc__.split('\n\n')[0], formatter_class=options.HelpFormatter)
    options.add_options(p, config_lib.RunConfig, BENCHMARK)
    options.add_options(p, BenchmarkOptions, BENCHMARK)
    return p


def main(argv=None):
    """Parses ``argv``, runs the benchmark, prints the table, writes ``--json``; returns the
    result. Bad options and an unwritable ``--json`` exit with one line (status 2)."""
    p = parser()
    args = p.parse_args(argv)
    if args.data_dir and args.random_data:
        p.error('--data-dir and --random-data exclude each other')
    if options.positive(args.duration):
        p.error('argument --duration: ' + options.positive(args.duration))
    try:
        if args.json:     # refused before any work: a folder, or where no file can be written
            where = os.path.abspath(args.json)
            if os.path.isdir(where):
                raise ValueError('--json {} is a folder: name a file'.format(where))
            preflight.folder(os.path.dirname(where), '--json')
        precision.use_tf32(args.tf32)       # before CUDA starts: float32 unless --tf32
        result = run_throughput(args) if args.throughput else run_benchmark(args)
    except (ValueError, FileNotFoundError) as error:
        p.exit(2, '{}: error: {}\n'.format(p.prog, error))
    print('{part}: {iterations} iterations in {seconds:.1f} s, {images_per_second:.1f} images/s'
          .format(**result) if args.throughput else format_report(result), flush=True)
    if args.json:
        atomic.write_json(args.json, result)
        print('written: {}'.format(args.json))
    return result

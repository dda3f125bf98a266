"""How fast the training pipeline runs: PreAct ResNet-32 on CIFAR-10-shaped data.

    python reproduce/benchmark.py                          # on the CPU
    python reproduce/benchmark.py --device @cupy:0 --json results/benchmark-gpu.json
    python -m reproduce.benchmark --model tiny --n-train 512 --n-val 128 --n-test 128 \\
        --batch-size 64 --iterations 3 --repeats 3 --warmup 1    # a smoke test

Measures, with the parts the runs are made of (:mod:`reproduce.training`'s settings, model,
device data and optimizer; the step updaters; the label table; the accuracy tracker):

* step 1: ``JointOptimizationUpdater`` iterations, each storing its softmax outputs in the label
  table, plus the table's end-of-epoch update (timed on its own, added once per epoch);
* step 2 of the method ("ours"): ``MixupUpdater`` with Lmix weight 1 (the mixed and the clean
  batch in one pass);
* the cross-entropy baseline: ``CrossEntropyUpdater``;
* PENCIL's stage 2 (the network's and the label logits' steps): ``PencilUpdater``;
* the per-epoch evaluation: validation and test splits with the evaluation batch size (1000).

Every training iteration runs as the trainer runs it: ``updater.update()`` inside a reporter scope
that observes the model, its observation added to a summary as ``LogReport`` adds it
(``--no-report`` leaves both out). Timing: ``--warmup`` iterations first, then ``--repeats`` timed
repeats of ``--iterations`` iterations each, the device synchronised before every clock read; the
median repeat gives the seconds per iteration, and an epoch is *scaled* from it to
``ceil(n_train / batch_size)`` iterations (no full epoch is run). An evaluation repeat is one
whole pass over both splits. On a GPU the peak of CuPy's memory pool and the device memory in use
(``cudaMemGetInfo``, all processes and the CUDA context included) are recorded per part.
``--batch-norm`` picks the batch normalisation timed (``--parts`` the parts); beside the times,
each part's device work per batch normalisation is counted on the CPU
(:func:`reproduce.opcount.count_array_operations`; ``--no-work-count`` leaves it out).

The data are the real CIFAR-10 (45k / 5k / 10k, :mod:`datasets.cifar10`) when ``--data-dir`` is
given or the data set is already in Chainer's dataset root (``--download`` fetches it), and random
uint8 images of the same shape otherwise; the report says which. Nothing here asserts a speed: it
prints the figures, and ``--json`` writes them (atomically) with the provenance of the machine.
"""
import dataclasses
import os
import sys

if __package__ in (None, ''):  # run as a file: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import chainer_compat  # noqa: F401,E402  (before chainer)
import chainer  # noqa: E402

from reproduce import config as config_lib, options  # noqa: E402
from reproduce import data as data_sets  # noqa: E402
from reproduce.options import BENCHMARK, option  # noqa: E402
from reproduce.provenance import provenance  # noqa: E402
from reproduce.timing import (CIFAR10_SIZES, EVALUATION, MIB, MODELS, NOISE,  # noqa: E402
                              RATE, TRAINING_PARTS, PeakMemory, TimedPart, benchmark_device,
                              count_device_work, is_gpu,
                              load_data, measure_evaluation, measure_training, run_config,
                              run_settings, run_throughput)
from reproduce.timing import PARTS, random_image_data, subset  # noqa: E402,F401  (the API)
from reproduce import hparams, precision  # noqa: E402
from updaters import atomic  # noqa: E402


# ----------------------------------------------------------------------------------------------
# The benchmark


def environment(device, batch_norm):
    """cuDNN, TF32 and batch-normalisation state, as Chainer and CuPy see them."""
    return {
        'cudnn_available': bool(chainer.backends.cuda.cudnn_enabled) if is_gpu(device) else False,
        'cudnn': chainer_compat.cudnn_status() if is_gpu(device) else 'not used on the CPU',
        'use_cudnn': chainer.config.use_cudnn,
        'cudnn_deterministic': bool(chainer.config.cudnn_deterministic),
        'autotune': bool(chainer.config.autotune),
        'CUPY_TF32': os.environ.get('CUPY_TF32'),
        'NVIDIA_TF32_OVERRIDE': os.environ.get('NVIDIA_TF32_OVERRIDE'),
        'tf32': is_gpu(device) and precision.tf32_in_force(),
        'batch_norm': batch_norm,
    }


def run_benchmark(args):
    """Runs every part; returns the result (JSON-ready dict)."""
    device = benchmark_device(args)
    data, source = load_data(args)
    config = run_config(args)
    settings = run_settings(config, args.model)
    noisy = data_sets.noisy_labels(config, data)
    memory = PeakMemory(device)
    n_train = len(data.train_x)
    eval_batch = config.evaluation_batch_size()
    parts, n_parameters = {}, None
    for name in args.parts:
        memory.reset()
        part = TimedPart(name, config, settings, data, noisy, device)
        n_parameters = sum(int(p.size) for p in part.model.params())
        parts[name] = measure_training(part, args, device, memory, n_train)
        if not args.no_work_count:
            parts[name]['device_work'] = count_device_work(name, config, settings, data, noisy)
        if name == 'step2':   # evaluate the method's own network, its training state alive
            memory.reset()
            parts[EVALUATION] = measure_evaluation(
                part, args, device, memory, len(data.val_x) + len(data.test_x), eval_batch)
            parts[EVALUATION]['accuracy'] = part.tracker.summary()['last']
        del part
    memory.reset()
    evaluation = parts[EVALUATION]['seconds_per_epoch'] if EVALUATION in parts else 0.0
    schedule = {name: parts[name]['schedule_epochs'] * (parts[name]['seconds_per_epoch']
                                                         + evaluation)
                for name in args.parts}
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
        'environment': environment(device, config.batch_norm),
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
    """The work of one iteration per part, as table lines: Chainer function applications and
    parameter-update operations on the benchmark's device, then the device work counted on the
    CPU for each batch-normalisation variant (array operations of this package's code and of
    Chainer's, cuDNN-backed library calls; their sum estimates the launches on a GPU)."""
    lines = ['{:<50} {:>22} {:>14} {:>18}'.format(
        'work of one iteration', 'function applications', 'of them in bwd', 'update operations')]
    measured = [(name, label) for name, label in TRAINING_PARTS if name in result['parts']]
    for name, label in measured:
        ops = result['parts'][name]['operations']
        lines.append('{:<50} {:>22} {:>14} {:>18}'.format(
            label, ops['function_applications'], ops['backward_calls'],
            ops['update_operations']))
    if not any('device_work' in result['parts'][name] for name, _ in measured):
        return lines
    lines += ['', 'device work of one iteration, counted on the CPU (array operations: each a '
              'kernel launch on a GPU; library calls: cuDNN-backed Chainer functions)',
              '{:<36} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}'.format(
                  'part', 'batch norm', 'nodes', 'ours ops', 'Chainer ops', 'lib calls',
                  'total')]
    for name, label in measured:
        for variant, work in result['parts'][name].get('device_work', {}).items():
            ops = work['array_operations']
            lines.append('{:<36} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}'.format(
                label[:36], variant, work['function_applications'], ops['ours'],
                ops['chainer'], work['library_calls'], work['device_calls']))
    return lines


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
    header = '{:<50} {:>6} {:>8} {:>9} {:>9} {:>10}'.format(
        'part', 'batch', 'it/epoch', 'ms/iter', 's/epoch', 'images/s')
    header += ' {:>9} {:>8}'.format('host ms', 'first s')
    if gpu:
        header += ' {:>10} {:>10}'.format('pool MiB', 'used MiB')
    lines += [header, '-' * len(header)]
    for name, label in TRAINING_PARTS + ((EVALUATION, 'evaluation (val + test, test mode)'),):
        if name not in result['parts']:
            continue
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
    lines += ['', 'host ms: the Python time of one iteration until the host returns (on a GPU '
              'the kernels run asynchronously: when it is close to ms/iter, the device waits on '
              'Python); first s: the first iteration (kernel compilation on a GPU)']
    if 'step1' in result['parts']:
        lines.append("step 1's end-of-epoch label update: {:.2f} ms (in its s/epoch)".format(
            1000 * result['parts']['step1']['epoch_end_seconds']))
    lines += [''] + format_operations(result)
    crossed = {n: result['parts'][n]['epoch_ends_in_timed_iterations']
               for n, _ in TRAINING_PARTS if n in result['parts']}
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


PART_NAMES = tuple(name for name, _ in TRAINING_PARTS)


def _part_list(text):
    names = [name for name in text.split(',') if name]
    unknown = [name for name in names if name not in PART_NAMES]
    if unknown or not names:
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
                             'measurement)', commands=(BENCHMARK,),
                             choices=tuple(name for name, _ in TRAINING_PARTS))
    start_at: float = option(None, 'with --throughput: the Unix time to start training at',
                             commands=(BENCHMARK,), parse=options.number)
    start_file: str = option(None, 'with --throughput: wait until this file holds the start '
                             'time (each process creates <file>.<pid>.ready when it is ready)',
                             commands=(BENCHMARK,))
    duration: float = option(10.0, 'with --throughput: seconds to train', commands=(BENCHMARK,),
                             parse=options.number, check=options.positive)
    parts: list = option(list(PART_NAMES), 'the training parts to time, comma-separated',
                         commands=(BENCHMARK,), parse=_part_list, render=','.join)
    no_work_count: bool = option(False, "leave out the device work counted on the CPU for each "
                                 'batch normalisation (seconds per part)', commands=(BENCHMARK,),
                                 store_true=True)


def parser():
    p = options.Parser(description=__doc__.split('\n\n')[0],
                       formatter_class=options.HelpFormatter)
    options.add_options(p, config_lib.RunConfig, BENCHMARK)
    options.add_options(p, BenchmarkOptions, BENCHMARK)
    return p


def main(argv=None):
    """Parses ``argv``, runs the benchmark, prints the table, writes ``--json``; returns the
    result. Bad options exit with argparse's message (status 2)."""
    p = parser()
    args = p.parse_args(argv)
    precision.use_tf32(args.tf32)       # before CUDA starts: float32 unless --tf32
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

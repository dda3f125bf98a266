"""The GPU acceptance check: everything a first run on a GPU machine must tell, in one command
and a few minutes.

    make gpu-check                                   # python reproduce/gpu_check.py
    python reproduce/gpu_check.py --device @cupy:0
    python reproduce/gpu_check.py --smoke --device @numpy --out /tmp/x --results /tmp/x

Steps, in order, each timed; a step that fails is reported and the next ones still run:

1. ``tests``: the GPU tests (``pytest -m gpu tests/test_gpu.py``: losses, draws, augmentation,
   one iteration of every updater, label update and evaluation agree on numpy and CuPy).
2. ``training``: every method trained through the table script and the real trainer on the
   device for a short schedule: CIFAR-10 when it is on disk, CIFAR-10-shaped random images
   otherwise; every part must finish with finite losses.
3. ``parity``: one short run of every method on the CPU and on the device (small random
   CIFAR-10-shaped data, the same seeds); every part's first-epoch training loss must agree within
   :data:`PARITY_RTOL`, and its label accuracy within :data:`PARITY_POINTS` points.
4. ``benchmark``: :mod:`reproduce.benchmark` on CIFAR-10-sized data: seconds per epoch of step 1,
   step 2, cross entropy, PENCIL and evaluation, the first iteration (kernel compilation), host
   and synchronised seconds per iteration, peak memory, and the work of one iteration (function
   applications, update operations, device work per batch normalisation).
5. ``variants``: step 1, step 2 and cross entropy timed with each batch normalisation
   (``--batch-norm``), in float32 and TF32; names the faster and whether the default is it.
6. ``concurrency``: k = 1, 2, 4, 8 processes training step 1 on the device at once; images per
   second in total, memory, and the k the runner should use (``--per-device``).

It writes ``<results>/<device name>.json`` and ``.md`` (default ``results/benchmarks/``) with the
provenance of the machine, and prints a summary. ``--smoke`` runs the same steps with tiny
networks and data (the CPU version in the test suite; steps 1 and 3 need a GPU and are skipped on
the CPU, with the reason).
"""
import datetime
import json
import math
import os
import subprocess
import sys
import time

if __package__ in (None, ''):  # run as a file: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import chainer_compat  # noqa: F401,E402  (before chainer)
import chainer  # noqa: E402
import numpy  # noqa: E402

from reproduce import options, plan, precision, provenance, rundir  # noqa: E402
from reproduce.gpu_report import device_slug, markdown, summary_lines  # noqa: E402,F401
from updaters import atomic  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Pure-Python packages carried to a GPU machine without network (make gpu-bundle).
CARRIED = os.path.join(ROOT, '.carry', 'extra')
if os.path.isdir(CARRIED) and CARRIED not in sys.path:
    sys.path.insert(0, CARRIED)
    os.environ['PYTHONPATH'] = os.pathsep.join(
        [CARRIED] + [p for p in [os.environ.get('PYTHONPATH')] if p])
#: First-epoch training losses of the CPU and GPU runs may differ by this much (relative):
#: cuDNN/cuBLAS sum in other orders than numpy, and 5 iterations amplify that a little.
PARITY_RTOL = 0.02
#: ... and the label accuracies by this many percentage points.
PARITY_POINTS = 5.0
#: The methods every run covers.
METHODS = 'cross_entropy,forward_t,tanaka,pencil,ours'
#: Concurrency levels measured.
CONCURRENCY = (1, 2, 4, 8)
#: A k may be recommended when its total throughput is within this share of the best.
GOOD_ENOUGH = 0.95


class Step(object):
    """One step's outcome: status ('passed', 'failed', 'skipped'), seconds, details."""

    def __init__(self, name):
        self.name, self.status, self.details, self.seconds = name, None, {}, 0.0

    def as_dict(self):
        return {'status': self.status, 'seconds': self.seconds, **self.details}


def _python():
    return sys.executable


def _run(command):
    """Runs a command from the repository root; returns (exit status, combined output)."""
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    return done.returncode, done.stdout


def _tail(text, lines=12):
    return '\n'.join(text.strip().splitlines()[-lines:])


def _cifar10_on_disk():
    from reproduce import timing
    return timing.cifar10_in_dataset_root()


# ----------------------------------------------------------------------------------------------
# The steps


def step_tests(step, args, gpu):
    if not gpu:
        step.status, step.details['reason'] = 'skipped', 'the device is the CPU'
        return
    try:
        import pytest  # noqa: F401
    except ImportError:
        step.status = 'skipped'
        step.details['reason'] = 'pytest is not installed here (make gpu-bundle carries it)'
        return
    status, output = _run([_python(), '-m', 'pytest', '-q', '-m', 'gpu', '-rs', '-p',
                           'no:cacheprovider', 'tests/test_gpu.py'])
    summary = [line for line in output.splitlines() if ' passed' in line or ' failed' in line]
    step.details['summary'] = summary[-1] if summary else _tail(output, 3)
    step.status = 'passed' if status == 0 else 'failed'
    if status:
        step.details['output'] = _tail(output, 30)


def step_training(step, args, gpu):
    """Every method through reproduce/table2.py on the device, short."""
    if args.smoke:
        dataset = ['--dataset', 'digits', '--epochs-scale', '0.05']
    else:
        real = _cifar10_on_disk()
        dataset = (['--dataset', 'cifar10'] if real else ['--dataset', 'synthetic']) + [
            '--epochs-scale', '0.02', '--iterations-per-epoch', '10']
    out = os.path.join(args.out, 'training')
    command = [_python(), os.path.join('reproduce', 'table2.py')] + dataset + [
        '--rates', '0.5', '--trials', '1', '--methods', METHODS, '--jobs', '2',
        '--device', args.device, '--out', os.path.join(out, 'runs'),
        '--results', os.path.join(out, 'results')]
    status, output = _run(command)
    step.details['command'] = ' '.join(command[1:])
    step.details['data'] = dataset[1]
    table_path = os.path.join(out, 'results', 'table2.json')
    if status or not os.path.exists(table_path):
        step.status, step.details['output'] = 'failed', _tail(output, 30)
        return
    with open(table_path) as f:
        table = json.load(f)
    losses = {s['part']: s['cells'][0]['mean'] for s in table.get('signals', [])
              if s['quantity'] == 'final_loss'}
    step.details['final_loss'] = losses
    finite = all(v is not None and math.isfinite(v) for v in losses.values())
    every = set(METHODS.split(',')) | {'step1'} <= set(losses)
    step.status = 'passed' if finite and every else 'failed'
    if not (finite and every):
        step.details['problem'] = 'a part did not finish with a finite loss'


def parity_runs(device, out, n_train, iterations):
    """Every method, a short schedule, small random CIFAR-10-shaped data, on ``device``;
    returns {part: log.json entries of its first epoch and its result}."""
    from datasets.synthetic import load_synthetic
    from reproduce import data as data_sets, experiment
    from reproduce.config import RunConfig
    config = RunConfig(dataset='synthetic', noise='symmetric', rate=0.5,
                                  device=device, epochs_scale=0.01, progress=False,
                                  iterations_per_epoch=iterations)
    data = load_synthetic(seed=0, n_train=n_train, n_val=64, n_test=64)
    noisy = data_sets.noisy_labels(config, data)
    experiment.run_with_data(config, data, noisy, out, METHODS.split(','))
    found = {}
    for part in sorted(os.listdir(out)):
        log_path = os.path.join(out, part, rundir.LOG)
        if os.path.exists(log_path):
            with open(log_path) as f:
                log = json.load(f)
            result = rundir.read_result(os.path.join(out, part))
            found[part] = {'first_epoch_loss': log[0]['main/loss'],
                           'labels': (result.get('labels') or {}).get('corrected_accuracy')}
    return found


def compare_parity(cpu, gpu):
    """Lines naming every part whose numbers differ beyond the parity tolerances (empty: agree),
    and the per-part comparison."""
    problems, rows = [], {}
    for part in sorted(set(cpu) | set(gpu)):
        if part not in cpu or part not in gpu:
            problems.append('{}: ran on one device only'.format(part))
            continue
        a, b = cpu[part], gpu[part]
        relative = abs(a['first_epoch_loss'] - b['first_epoch_loss']) / max(
            abs(a['first_epoch_loss']), 1e-12)
        rows[part] = {'cpu_loss': a['first_epoch_loss'], 'device_loss': b['first_epoch_loss'],
                      'relative_difference': relative}
        if not relative <= PARITY_RTOL:
            problems.append('{}: first-epoch loss {:.5f} on the CPU, {:.5f} on the device '
                            '({:.1%} apart, tolerance {:.0%})'.format(
                                part, a['first_epoch_loss'], b['first_epoch_loss'], relative,
                                PARITY_RTOL))
        if a['labels'] is not None and b['labels'] is not None:
            points = 100 * abs(a['labels'] - b['labels'])
            rows[part]['label_accuracy_points_apart'] = points
            if points > PARITY_POINTS:
                problems.append('{}: label accuracy {:.1f} points apart (tolerance {:g})'.format(
                    part, points, PARITY_POINTS))
    return problems, rows


def step_parity(step, args, gpu):
    if not gpu:
        step.status, step.details['reason'] = 'skipped', 'the device is the CPU'
        return
    out = os.path.join(args.out, 'parity')
    cpu = parity_runs('@numpy', os.path.join(out, 'cpu'), 512, 5)
    device = parity_runs(args.device, os.path.join(out, 'device'), 512, 5)
    problems, rows = compare_parity(cpu, device)
    step.details.update(parts=rows, problems=problems)
    step.status = 'failed' if problems else 'passed'


def _benchmark_options(args):
    if args.smoke:
        return ['--model', 'tiny', '--n-train', '256', '--n-val', '64', '--n-test', '64',
                '--batch-size', '32', '--warmup', '1', '--iterations', '2', '--repeats', '2']
    return ['--warmup', '10', '--iterations', '20', '--repeats', '3']


def step_benchmark(step, args, gpu):
    path = os.path.join(args.out, 'benchmark.json')
    command = [_python(), os.path.join('reproduce', 'benchmark.py'), '--device', args.device,
               '--json', path] + _benchmark_options(args)
    status, output = _run(command)
    step.details['command'] = ' '.join(command[1:])
    if status or not os.path.exists(path):
        step.status, step.details['output'] = 'failed', _tail(output, 30)
        return
    with open(path) as f:
        step.details['result'] = json.load(f)
    step.details['report'] = output
    step.status = 'passed'


#: The parts whose speed decides the batch-normalisation default.
VARIANT_PARTS = ('step1', 'step2', 'cross_entropy')


def _variant_options(args):
    if args.smoke:
        return ['--model', 'tiny', '--n-train', '64', '--n-val', '16', '--n-test', '16',
                '--batch-size', '16', '--warmup', '1', '--iterations', '1', '--repeats', '1']
    return ['--warmup', '5', '--iterations', '10', '--repeats', '3']


def compare_variants(runs, default):
    """The faster batch normalisation per precision and part (synchronised ms per iteration),
    and the verdict on ``default``: ``{'faster': {precision: {part: variant}}, 'fastest':
    {precision: variant by the summed ms}, 'verdict': text}``."""
    faster, fastest = {}, {}
    for precision_name in sorted({run['precision'] for run in runs}):
        mine = [run for run in runs if run['precision'] == precision_name]
        faster[precision_name] = {
            part: min(mine, key=lambda run: run['parts'][part]['ms_per_iteration'])['batch_norm']
            for part in VARIANT_PARTS}
        fastest[precision_name] = min(mine, key=lambda run: sum(
            run['parts'][part]['ms_per_iteration'] for part in VARIANT_PARTS))['batch_norm']
    winner = fastest.get('float32')
    if winner is None:
        verdict = 'no float32 measurement'
    elif winner == default:
        verdict = 'the default ({}) is the faster in float32: keep it'.format(default)
    else:
        verdict = ('{} is faster than the default ({}) in float32 over {}: a candidate for the '
                   'default (README, "Batch normalisation")'.format(
                       winner, default, ', '.join(VARIANT_PARTS)))
    return {'faster': faster, 'fastest': fastest, 'verdict': verdict}


def step_variants(step, args, gpu):
    """Step 1, step 2 and cross entropy timed with each batch normalisation, in float32 and
    (on a GPU) TF32: which one the default should be, measured."""
    from models.batch_norm_relu import DEFAULT_VARIANT, VARIANTS
    runs = []
    for tf32 in ((False, True) if gpu else (False,)):
        for variant in VARIANTS:
            name = '{}-{}'.format(variant, 'tf32' if tf32 else 'float32')
            path = os.path.join(args.out, 'variants', name + '.json')
            command = [_python(), os.path.join('reproduce', 'benchmark.py'), '--device',
                       args.device, '--batch-norm', variant, '--parts', ','.join(VARIANT_PARTS),
                       '--no-work-count', '--json', path] + (['--tf32'] if tf32 else []) + \
                _variant_options(args)
            status, output = _run(command)
            if status or not os.path.exists(path):
                step.status = 'failed'
                step.details.update(command=' '.join(command[1:]), output=_tail(output, 30))
                return
            with open(path) as f:
                result = json.load(f)
            runs.append({
                'batch_norm': variant, 'precision': 'tf32' if tf32 else 'float32',
                'tf32_in_force': result['environment']['tf32'],
                'parts': {part: {
                    'ms_per_iteration': 1000 * values['synchronized_seconds_per_iteration'],
                    'host_ms_per_iteration': 1000 * values['host_seconds_per_iteration'],
                    'ms_per_iteration_in_repeats': 1000 * values['seconds_per_iteration']}
                    for part, values in result['parts'].items() if part in VARIANT_PARTS}})
    step.details['runs'] = runs
    step.details['default'] = DEFAULT_VARIANT
    step.details.update(compare_variants(runs, DEFAULT_VARIANT))
    step.status = 'passed'


def step_concurrency(step, args, gpu):
    levels = (1, 2) if args.smoke else CONCURRENCY
    duration = 1.0 if args.smoke else args.duration
    measured = []
    for k in levels:
        folder = os.path.join(args.out, 'concurrency')
        os.makedirs(folder, exist_ok=True)
        start_file = os.path.join(folder, 'start-k{}'.format(k))
        paths = [os.path.join(folder, 'k{}-{}.json'.format(k, i)) for i in range(k)]
        env = dict(os.environ, OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1')
        processes = [subprocess.Popen(
            [_python(), os.path.join('reproduce', 'benchmark.py'), '--device', args.device,
             '--throughput', 'step1', '--start-file', start_file, '--duration', repr(duration),
             '--json', path] + _benchmark_options(args), cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for path in paths]
        _start_together(processes, start_file, k)
        errors = [p.communicate()[1] for p in processes]
        if any(p.returncode for p in processes):
            step.status = 'failed'
            step.details['output'] = _tail(next(e for e, p in zip(errors, processes)
                                                if p.returncode), 20)
            break
        workers = []
        for path in paths:
            with open(path) as f:
                workers.append(json.load(f))
        memories = [w['peak_memory'] for w in workers if w['peak_memory']]
        measured.append({
            'k': k, 'images_per_second': sum(w['images_per_second'] for w in workers),
            'per_process': [w['images_per_second'] for w in workers],
            'latest_start_seconds': max(w['late_by_seconds'] for w in workers),
            'device_used_peak_bytes': max((m['device_used_peak_bytes'] for m in memories),
                                          default=None),
            'pool_peak_bytes_per_process': max((m['pool_peak_bytes'] for m in memories),
                                               default=None)})
    step.details['levels'] = measured
    step.details['duration_seconds'] = duration
    if measured and step.status != 'failed':
        best = max(m['images_per_second'] for m in measured)
        step.details['recommended_per_device'] = min(
            m['k'] for m in measured if m['images_per_second'] >= GOOD_ENOUGH * best)
        step.status = 'passed'


def _start_together(processes, start_file, k, timeout=600):
    """Waits until every process is ready (or one has ended), then writes the common start
    time, a moment ahead, into ``start_file``."""
    folder, name = os.path.split(start_file)
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready = [f for f in os.listdir(folder) if f.startswith(name + '.') and
                 f.endswith('.ready')]
        if len(ready) >= k or any(p.poll() is not None for p in processes):
            break
        time.sleep(0.1)
    atomic.write_text(start_file, repr(time.time() + 0.5))


STEPS = (('tests', step_tests), ('training', step_training), ('parity', step_parity),
         ('benchmark', step_benchmark), ('variants', step_variants),
         ('concurrency', step_concurrency))


def check(args):
    device = chainer.get_device(args.device)
    gpu = device.xp is not numpy
    started = time.time()
    steps = {}
    for name, function in STEPS:
        if name in args.skip:
            steps[name] = {'status': 'skipped', 'seconds': 0.0, 'reason': '--skip'}
            continue
        step = Step(name)
        sys.stdout.write('--- {} ...\n'.format(name))
        sys.stdout.flush()
        t0 = time.time()
        try:
            function(step, args, gpu)
        except Exception as error:       # a broken step is reported; the others still run
            step.status, step.details['error'] = 'failed', '{}: {}'.format(
                type(error).__name__, error)
        step.seconds = time.time() - t0
        steps[name] = step.as_dict()
        sys.stdout.write('    {} ({:.0f} s)\n'.format(step.status, step.seconds))
        sys.stdout.flush()
    total = time.time() - started
    prov = provenance.provenance(args.device)
    record = {'device': prov['device'], 'smoke': args.smoke, 'steps': steps,
              'cudnn': chainer_compat.cudnn_status() if gpu else 'not used on the CPU',
              'kernel_cache': os.environ.get('CUPY_CACHE_DIR'),
              'total_seconds': total,
              'total_seconds_text': '{:.1f} minutes in all'.format(total / 60),
              'provenance': prov,
              'written': datetime.datetime.now(datetime.timezone.utc).isoformat(
                  timespec='seconds')}
    stem = os.path.join(args.results, device_slug(prov['device']))
    atomic.write_json(stem + '.json', record)
    atomic.write_text(stem + '.md', markdown(record))
    sys.stdout.write('\n'.join(summary_lines(record, [stem + '.json', stem + '.md'])) + '\n')
    return 0 if all(s['status'] != 'failed' for s in steps.values()) else 1


def parser():
    p = options.Parser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default='auto',
                   help="'@cupy:0', '@numpy', or auto: the first GPU CuPy sees (default: auto)")
    p.add_argument('--out', default=os.path.join(ROOT, 'runs', 'gpu_check'),
                   help='work folder for the runs (default: runs/gpu_check)')
    p.add_argument('--results', default=plan.BENCHMARKS,
                   help='where the record goes (default: results/benchmarks)')
    p.add_argument('--smoke', action='store_true',
                   help='tiny networks and data: the CPU smoke version (seconds, not minutes)')
    p.add_argument('--duration', type=float, default=12.0,
                   help='seconds each concurrency level trains (default: 12)')
    p.add_argument('--skip', default='', type=lambda text: [s for s in text.split(',') if s],
                   help='comma-separated steps to leave out: ' + ', '.join(n for n, _ in STEPS))
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    unknown = [s for s in args.skip if s not in dict(STEPS)]
    if unknown:
        p.error('unknown step(s) {} in --skip: the steps are {}'.format(
            ', '.join(unknown), ', '.join(n for n, _ in STEPS)))
    from reproduce.experiment import check_device, resolve_device
    asked = args.device
    try:
        check_device(args.device)
    except ValueError as error:
        p.error(str(error))
    args.device = resolve_device(args.device)
    # Before CUDA starts, for this process and every command it runs: float32 (the benchmark's
    # --tf32 runs allow TF32 for themselves), and one kernel cache shared by the benchmark, the
    # variants and the concurrency processes, so that each kernel compiles once.
    precision.use_tf32(False)
    os.environ.setdefault('CUPY_CACHE_DIR', os.path.join(os.path.abspath(args.out),
                                                         'kernel-cache'))
    if args.device == '@numpy' and not args.smoke:
        p.error('no GPU {}: install CuPy for it (pip install -e \'.[cuda12]\') or, on the CPU, '
                'run the smoke version with --smoke'.format(
                    'found (CuPy sees none)' if asked == 'auto' else 'asked for'))
    return check(args)


if __name__ == '__main__':
    sys.exit(main())

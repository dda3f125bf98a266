"""The GPU acceptance check: everything a first run on a GPU machine must tell, in one command
and a few minutes.

Six steps (:data:`STEPS`), each timed, a failed one reported and the next still run: the GPU tests,
every method trained on the device, CPU-device parity, the benchmark, the batch normalisations
timed in float32 and TF32, and k = 1, 2, 4, 8 processes training at once. It writes
``<results>/<device name>.json`` and ``.md`` with the machine's provenance and prints a summary.
``make gpu-check`` runs it; ``--smoke --device @numpy`` is the CPU version (tiny networks and
data) that the tests run.
"""
import datetime
import json
import math
import os
import re
import subprocess
import sys
import time

import atomic_files as atomic
import chainer_compat
from datasets.synthetic import load_synthetic
from models.batch_norm_relu import DEFAULT_VARIANT, VARIANTS
from reproduce import REPOSITORY
from reproduce.batch import plan
from reproduce.run import (data as data_sets, device as device_lib, launch, options, precision,
                           preflight, provenance, rundir)
from reproduce.run.config import RunConfig
from reproduce.tools import benchmark

#: Pure-Python packages carried to a GPU machine without network (make gpu-bundle).
CARRIED = os.path.join(REPOSITORY, '.carry', 'extra')
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


def _run(command):
    """Runs a command from the repository root; returns (exit status, combined output)."""
    done = subprocess.run(command, cwd=REPOSITORY, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    return done.returncode, done.stdout


def _tail(text, lines=12):
    return '\n'.join(text.strip().splitlines()[-lines:])


# ----------------------------------------------------------------------------------------------
# The steps


def step_tests(step, args, gpu):
    """``pytest -m gpu tests/test_gpu.py``: losses, draws, augmentation, one iteration of every
    updater, the label update and evaluation agree on numpy and CuPy."""
    if not gpu:
        step.status, step.details['reason'] = 'skipped', 'the device is the CPU'
        return
    try:
        import pytest  # noqa: F401
    except ImportError:
        step.status = 'skipped'
        step.details['reason'] = 'pytest is not installed here (make gpu-bundle carries it)'
        return
    status, output = _run([sys.executable, '-m', 'pytest', '-q', '-m', 'gpu', '-rs', '-p',
                           'no:cacheprovider', 'tests/test_gpu.py'])
    summary = [line for line in output.splitlines() if ' passed' in line or ' failed' in line]
    step.details['summary'] = summary[-1] if summary else _tail(output, 3)
    step.status = 'passed' if status == 0 else 'failed'
    if status:
        step.details['output'] = _tail(output, 30)


def step_training(step, args, gpu):
    """Every method through reproduce/table2.py and the real trainer on the device, a short
    schedule (CIFAR-10 when it is on disk, else CIFAR-10-shaped random images): every part must
    finish with a finite loss."""
    if args.smoke:
        dataset = ['--dataset', 'digits', '--epochs-scale', '0.05']
    else:
        real = benchmark.cifar10_in_dataset_root()
        dataset = (['--dataset', 'cifar10'] if real else ['--dataset', 'synthetic']) + [
            '--epochs-scale', '0.02', '--iterations-per-epoch', '10']
    out = os.path.join(args.out, 'training')
    command = [sys.executable, os.path.join('reproduce', 'table2.py')] + dataset + [
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
    config = RunConfig(dataset='synthetic', noise='symmetric', rate=0.5, device=device,
                       epochs_scale=0.01, progress=False, iterations_per_epoch=iterations)
    data = load_synthetic(seed=0, n_train=n_train, n_val=64, n_test=64)
    noisy = data_sets.noisy_labels(config, data)
    launch.run_with_data(config, data, noisy, out, METHODS.split(','))
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
    """One short run of every method on the CPU and on the device (small random data, the same
    seeds): first-epoch losses within :data:`PARITY_RTOL`, label accuracies within
    :data:`PARITY_POINTS` points."""
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


def _benchmark(args, *extra):
    """The command line of reproduce/benchmark.py on the checked device."""
    return [sys.executable, os.path.join('reproduce', 'benchmark.py'), '--device',
            args.device] + list(extra)


def _benchmark_result(step, command, path):
    """Runs a benchmark that writes ``path``; returns (its result, its output), or (None, its
    output) with the step failed."""
    status, output = _run(command)
    if status or not os.path.exists(path):
        step.status = 'failed'
        step.details.update(command=' '.join(command[1:]), output=_tail(output, 30))
        return None, output
    with open(path) as f:
        return json.load(f), output


def step_benchmark(step, args, gpu):
    """:mod:`reproduce.tools.benchmark` on CIFAR-10-sized data: every part's seconds per epoch,
    first iteration, host and synchronised seconds per iteration, memory and work."""
    path = os.path.join(args.out, 'benchmark.json')
    command = _benchmark(args, '--json', path, *_benchmark_options(args))
    step.details['command'] = ' '.join(command[1:])
    result, output = _benchmark_result(step, command, path)
    if result is not None:
        step.details.update(result=result, report=output)
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
    """Step 1, step 2 and cross entropy timed with each batch normalisation (``--batch-norm``),
    in float32 and (on a GPU) TF32: which one the default should be, measured."""
    runs = []
    for tf32 in ((False, True) if gpu else (False,)):
        for variant in VARIANTS:
            name = '{}-{}'.format(variant, 'tf32' if tf32 else 'float32')
            path = os.path.join(args.out, 'variants', name + '.json')
            command = _benchmark(args, '--batch-norm', variant, '--parts',
                                 ','.join(VARIANT_PARTS), '--no-work-count', '--json', path,
                                 *(['--tf32'] if tf32 else []), *_variant_options(args))
            result, _ = _benchmark_result(step, command, path)
            if result is None:
                return
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
    """k processes training step 1 on the device at once, for each k of :data:`CONCURRENCY`:
    images per second in total, memory, and the k the runner should use (``--per-device``)."""
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
            _benchmark(args, '--throughput', 'step1', '--start-file', start_file, '--duration',
                       repr(duration), '--json', path, *_benchmark_options(args)),
            cwd=REPOSITORY, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True) for path in paths]
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


#: The steps, in order.
STEPS = (('tests', step_tests), ('training', step_training), ('parity', step_parity),
         ('benchmark', step_benchmark), ('variants', step_variants),
         ('concurrency', step_concurrency))


# ----------------------------------------------------------------------------------------------
# The record as text: the Markdown file beside its JSON, and the printed summary


def device_slug(description):
    """A file name for the device: 'GPU 0 (NVIDIA H200)' -> 'nvidia-h200'."""
    name = re.sub(r'^GPU \d+ \((.*)\)$', r'\1', description)
    return re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-') or 'device'


def _note(step):
    """What a step's line says beside its status: its problems, or why it was skipped, or its
    test summary."""
    return ('; '.join(step.get('problems', [])) or step.get('reason') or step.get('summary')
            or step.get('problem') or '')


def markdown(record):
    lines = ['# GPU acceptance check: {}'.format(record['device']), '',
             'Measured by `reproduce/gpu_check.py{}` at commit {} on {}; {}.'.format(
                 ' --smoke' if record['smoke'] else '', record['provenance']['commit'],
                 record['provenance']['date'][:10], record['total_seconds_text']), '',
             '| step | status | seconds | |', '|---|---|---|---|']
    for name, step in record['steps'].items():
        lines.append('| {} | {} | {:.0f} | {} |'.format(name, step['status'], step['seconds'],
                                                        _note(step)))
    if record.get('cudnn'):
        lines += ['', 'cuDNN: {}'.format(record['cudnn'])]
    if record['steps']['benchmark'].get('result'):
        lines += ['', '## Benchmark', '', '```', record['steps']['benchmark']['report'].rstrip(),
                  '```']
    lines += variant_lines(record['steps'].get('variants', {}))
    levels = record['steps']['concurrency'].get('levels')
    if levels:
        lines += ['', '## Runs per device', '',
                  '| processes | images/s in total | per process | device memory in use |',
                  '|---|---|---|---|']
        for m in levels:
            used = m['device_used_peak_bytes']
            lines.append('| {} | {:.0f} | {} | {} |'.format(
                m['k'], m['images_per_second'],
                ', '.join('{:.0f}'.format(v) for v in m['per_process']),
                '–' if used is None else '{:.1f} GiB'.format(used / 2.0 ** 30)))
        lines += ['', 'Recommended `--per-device`: {}'.format(
            record['steps']['concurrency'].get('recommended_per_device'))]
    return '\n'.join(lines) + '\n'


def variant_lines(variants):
    """The batch-normalisation comparison as a Markdown section (empty when not measured)."""
    runs = variants.get('runs')
    if not runs:
        return []
    parts = list(runs[0]['parts'])
    lines = ['', '## Batch normalisation: synchronised ms per iteration (host ms)', '',
             '| batch norm | precision | ' + ' | '.join(parts) + ' |',
             '|---|---|' + '---|' * len(parts)]
    for run in runs:
        lines.append('| {} | {} | {} |'.format(run['batch_norm'], run['precision'], ' | '.join(
            '{:.2f} ({:.2f})'.format(run['parts'][p]['ms_per_iteration'],
                                     run['parts'][p]['host_ms_per_iteration']) for p in parts)))
    lines += ['', 'Faster by part: {}.'.format('; '.join(
        '{}: {}'.format(precision, ', '.join('{} {}'.format(p, v) for p, v in by_part.items()))
        for precision, by_part in variants['faster'].items())),
        '', 'Default `{}`: {}.'.format(variants['default'], variants['verdict'])]
    return lines


def summary_lines(record, paths):
    lines = ['GPU acceptance check on {} ({}):'.format(record['device'],
                                                        record['total_seconds_text'])]
    for name, step in record['steps'].items():
        lines.append('  {:<12} {:<8} {:>5.0f} s  {}'.format(name, step['status'], step['seconds'],
                                                            _note(step)))
    bench = record['steps']['benchmark'].get('result')
    if bench:
        for part, values in bench['parts'].items():
            text = '{:.1f} s/epoch'.format(values['seconds_per_epoch'])
            if 'operations' in values:
                text += ', {} function applications and {} update operations per iteration'.format(
                    values['operations']['function_applications'],
                    values['operations']['update_operations'])
            lines.append('    {:<14} {}'.format(part, text))
    variants = record['steps'].get('variants', {})
    if variants.get('verdict'):
        lines.append('  batch normalisation: {}'.format(variants['verdict']))
    if record.get('cudnn'):
        lines.append('  cuDNN: {}'.format(record['cudnn']))
    recommended = record['steps']['concurrency'].get('recommended_per_device')
    if recommended:
        lines.append('  recommended runs per device: {}'.format(recommended))
    lines.append('written: {}'.format(', '.join(paths)))
    return lines


# ----------------------------------------------------------------------------------------------
# Command line


def check(args):
    """Runs every step not in ``--skip``, writes the record, prints the summary; returns the exit
    status (1 when a step failed)."""
    gpu = device_lib.is_gpu(args.device)
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
    p.add_argument('--out', default=os.path.join(REPOSITORY, 'runs', 'gpu_check'),
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
    """The command line; bad options, a device Chainer refuses and output folders that cannot be
    written exit with one line (status 2) before anything runs."""
    p = parser()
    args = p.parse_args(argv)
    unknown = [s for s in args.skip if s not in dict(STEPS)]
    if unknown:
        p.error('unknown step(s) {} in --skip: the steps are {}'.format(
            ', '.join(unknown), ', '.join(n for n, _ in STEPS)))
    asked = args.device
    try:
        device_lib.check(args.device)
    except ValueError as error:
        p.error(str(error))
    args.device = device_lib.resolve(args.device)
    try:
        preflight.folder(args.out, '--out')
        preflight.folder(args.results, '--results')
    except ValueError as error:
        p.error(str(error))
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


"""The steps of the GPU check (:mod:`reproduce.tools.gpu_check`): each runs in a process of its
own and returns a JSON-ready dict with a ``status``; and the CPU reference of the parity step
(``python -m reproduce.tools.gpu_check --parity-reference``)."""
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time

import atomic_files as atomic
import chainer_compat
from reproduce import REPOSITORY
from reproduce.run import data as data_sets, launch, provenance, rundir
from reproduce.run.config import RunConfig

#: The methods the parity and training steps run.
METHODS = ('cross_entropy', 'forward_t', 'tanaka', 'pencil', 'ours')
#: The parity configuration: every part with the digits settings (small network, short
#: schedules) on random 1x8x8 images (:data:`PARITY_DATA`: no scikit-learn needed on the GPU node).
PARITY = dict(dataset='digits', noise='symmetric', rate=0.4, epochs_scale=0.05,
              iterations_per_epoch=4, progress=False)
PARITY_DATA = dict(seed=0, n_train=256, n_val=64, n_test=64, shape=(1, 8, 8))
PARITY_REFERENCE = os.path.join(REPOSITORY, 'results', 'recorded', 'gpu_parity_reference.json')
#: Device and CPU may differ by this much: every epoch's loss (relative), accuracies (points).
PARITY_RTOL, PARITY_POINTS = 0.02, 5.0
#: Runs per GPU measured, and how long each level trains (seconds; --smoke: 1 and 2, 1 s).
CONCURRENCY, THROUGHPUT_SECONDS = (1, 2, 4), 6.0
#: A k may be recommended when its total throughput is within this share of the best.
GOOD_ENOUGH = 0.95

def _run(command, timeout=None, env=None):
    """(exit status, combined output) of a command run from the repository root."""
    done = subprocess.run(command, cwd=REPOSITORY, stdout=subprocess.PIPE, env=env,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return done.returncode, done.stdout


def tail(text, lines=12):
    return '\n'.join((text or '').strip().splitlines()[-lines:])


def step_probe(args):
    """Versions, whether Chainer can use CUDA (and why not), the device and its memory."""
    import chainer
    found = {'python': platform.python_version()}
    try:
        import matplotlib
        found['matplotlib'] = matplotlib.__version__
    except Exception as error:          # a missing or broken matplotlib: the figures only
        found['matplotlib'] = 'not importable ({}: {})'.format(type(error).__name__, error)
    cuda = chainer.backends.cuda
    found.update(numpy=__import__('numpy').__version__, chainer=chainer.__version__,
                 cuda_available=bool(cuda.available), cudnn=chainer_compat.cudnn_status())
    if not cuda.available:
        found['resolution_error'] = repr(getattr(cuda, '_resolution_error', None))
    devices = 0
    try:
        import cupy
        runtime = cupy.cuda.runtime
        found.update(cupy=cupy.__version__, cuda_runtime=runtime.runtimeGetVersion(),
                     cuda_driver=runtime.driverGetVersion())
        devices = runtime.getDeviceCount()
        found['gpu'] = runtime.getDeviceProperties(0)['name'].decode()
        found['free_bytes'], found['total_bytes'] = runtime.memGetInfo()
        found['cublas'] = cupy.cuda.cublas.getVersion(cupy.cuda.device.get_cublas_handle())
    except Exception as error:          # no CuPy, no driver, no device: recorded, not raised
        found['cupy_error'] = '{}: {}'.format(type(error).__name__, (str(error).splitlines()
                                                                     or [''])[0])
    if args.device == 'auto':
        args.device = '@cupy:0' if devices and cuda.available else '@numpy'
    found['device'] = args.device
    found['provenance'] = provenance.provenance(args.device)
    usable = '@cupy' in args.device or args.smoke
    found['status'] = 'passed' if usable else 'failed'
    if not usable:
        found['problem'] = 'no GPU Chainer can use: ' + found.get(
            'resolution_error', found.get('cupy_error', 'CuPy sees no device'))
    return found


def parity_numbers(device, out):
    """Every part of :data:`PARITY` trained on ``device`` in a fresh ``out``: {part: its
    per-epoch losses, last test accuracy and corrected-label accuracy}."""
    from datasets.synthetic import load_synthetic
    shutil.rmtree(out, ignore_errors=True)
    config = RunConfig(device=device, **PARITY)
    data = load_synthetic(**PARITY_DATA)
    launch.run_with_data(config, data, data_sets.noisy_labels(config, data), out, list(METHODS))
    numbers = {}
    for part in sorted(os.listdir(out)):
        if os.path.exists(os.path.join(out, part, rundir.LOG)):
            with open(os.path.join(out, part, rundir.LOG)) as f:
                log = json.load(f)
            result = rundir.read_result(os.path.join(out, part))
            numbers[part] = {'losses': [entry['main/loss'] for entry in log],
                             'accuracy': result['last_test'],
                             'labels': (result.get('labels') or {}).get('corrected_accuracy')}
    return numbers


def compare_parity(reference, measured):
    """Lines naming every difference beyond :data:`PARITY_RTOL` / :data:`PARITY_POINTS` (empty:
    the device reproduces the reference)."""
    problems = []
    for part in sorted(set(reference) | set(measured)):
        if part not in reference or part not in measured:
            problems.append('{}: in one of the two only'.format(part))
            continue
        a, b = reference[part], measured[part]
        if len(a['losses']) != len(b['losses']):
            problems.append('{}: {} epochs against {}'.format(part, len(a['losses']),
                                                               len(b['losses'])))
        for epoch, (x, y) in enumerate(zip(a['losses'], b['losses']), 1):
            if not abs(x - y) <= PARITY_RTOL * abs(x) + 1e-4:
                problems.append('{}: epoch {} loss {:.5f} against {:.5f} (tolerance {:.0%})'
                                .format(part, epoch, x, y, PARITY_RTOL))
        for key in ('accuracy', 'labels'):
            if a[key] is not None and not 100 * abs(a[key] - (b[key] or 0)) <= PARITY_POINTS:
                problems.append('{}: {} {:.1f} % against {} (tolerance {:g} points)'.format(
                    part, key, 100 * a[key], b[key], PARITY_POINTS))
    return problems


def step_parity(args):
    """Every part on a tiny configuration, compared with the CPU reference in the repository."""
    with open(PARITY_REFERENCE) as f:
        reference = json.load(f)['parts']
    measured = parity_numbers(args.device, os.path.join(args.out, 'parity'))
    problems = compare_parity(reference, measured)
    return {'status': 'failed' if problems else 'passed', 'problems': problems, 'parts': measured}


def _benchmark_argv(args, *extra):
    sizes = (['--model', 'tiny', '--n-train', '256', '--n-val', '64', '--n-test', '64',
              '--batch-size', '32', '--warmup', '1', '--iterations', '2', '--repeats', '2']
             if args.smoke else ['--warmup', '3', '--iterations', '10', '--repeats', '2'])
    return ['--device', args.device] + sizes + list(extra)


def step_benchmark(args, tf32=False):
    """Seconds per iteration of every part of PreAct ResNet-32 at batch 128, one evaluation
    pass, peak memory (what the plan and ``--per-device`` read)."""
    from reproduce.tools import benchmark
    extra = ['--tf32', '--parts', 'step1,step2'] if tf32 else []
    result = benchmark.main(_benchmark_argv(args, '--json', os.path.join(
        args.out, 'benchmark{}.json'.format('-tf32' if tf32 else '')), *extra))
    return {'status': 'passed', 'result': result, 'report': benchmark.format_report(result)}


def step_tests(args):
    """``pytest -m gpu tests/test_gpu.py``: every part agrees on numpy and CuPy."""
    if '@cupy' not in args.device:
        return {'status': 'skipped', 'reason': 'the device is the CPU'}
    status, output = _run([sys.executable, '-m', 'pytest', '-q', '-m', 'gpu', '-rs', '-p',
                           'no:cacheprovider', 'tests/test_gpu.py'])
    summary = [line for line in output.splitlines() if ' passed' in line or ' failed' in line]
    return {'status': 'passed' if status == 0 else 'failed',
            'summary': summary[-1] if summary else tail(output, 3),
            **({'output': tail(output, 30)} if status else {})}


def step_concurrency(args):
    """k processes training step 1 at once for each k of :data:`CONCURRENCY`: images per second
    in total, memory, and the k to give ``--per-device``."""
    levels, seconds = ((1, 2), 1.0) if args.smoke else (CONCURRENCY, THROUGHPUT_SECONDS)
    folder = os.path.join(args.out, 'concurrency')
    os.makedirs(folder, exist_ok=True)
    measured = []
    for k in levels:
        start = os.path.join(folder, 'start-k{}'.format(k))
        paths = [os.path.join(folder, 'k{}-{}.json'.format(k, i)) for i in range(k)]
        env = dict(os.environ, OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1')
        processes = [subprocess.Popen(
            [sys.executable, os.path.join('reproduce', 'benchmark.py')] + _benchmark_argv(
                args, '--throughput', 'step1', '--start-file', start, '--duration',
                repr(seconds), '--json', path), cwd=REPOSITORY, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for path in paths]
        _start_together(processes, start, k)
        errors = [p.communicate()[1] for p in processes]
        if any(p.returncode for p in processes):
            return {'status': 'failed', 'levels': measured, 'output': tail(next(
                e for e, p in zip(errors, processes) if p.returncode), 20)}
        workers = [rundir.read_json(path) for path in paths]
        memories = [w['peak_memory'] for w in workers if w['peak_memory']]
        measured.append({
            'k': k, 'images_per_second': sum(w['images_per_second'] for w in workers),
            'per_process': [w['images_per_second'] for w in workers],
            'device_used_peak_bytes': max((m['device_used_peak_bytes'] for m in memories),
                                          default=None)})
    best = max(m['images_per_second'] for m in measured)
    return {'status': 'passed', 'levels': measured, 'seconds_each': seconds,
            'recommended_per_device': min(m['k'] for m in measured
                                          if m['images_per_second'] >= GOOD_ENOUGH * best)}


def _start_together(processes, start_file, k, timeout=300):
    """Waits until every process is ready (or one has ended), then writes the common start."""
    folder, name = os.path.split(start_file)
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready = [f for f in os.listdir(folder) if f.startswith(name + '.') and
                 f.endswith('.ready')]
        if len(ready) >= k or any(p.poll() is not None for p in processes):
            break
        time.sleep(0.1)
    atomic.write_text(start_file, repr(time.time() + 0.5))


def step_training(args):
    """Every method through reproduce/table2.py on the device, a short schedule: each part must
    end with a finite loss."""
    from reproduce.tools.benchmark import cifar10_in_dataset_root
    data = (['--dataset', 'digits', '--epochs-scale', '0.05'] if args.smoke else
            ['--dataset', 'cifar10' if cifar10_in_dataset_root() else 'synthetic',
             '--epochs-scale', '0.02', '--iterations-per-epoch', '10'])
    out = os.path.join(args.out, 'training')
    command = [sys.executable, os.path.join('reproduce', 'table2.py')] + data + [
        '--rates', '0.5', '--trials', '1', '--methods', ','.join(METHODS), '--jobs', '2',
        '--device', args.device, '--out', os.path.join(out, 'runs'),
        '--results', os.path.join(out, 'results')]
    status, output = _run(command)
    table = rundir.read_json(os.path.join(out, 'results', 'table2.json')) or {}
    losses = {s['part']: s['cells'][0]['mean'] for s in table.get('signals', [])
              if s['quantity'] == 'final_loss'}
    good = (status == 0 and set(METHODS) | {'step1'} <= set(losses) and
            all(v is not None and math.isfinite(v) for v in losses.values()))
    return {'status': 'passed' if good else 'failed', 'data': data[1], 'final_loss': losses,
            'command': ' '.join(command[1:]), **({} if good else {'output': tail(output, 30)})}


def tf32_matmul_speedup():
    """How much faster one 4096 x 4096 float32 product runs with CuPy's TF32 compute type than
    with its pedantic one: about 1 where cuBLAS is barred from TF32 (NVIDIA_TF32_OVERRIDE=0)."""
    import cupy
    from cupy._core import _routines_linalg as linalg
    a = cupy.random.rand(4096, 4096, dtype=cupy.float32)
    times = {}
    for name in ('COMPUTE_TYPE_PEDANTIC', 'COMPUTE_TYPE_TF32'):
        linalg.set_compute_type(cupy.float32, getattr(linalg, name))
        a.dot(a)
        cupy.cuda.Device().synchronize()
        started = time.perf_counter()
        for _ in range(5):
            a.dot(a)
        cupy.cuda.Device().synchronize()
        times[name] = time.perf_counter() - started
    linalg.set_compute_type(cupy.float32, linalg.COMPUTE_TYPE_TF32)
    return times['COMPUTE_TYPE_PEDANTIC'] / times['COMPUTE_TYPE_TF32']


def step_tf32(args):
    """Step 1 and step 2 timed with TF32 allowed (the environment set before this process
    started), TF32 confirmed by timing one matrix product each way."""
    if '@cupy' not in args.device:
        return {'status': 'skipped', 'reason': 'the device is the CPU'}
    speedup = tf32_matmul_speedup()
    found = step_benchmark(args, tf32=True)
    found.update(matmul_tf32_speedup=speedup, tf32_confirmed=speedup > 1.3)
    return found


def make_parity_reference(path=PARITY_REFERENCE):
    """Computes the parity reference on the CPU and writes it to ``path``."""
    import tempfile
    with tempfile.TemporaryDirectory() as work:
        parts = parity_numbers('@numpy', os.path.join(work, 'parity'))
    atomic.write_json(path, {'configuration': PARITY, 'data': PARITY_DATA,
                             'methods': list(METHODS), 'parts': parts,
                             'command': 'python -m reproduce.tools.gpu_check --parity-reference',
                             'provenance': provenance.provenance('@numpy')})
    return parts

"""The GPU acceptance check: what a first run on a GPU machine must tell, within a time budget.

Seven steps (:data:`STEPS`), in order of value: probe, parity against the CPU reference kept in
the repository, benchmark, the GPU tests, runs per GPU, every method through ``table2.py``, TF32.
Each step runs in a process of its own (``--step NAME``) with its own timeout; this process never
starts CUDA, so the steps' memory figures are their own. A step whose estimate no longer fits in
``--budget`` seconds is skipped, with the reason. The record (``<results>/<device>.json`` and
``.md``) is written again after every step: a check stopped at any moment leaves every finished
step on disk. ``--smoke --device @numpy`` is the CPU version (tiny networks and data) the tests
run; ``--parity-reference`` computes the CPU reference the parity step compares with.
"""
import argparse
import datetime
import os
import re
import signal
import subprocess
import sys
import time

import atomic_files as atomic
from reproduce import REPOSITORY
from reproduce.batch import plan
from reproduce.run import options, precision, preflight, rundir
from reproduce.tools import gpu_steps
from reproduce.tools.gpu_steps import tail

#: Each step: (name, estimated seconds on an H100 without cuDNN, on the CPU with --smoke).
#: reproduce/README.md ("GPU check") gives the arithmetic.
STEPS = (('probe', 10, 10), ('parity', 45, 60), ('benchmark', 55, 40), ('tests', 60, 5),
         ('concurrency', 60, 40), ('training', 70, 90), ('tf32', 30, 5))
NAMES = tuple(name for name, _, _ in STEPS)


def device_slug(description):
    """A file name for the device: 'GPU 0 (NVIDIA H200)' -> 'nvidia-h200'."""
    name = re.sub(r'^GPU \d+ \((.*)\)$', r'\1', description)
    return re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-') or 'device'


def _note(step):
    return ('; '.join(step.get('problems', [])) or step.get('reason') or step.get('problem')
            or step.get('summary') or step.get('error') or '')


def markdown(record):
    prov = record['provenance']
    lines = ['# GPU check: {}'.format(record['device']), '',
             'Measured by `reproduce/gpu_check.py{}` (budget {} s) at commit {} on {}.'.format(
                 ' --smoke' if record['smoke'] else '', record['budget'], prov.get('commit'),
                 str(prov.get('date'))[:10]), '',
             '| step | status | seconds | |', '|---|---|---|---|']
    lines += ['| {} | {} | {:.0f} | {} |'.format(name, step['status'], step['seconds'],
                                                 _note(step).replace('|', '/'))
              for name, step in record['steps'].items()]
    for name in ('benchmark', 'tf32'):
        if record['steps'].get(name, {}).get('report'):
            lines += ['', '## {}'.format(name), '', '```',
                      record['steps'][name]['report'].rstrip(), '```']
    levels = record['steps'].get('concurrency', {}).get('levels')
    if levels:
        lines += ['', '## Runs per device', '', '| processes | images/s in total | per process |',
                  '|---|---|---|']
        lines += ['| {} | {:.0f} | {} |'.format(m['k'], m['images_per_second'], ', '.join(
            '{:.0f}'.format(v) for v in m['per_process'])) for m in levels]
    return '\n'.join(lines) + '\n'


def write_record(record, results):
    """Writes ``<results>/<device>.json`` and ``.md`` (whole files, atomically); their paths."""
    stem = os.path.join(results, device_slug(record['device']))
    atomic.write_json(stem + '.json', record)
    atomic.write_text(stem + '.md', markdown(record))
    return [stem + '.json', stem + '.md']


def _child_environment(name, out):
    """The step's environment, built before it starts: float32 (TF32 for the tf32 step) and
    one kernel cache for every step."""
    env = dict(os.environ)
    precision.use_tf32(name == 'tf32', env)
    env.setdefault('CUPY_CACHE_DIR', os.path.join(os.path.abspath(out), 'kernel-cache'))
    return env


def _kill_tree(pid):
    """SIGKILL ``pid`` and every process below it (a step's runs and benchmarks)."""
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += [int(p) for p in subprocess.run(['ps', '-o', 'pid=', '--ppid', str(found[-1])],
                                                stdout=subprocess.PIPE, text=True).stdout.split()]
    for each in found:
        try:
            os.kill(each, signal.SIGKILL)
        except OSError:                  # ended meanwhile
            pass


def run_step(name, args, timeout):
    """Runs one step in a child process; its dict, or a failed one saying what happened."""
    path = os.path.join(args.out, 'steps', name + '.json')
    if os.path.exists(path):
        os.remove(path)
    child = subprocess.Popen(
        [sys.executable, '-m', 'reproduce.tools.gpu_check', '--step', name, '--device',
         args.device, '--out', args.out] + (['--smoke'] if args.smoke else []), cwd=REPOSITORY,
        env=_child_environment(name, args.out), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        output = child.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        _kill_tree(child.pid)
        return {'status': 'failed', 'error': 'stopped after its {:.0f} s'.format(timeout),
                'output': tail(child.communicate()[0], 20)}
    found = rundir.read_json(path)
    return found if found is not None else {
        'status': 'failed', 'error': 'exit status {}'.format(child.returncode),
        'output': tail(output, 30)}


def check(args):
    """Runs the steps within ``--budget``, writing the record after each; exit status 1 when a
    step failed."""
    started, steps, paths = time.time(), {}, []
    record = {'device': 'unknown device', 'smoke': args.smoke, 'budget': args.budget,
              'steps': steps, 'provenance': {}}
    for name, estimate, smoke_estimate in STEPS:
        estimate = smoke_estimate if args.smoke else estimate
        left = args.budget - (time.time() - started)
        if name in args.skip:
            steps[name] = {'status': 'skipped', 'seconds': 0.0, 'reason': '--skip'}
        elif steps.get('probe', {}).get('status') == 'failed':
            steps[name] = {'status': 'skipped', 'seconds': 0.0, 'reason': 'the probe failed'}
        elif estimate > left:
            steps[name] = {'status': 'skipped', 'seconds': 0.0, 'reason': (
                'would not fit: estimated {} s, {:.0f} s left of --budget {:g}'.format(
                    estimate, max(left, 0), args.budget))}
        else:
            print('--- {} (estimated {} s, {:.0f} s left) ...'.format(name, estimate, left),
                  flush=True)
            t0 = time.time()
            steps[name] = dict(run_step(name, args, timeout=max(left, 1)),
                               seconds=time.time() - t0)
        if name == 'probe' and 'provenance' in steps[name]:
            args.device = steps[name]['device']
            record['provenance'] = steps[name]['provenance']
            record['device'] = ('GPU 0 ({})'.format(steps[name]['gpu']) if steps[name].get('gpu')
                                else record['provenance']['device'])
        record['total_seconds'] = time.time() - started
        record['written'] = datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds')
        paths = write_record(record, args.results)
        print('    {} ({:.0f} s) {}'.format(steps[name]['status'], steps[name]['seconds'],
                                            _note(steps[name])[:200]), flush=True)
    print('written: {}'.format(', '.join(paths)))
    return 0 if all(s['status'] != 'failed' for s in steps.values()) else 1


def parser():
    p = options.Parser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default='auto',
                   help="'@cupy:0', '@numpy', or auto: the first GPU CuPy sees (default: auto)")
    p.add_argument('--budget', type=options.number, default=300.0,
                   help='seconds in all; a step whose estimate does not fit is skipped '
                        '(default: 300)')
    p.add_argument('--out', default=os.path.join(REPOSITORY, 'runs', 'gpu_check'),
                   help='work folder (default: runs/gpu_check)')
    p.add_argument('--results', default=plan.BENCHMARKS,
                   help='where the record goes (default: results/benchmarks)')
    p.add_argument('--smoke', action='store_true',
                   help='tiny networks and data: the CPU version the tests run')
    p.add_argument('--skip', default='', type=lambda text: [s for s in text.split(',') if s],
                   help='comma-separated steps to leave out: ' + ', '.join(NAMES))
    p.add_argument('--parity-reference', action='store_true',
                   help='instead: compute the CPU reference of the parity step and write it to '
                        'results/recorded/gpu_parity_reference.json')
    p.add_argument('--step', choices=NAMES, help=argparse.SUPPRESS)   # a child's one step
    return p


def main(argv=None):
    """The command line; bad options and unwritable folders exit with one line (status 2)
    before anything runs."""
    p = parser()
    args = p.parse_args(argv)
    if args.parity_reference:
        gpu_steps.make_parity_reference()
        print('written: {}'.format(gpu_steps.PARITY_REFERENCE))
        return 0
    if args.step:
        found = getattr(gpu_steps, 'step_' + args.step)(args)
        atomic.write_json(os.path.join(args.out, 'steps', args.step + '.json'), found)
        return 0
    unknown = [s for s in args.skip if s not in NAMES]
    if unknown:
        p.error('unknown step(s) {} in --skip: the steps are {}'.format(
            ', '.join(unknown), ', '.join(NAMES)))
    if args.device not in ('auto', '@numpy') and not args.device.startswith('@cupy'):
        p.error("--device takes '@cupy:<id>', '@numpy' or auto, got {!r}".format(args.device))
    if args.device == '@numpy' and not args.smoke:
        p.error('no GPU asked for: a GPU check needs one; on the CPU, run the smoke version '
                'with --smoke')
    if not args.budget > 0:
        p.error('--budget takes a positive number of seconds')
    try:
        preflight.folder(args.out, '--out')
        preflight.folder(args.results, '--results')
    except ValueError as error:
        p.error(str(error))
    return check(args)


if __name__ == '__main__':
    sys.exit(main())

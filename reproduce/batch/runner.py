"""Many runs of :mod:`reproduce.experiment`: planning them, running them a few at a time, and
showing where the whole table stands.

A :class:`Unit` is one self-contained command: the methods of one (noise, rate, trial) that must
share a process. Units never depend on each other (any order, side by side, other machines);
each writes only below its run directory and resumes what is unfinished.
"""
import dataclasses
import glob
import os
import shlex
import subprocess
import sys
import time

from reproduce import REPOSITORY
from reproduce.batch import plan as plan_lib
from reproduce.run.config import RunConfig
from reproduce.run import (config as config_lib, device as device_lib, methods as methods_lib,
                           provenance, rundir)

#: The single-run command, by its path (it runs from any directory, environment active or not).
EXPERIMENT = os.path.join(REPOSITORY, 'reproduce', 'experiment.py')


@dataclasses.dataclass
class Unit:
    """One command: ``methods`` of one run configuration, in ``root/<config.name()>``."""

    config: RunConfig
    methods: tuple
    root: str

    @property
    def run_dir(self):
        return os.path.join(self.root, self.config.name())

    @property
    def label(self):
        c = self.config
        setting = c.noise if c.spec.real_noise else '{} {:g}%'.format(c.noise, 100 * c.rate)
        return '{} trial {} [{}]'.format(setting, c.trial, '+'.join(self.methods))

    @property
    def parts(self):
        """The part directories this unit fills, in the order it runs them."""
        return methods_lib.parts_of(self.methods, self.config)

    @property
    def log_path(self):
        return rundir.output_path(self.run_dir, self.methods)

    def epochs(self):
        """Epochs this unit trains in all, by part."""
        settings = self.config.settings()
        return {p: settings[p if p in ('step1', 'pencil') else 'step2']['epochs']
                for p in self.parts}

    def epochs_done(self):
        """Epochs finished so far, by part (from each part's result or per-epoch log)."""
        return {part: rundir.epochs_done(os.path.join(self.run_dir, part)) for part in self.parts}

    def finished(self):
        return all(rundir.finished(os.path.join(self.run_dir, p)) for p in self.parts)

    @property
    def config_path(self):
        return os.path.abspath(os.path.join(self.run_dir, rundir.CONFIG))

    def write_config(self):
        """Writes the run folder's ``config.json``, or checks the one there
        (:class:`rundir.SettingsMismatchError`); returns what changed in how the run starts."""
        return rundir.claim(self.run_dir, self.config.identity(), config_lib.defaults_identity(),
                            self.config.launch(), new_launch=True)

    def command(self, device=None, quiet=False, kernel_cache=None):
        """The command line (a list) that runs this unit from its ``config.json``, its
        environment first (:func:`run_environment`): the same wherever and however it starts."""
        words = ['env'] + ['{}={}'.format(k, v) for k, v in sorted(run_environment(
            device or self.config.device, kernel_cache).items())] + [
            sys.executable, EXPERIMENT, '--config', self.config_path,
            '--methods', ','.join(self.methods)]
        return words + (['--device', device] if device else []) + (['--quiet'] if quiet else [])


def plan(base, rates, trials, methods, root):
    """The units of a table: for every trial (outermost, so that a table filled part-way has
    as many trials in every cell) and rate, each group of methods that must share a process
    (:func:`reproduce.run.methods.groups_of`). ``base``: the RunConfig fields of all runs."""
    methods_lib.check_methods(methods)
    return [Unit(config, group, root) for trial in trials for rate in rates
            for config in [RunConfig(rate=rate, trial=trial, **base)]
            for group in methods_lib.groups_of(methods, config)]


def write_configs(units):
    """Writes (or checks) the ``config.json`` of every unit before anything starts; says in one
    line where how the runs start changed."""
    changed = {}
    for unit in units:
        for change in unit.write_config():
            changed.setdefault(change, []).append(unit.config_path)
    if changed:
        paths = sorted({p for ps in changed.values() for p in ps})
        sys.stderr.write('note: {}: how {} now follows this command ({})\n'.format(
            paths[0] if len(paths) == 1 else "the config.json of {} runs".format(len(paths)),
            'the run starts' if len(paths) == 1 else 'they start', '; '.join(
                change if len(ps) == len(paths) else '{} in {} of them'.format(change, len(ps))
                for change, ps in sorted(changed.items()))))


def print_commands(units, devices, stream=None, kernel_cache=None):
    """One shell command per unfinished unit, on ``devices`` in turn; returns how many."""
    stream = stream or sys.stdout
    todo = [u for u in units if not u.finished()]
    write_configs(todo)
    for k, unit in enumerate(todo):
        command = unit.command(devices[k % len(devices)], True, kernel_cache)
        stream.write(shlex.join(command) + '\n')
    if len(todo) < len(units):
        sys.stderr.write('# {} of {} runs are finished already and were left out\n'.format(
            len(units) - len(todo), len(units)))
    return len(todo)


def other_runs(units):
    """The run folders under the units' root that hold runs (a ``config.json``) of another
    configuration than ``units``: ``{(label, noise): [RunConfig]}``."""
    planned = {os.path.abspath(u.run_dir) for u in units}
    found = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(units[0].root), '*', '*', 'trial*',
                                              rundir.CONFIG))):
        if os.path.dirname(os.path.abspath(path)) not in planned:
            try:
                config = config_lib.from_file(path)
            except ValueError:
                continue
            found.setdefault((config.label(), config.noise), []).append(config)
    return found


class Progress(object):
    """Where the whole table stands: runs done, running and left, epochs and an estimated time
    left (from the epochs finished since this command started per second of a run running; the
    runs left share ``jobs`` processes, and the longest of them bounds it from below)."""

    def __init__(self, units, stream=None, jobs=1):
        self.units = units
        self.stream = stream or sys.stdout
        self.jobs = jobs
        self.started = self._since = time.time()
        self._epochs = [sum(u.epochs().values()) for u in units]
        self.total = sum(self._epochs)
        self.done_at_start = sum(self._epochs_done())
        self._run_seconds, self._running = 0.0, 0

    def _epochs_done(self):
        """Epochs finished so far, per unit (read from the run folders)."""
        return [sum(u.epochs_done().values()) for u in self.units]

    def _seconds_left(self, done):
        """The estimated seconds left from the epochs ``done`` per unit, or None."""
        gained = sum(done) - self.done_at_start
        if gained <= 0 or self._run_seconds <= 0:
            return None
        per_run_second = gained / self._run_seconds
        left = [n - d for n, d in zip(self._epochs, done) if n > d]
        if not left:
            return None
        return max(sum(left) / min(self.jobs, len(left)), max(left)) / per_run_second

    def running(self, n_running):
        """Counts the seconds of runs running until now; ``n_running`` run from now on."""
        now = time.time()
        self._run_seconds += self._running * (now - self._since)
        self._since, self._running = now, n_running

    def line(self, n_done, n_running, n_failed):
        self.running(n_running)
        done = self._epochs_done()
        text = '[{}/{} runs done, {} running, {} left{}] epochs {}/{} · elapsed {}'.format(
            n_done, len(self.units), n_running, len(self.units) - n_done - n_running - n_failed,
            ', {} failed'.format(n_failed) if n_failed else '', sum(done), self.total,
            plan_lib.duration(self._since - self.started))
        seconds = self._seconds_left(done)
        if seconds is not None:
            text += ' · about {} left'.format(plan_lib.duration(seconds))
        return text

    def show(self, n_done, n_running, n_failed, running=()):
        lines = [self.line(n_done, n_running, n_failed)]
        for unit in running:
            done, epochs = unit.epochs_done(), unit.epochs()
            lines.append('    running {}: {}'.format(unit.label, ', '.join(
                '{} {}/{}'.format(p, done[p], epochs[p]) for p in unit.parts)))
        self.stream.write('\n'.join(lines) + '\n')
        self.stream.flush()


#: The CPU's thread counts: one each unless set here, since their number moves the numbers.
THREADS = ('MKL_NUM_THREADS', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS')


def run_environment(device, kernel_cache=None, environ=os.environ):
    """What a run's command sets (:meth:`Unit.command`), wherever it starts: the CPU's threads,
    the numerics variables set in ``environ`` (exact CPU mode, TF32:
    ``provenance.NUMERICS_VARIABLES``), unbuffered output, and on a GPU CuPy's kernels cached
    in ``kernel_cache``."""
    env = {k: environ[k] for k in provenance.NUMERICS_VARIABLES if k in environ}
    env.update({name: environ.get(name, '1') for name in THREADS}, PYTHONUNBUFFERED='1')
    if kernel_cache and '@numpy' not in device:
        env['CUPY_CACHE_DIR'] = environ.get('CUPY_CACHE_DIR', kernel_cache)
    return env


#: Device memory a CUDA context and CuPy take beside a run's arrays (an estimate).
CONTEXT_BYTES = 512 << 20


def recorded_run_bytes(gpu_name, folder=plan_lib.BENCHMARKS):
    """Device memory one run needs on a GPU of this name, from a recorded GPU check (the largest
    pool peak of a part, plus :data:`CONTEXT_BYTES`); None when none is recorded."""
    for path in sorted(glob.glob(os.path.join(folder, '*.json'))):
        record = rundir.read_json(path) or {}
        if gpu_name not in str(record.get('device', '')):
            continue
        parts = (plan_lib.benchmark_result(record) or {}).get('parts', {})
        peaks = [p['peak_memory']['pool_peak_bytes'] for p in parts.values()
                 if p.get('peak_memory')]
        if peaks:
            return max(peaks) + CONTEXT_BYTES
    return None


def check_gpu_memory(devices, per_device, query=device_lib.gpu_memory,
                     folder=plan_lib.BENCHMARKS):
    """Before anything starts: refuses (ValueError) ``per_device`` runs on a GPU whose free
    memory cannot hold them by the recorded GPU check; returns notes for GPUs without one."""
    notes = []
    for device in sorted(set(d for d in devices if '@cupy' in d)):
        name, free, _ = query(device)
        need = recorded_run_bytes(name, folder)
        if need is None:
            notes.append('{} ({}): memory not checked, no GPU check recorded for it in {} '
                         '(run make gpu-check there)'.format(device, name, folder))
            continue
        if per_device * need > free:
            raise ValueError(
                '{} runs on {} ({}) need about {:.1f} GiB ({:.1f} GiB each, from the recorded '
                'GPU check), but {:.1f} GiB are free: use --per-device {} or fewer'.format(
                    per_device, device, name, per_device * need / 2.0 ** 30, need / 2.0 ** 30,
                    free / 2.0 ** 30, max(1, int(free // need))))
    return notes


def execute(units, jobs=1, devices=None, status_every=60.0, stream=None, kernel_cache=None):
    """Runs the unfinished ``units``, ``jobs`` at a time, each on the device of ``devices``
    with the fewest running; returns the list of failed units.

    With one job the run's output goes to the terminal; with more, to ``output-<methods>.txt``
    in its run directory, and the state of every run is shown every ``status_every`` seconds.
    """
    stream = stream or sys.stdout
    devices = list(devices or [units[0].config.device if units else '@numpy'])
    todo = [u for u in units if not u.finished()]
    write_configs(todo)
    progress = Progress(units, stream, jobs)
    n_done = len(units) - len(todo)
    stream.write('{} runs: {} finished already, {} to run, {} at a time on {}\n'.format(
        len(units), n_done, len(todo), jobs, ', '.join(devices)))
    running = {}   # process -> (unit, device, log file or None)
    failed = []
    last_status = time.time()
    try:
        while todo or running:
            while todo and len(running) < jobs:
                unit = todo.pop(0)
                busy = [d for _, d, _ in running.values()]
                device = min(devices, key=busy.count)
                os.makedirs(unit.run_dir, exist_ok=True)
                command = unit.command(device, jobs > 1, kernel_cache)
                log = open(unit.log_path, 'a') if jobs > 1 else None
                if log:           # one file per unit, appended to: each attempt says so first
                    log.write('\n=== attempt started {} on {}: {}\n'.format(
                        time.strftime('%Y-%m-%d %H:%M:%S'), device, shlex.join(command)))
                    log.flush()
                else:
                    progress.show(n_done, 1, len(failed))
                    stream.write('--- {} on {} in {}\n'.format(unit.label, device, unit.run_dir))
                    stream.flush()
                process = subprocess.Popen(command, stdout=log,
                                           stderr=subprocess.STDOUT if log else None)
                running[process] = (unit, device, log)
            progress.running(len(running))
            time.sleep(0.2 if jobs == 1 else 1.0)
            changed = False
            for process in [p for p in running if p.poll() is not None]:
                unit, device, log = running.pop(process)
                if log:
                    log.close()
                changed = True
                if process.returncode == 0 and unit.finished():
                    n_done += 1
                else:
                    failed.append(unit)
                    _report_failure(unit, process.returncode, jobs > 1, stream)
            if jobs > 1 and (changed or time.time() - last_status >= status_every):
                progress.show(n_done, len(running), len(failed),
                              [u for u, _, _ in running.values()])
                last_status = time.time()
    except KeyboardInterrupt:
        for process in running:
            process.terminate()
        for process in running:
            process.wait()
        stream.write('\ninterrupted: {} running run(s) stopped ({}); every finished epoch is '
                     'kept in its snapshot, and the same command resumes them\n'.format(
                         len(running), '; '.join(u.label for u, _, _ in running.values())))
        raise
    if jobs == 1:
        progress.show(n_done, 0, len(failed))
    return failed


def _report_failure(unit, returncode, logged, stream):
    stream.write('run {} failed (exit status {})'.format(unit.label, returncode))
    if logged and os.path.exists(unit.log_path):
        with open(unit.log_path) as f:
            tail = [line.rstrip() for line in f.readlines()[-5:]]
        stream.write('; the end of {}:\n    {}'.format(unit.log_path, '\n    '.join(tail)))
    stream.write('\n')
    stream.flush()

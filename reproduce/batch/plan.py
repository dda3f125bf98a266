"""The plan of a table before its work starts: how many runs, how many epochs, how they split over
the devices, and an estimated wall time.

Seconds per epoch come from a recorded measurement named in the plan: a benchmark of the same
network and kind of device in ``results/benchmarks/`` (by GPU name where known; scaled to the
run's splits), else for digits the recorded tables' ``train_seconds / epochs`` (CPU), else none
(the plan names the command that records it). Tanaka et al.'s step 2 is costed as ours, Forward T
as cross entropy; runs on one device share its speed (not so with the recorded digits speeds,
measured two runs at a time: there ``--jobs`` runs per device count as side by side).
"""
import collections
import dataclasses
import glob
import os
import statistics

from reproduce import REPOSITORY
from reproduce.run import device as device_lib, rundir
from reproduce.run.device import gpu_name, is_gpu

BENCHMARKS = os.path.join(REPOSITORY, 'results', 'benchmarks')
RECORDED = os.path.join(REPOSITORY, 'results', 'recorded')
#: The benchmark's part that stands for each part of a run.
BENCHMARK_PART = {'step1': 'step1', 'tanaka': 'step2', 'ours': 'step2',
                  'cross_entropy': 'cross_entropy', 'forward_t': 'cross_entropy',
                  'pencil': 'pencil'}
#: The benchmark's name of each data set's network.
BENCHMARK_MODEL = {'preact_resnet32': 'resnet32'}
#: Wall time above which a plan on the CPU suggests the digits demo or a GPU.
SLOW_SECONDS = 24 * 3600


def duration(seconds):
    """A duration as people read it, the package's one formatter (plans, the runner's progress,
    the benchmark): '40 s', '12 min', '3.5 h', '2.1 days', '3.4 weeks', '1.2 years'."""
    for below, unit, text in ((90, 1, '{:.0f} s'), (90 * 60, 60, '{:.0f} min'),
                              (48 * 3600, 3600, '{:.1f} h'), (14 * 86400, 86400, '{:.1f} days'),
                              (365 * 86400, 7 * 86400, '{:.1f} weeks')):
        if seconds < below:
            return text.format(seconds / unit)
    return '{:.1f} years'.format(seconds / (365 * 86400))


def benchmark_result(record):
    """The benchmark result inside a benchmark JSON or a GPU-check record, or None."""
    if not isinstance(record, dict):
        return None
    if 'parts' in record and 'model' in record:
        return record
    nested = ((record.get('steps') or {}).get('benchmark') or {}).get('result')
    return nested if isinstance(nested, dict) and 'parts' in nested else None


@dataclasses.dataclass
class Speed:
    """Seconds per epoch of each part, and where they come from (``source``): ``per_part``, or
    scaled from a ``benchmark`` result to the data's split ``sizes``. ``side_by_side``: measured
    with runs side by side on a device, so that as many at once take no longer each."""

    source: str
    per_part: dict = dataclasses.field(default_factory=dict)
    benchmark: dict = None
    sizes: dict = None
    side_by_side: bool = False

    def seconds_per_epoch(self, part, config):
        if self.benchmark is None:
            return self.per_part.get(part)
        parts, data = self.benchmark['parts'], self.benchmark['data']
        timed = parts.get(BENCHMARK_PART[part])
        evaluation = parts.get('evaluation')
        if timed is None or evaluation is None:
            return None
        train = self.sizes['train'] / float(data['n_train'])
        if config.iterations_per_epoch:
            train = min(train, config.iterations_per_epoch / float(
                timed['iterations_per_epoch']))
        split = (self.sizes['val'] + self.sizes['test']) / float(data['n_val'] + data['n_test'])
        return timed['seconds_per_epoch'] * train + evaluation['seconds_per_epoch'] * split


def _data_sizes(dataset):
    """Split sizes of the data sets a benchmark stands for: CIFAR-10's (synthetic copies it)."""
    if dataset in ('cifar10', 'synthetic'):
        from datasets.synthetic import SIZES
        return SIZES
    return None


def benchmark_speed(config, device, folder=None):
    """The :class:`Speed` of a recorded benchmark of this run's network on this kind of device
    (a GPU of the same name when it is known), or None."""
    folder = folder or BENCHMARKS
    model = BENCHMARK_MODEL.get(config.spec.model['arch'])
    sizes = _data_sizes(config.dataset)
    if model is None or sizes is None:
        return None
    gpu = is_gpu(device)
    name = gpu_name(device) if gpu else None
    for path in sorted(glob.glob(os.path.join(folder, '*.json')), reverse=True):  # the last
        result = benchmark_result(rundir.read_json(path))
        if result is None or result['model']['name'] != model or \
                bool(result['device']['gpu']) != gpu:
            continue
        prov = result['provenance']
        commit, where = str(prov.get('commit')), prov['device']
        if name is None or name in where:
            return Speed('the benchmark {} ({} on {}, commit {}{}, {})'.format(
                os.path.relpath(path, REPOSITORY), model, where, commit[:12],
                '+dirty' * commit.endswith('+dirty'), str(prov.get('date'))[:10]),
                benchmark=result, sizes=sizes)
    return None


def recorded_speed(config, folder=None):
    """The :class:`Speed` of the recorded tables of this data set (digits: measured on a CPU),
    from each run's training seconds per epoch (median per part), or None."""
    folder = folder or RECORDED
    per_part, sources, devices = {}, [], set()
    for path in sorted(glob.glob(os.path.join(folder, '*.json'))):
        table = rundir.read_json(path) or {}
        if table.get('dataset') != config.dataset or not isinstance(table.get('runs'), list):
            continue
        for run in table['runs']:
            if run.get('epochs') and run.get('train_seconds') is not None:
                per_part.setdefault(run['part'], []).append(run['train_seconds'] / run['epochs'])
                devices.add(run['provenance']['device'])
        sources.append(os.path.basename(path))
    if not per_part:
        return None
    return Speed('the recorded {} runs in {} ({}; on {})'.format(
        config.dataset, os.path.relpath(folder, REPOSITORY), ', '.join(sources[:3]) +
        (', ...' if len(sources) > 3 else ''), '; '.join(sorted(devices))),
        per_part={p: statistics.median(v) for p, v in per_part.items()}, side_by_side=True)


def speed_of(config, device, benchmarks=None, recorded=None):
    """The best recorded :class:`Speed` for runs of ``config`` on ``device``, or None."""
    return benchmark_speed(config, device, benchmarks) or recorded_speed(config, recorded)


def unit_seconds(unit, speed, done=None):
    """Estimated seconds of one unit's epochs still to go (``done``: its epochs done by part,
    else read from its run directory), or None when a part has no figure."""
    total = 0.0
    done = unit.epochs_done() if done is None else done
    for part, epochs in unit.epochs().items():
        left = max(0, epochs - (done.get(part) or 0))
        if not left:
            continue
        per_epoch = speed.seconds_per_epoch(part, unit.config) if speed else None
        if per_epoch is None:
            return None
        total += left * per_epoch
    return total


def plan_lines(units, devices, jobs, benchmarks=None, recorded=None):
    """The plan as lines: runs, epochs, the split per device and the estimated wall time."""
    if not units:
        return ['plan: nothing to run']
    config = units[0].config
    devices = [device_lib.resolve(d) for d in (devices or [config.device])]
    used = devices[:max(1, min(jobs, len(devices)))]
    per_part = collections.Counter()
    for u in units:
        per_part.update(u.epochs())
    left = [u for u in units if not u.finished()]
    done = {id(u): u.epochs_done() for u in left}      # read from disk once per unit
    to_train = {id(u): sum(max(0, e - (done[id(u)].get(p) or 0))
                           for p, e in u.epochs().items()) for u in left}
    lines = ['plan: {} runs ({} finished already), {:,} epochs in all ({}), {:,} still to '
             'train'.format(len(units), len(units) - len(left), sum(per_part.values()),
                            ', '.join('{} {:,}'.format(p, e) for p, e in per_part.items()),
                            sum(to_train.values()))]
    if not left:
        return lines
    speed = speed_of(config, used[0], benchmarks, recorded)
    costs = [unit_seconds(u, speed, done[id(u)]) for u in left]
    known = speed is not None and all(c is not None for c in costs)
    # runs at once on each device share its speed, unless measured side by side
    slots = max(1, jobs // len(used)) if speed is not None and speed.side_by_side else 1
    load = {d: [0, 0, 0.0] for d in used}       # runs, epochs, seconds
    for unit, cost in sorted(zip(left, costs), key=lambda uc: -(uc[1] or 0)):
        device = min(used, key=lambda d: (load[d][2], load[d][0]))
        load[device][0] += 1
        load[device][1] += to_train[id(unit)]
        load[device][2] += (cost or 0.0) / slots
    lines.append('devices: ' + '; '.join(
        '{}: {} runs, {:,} epochs to train{}'.format(
            d, n, e, ', about ' + duration(s) if known else '')
        for d, (n, e, s) in load.items()) +
        ('' if len(used) == len(devices) else ' (--jobs {} uses {} of the {} devices)'.format(
            jobs, len(used), len(devices))))
    if known:
        wall = max(s for _, _, s in load.values())
        lines.append('estimated wall time: about {} (ESTIMATE from {}; {})'.format(
            duration(wall), speed.source,
            'measured with runs side by side, {} at once per device here'.format(slots)
            if speed.side_by_side else 'runs sharing a device are taken to share its speed'))
        if not is_gpu(used[0]) and wall > SLOW_SECONDS and config.dataset != 'digits':
            lines.append(
                'far too long for a CPU: for a look in minutes on the CPU run `make demo` '
                '(the digits data), or run the table on a GPU: --device @cupy:0 (README, "GPU")')
    else:
        arch = config.spec.model['arch']
        lines.append('estimated wall time: unknown: no recorded measurement of {} on {}{}'.format(
            arch, 'a GPU' if is_gpu(used[0]) else 'the CPU',
            ' (record one with: python reproduce/benchmark.py --device {} --json '
            'results/benchmarks/<name>.json)'.format(used[0]) if arch in BENCHMARK_MODEL and
            _data_sizes(config.dataset) else ''))
    return lines

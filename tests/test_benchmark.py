"""reproduce/benchmark.py on the CPU with a tiny network and data: what it records, how the
epoch figures follow from the raw times, and its errors. No speed is asserted."""
import contextlib
import copy
import io
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import types

import chainer
import numpy
import pytest

import background
from datasets.image_data import mean_image
from datasets.synthetic import SIZES
from reproduce.batch import plan
from reproduce.tools import benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: A tiny benchmark: 16 iterations an epoch of 8 images (the time grows with the batch, nothing
#: asserted does).
N_TRAIN, BATCH = 128, 8
TINY = ['--model', 'tiny', '--n-train', str(N_TRAIN), '--n-val', '64', '--n-test', '64',
        '--batch-size', str(BATCH), '--warmup', '1', '--iterations', '2', '--repeats', '2']


@contextlib.contextmanager
def _dataset_root(path):
    """Chainer's dataset root pointed at ``path`` (an empty folder: no CIFAR-10 to be found)."""
    before = chainer.dataset.get_dataset_root()
    chainer.dataset.set_dataset_root(str(path))
    try:
        yield
    finally:
        chainer.dataset.set_dataset_root(before)


@pytest.fixture
def empty_dataset_root(tmp_path):
    with _dataset_root(tmp_path / 'dataset-root'):
        yield


def run_tiny_benchmark(folder):
    """The tiny benchmark: {'returned': its result, 'path': its JSON file, 'printed': its
    output}."""
    path = os.path.join(folder, 'out', 'benchmark.json')
    out = io.StringIO()
    with _dataset_root(os.path.join(folder, 'dataset-root')), contextlib.redirect_stdout(out):
        returned = benchmark.main(TINY + ['--json', path])
    return {'returned': returned, 'path': path, 'printed': out.getvalue()}


# measured beside the session's tests (no speed is asserted)
tiny_benchmark = background.call('tiny_benchmark', 'test_benchmark', 'run_tiny_benchmark',
                                 cost=12)


@pytest.fixture
def tiny_run(tiny_benchmark):
    """One tiny benchmark for the module: (returned result, its JSON file, printed output)."""
    done = tiny_benchmark[1]
    with open(done['path']) as f:
        recorded = json.load(f)
    return done['returned'], recorded, done['printed']


def _positive(value):
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_records_every_part_with_its_setting(tiny_run):
    returned, result, _ = tiny_run
    assert result == json.loads(json.dumps(returned))
    assert set(result) == {'options', 'data', 'model', 'device', 'provenance', 'parts',
                           'schedule_seconds_estimate'}
    assert set(result['parts']) == set(benchmark.PARTS)
    assert result['data']['kind'] == 'random'
    assert 'CIFAR-10 is not' in result['data']['description']
    assert (result['data']['n_train'], result['data']['n_val'], result['data']['n_test']) == \
        (N_TRAIN, 64, 64)
    assert result['device'] == {'spec': '@numpy', 'gpu': False, 'cudnn': 'not used on the CPU'}
    assert result['provenance']['device'].startswith('CPU')
    assert result['provenance']['versions']['chainer'] == '7.8.1'
    assert result['provenance']['tf32'] is False
    assert result['model']['name'] == 'tiny' and result['model']['parameters'] > 0
    assert result['model']['settings']['arch'] == 'preact_resnet'
    assert result['options']['iterations'] == 2 and result['options']['repeats'] == 2
    assert all(part['peak_memory'] is None for part in result['parts'].values())


def test_epoch_seconds_follow_from_the_raw_times(tiny_run):
    result = tiny_run[1]
    updaters = {'step1': 'JointOptimizationUpdater', 'step2': 'MixupUpdater',
                'cross_entropy': 'CrossEntropyUpdater', 'pencil': 'PencilUpdater'}
    for name, updater in updaters.items():
        part = result['parts'][name]
        assert part['updater'] == updater
        assert part['iterations_per_epoch'] == math.ceil(N_TRAIN / BATCH) == 16
        assert _positive(part['first_iteration_seconds'])
        assert _positive(part['host_seconds_per_iteration'])
        assert len(part['raw_seconds']) == 2 and all(map(_positive, part['raw_seconds']))
        per_iteration = statistics.median(part['raw_seconds']) / 2
        assert part['seconds_per_iteration'] == pytest.approx(per_iteration, rel=1e-12)
        end = statistics.median(part['epoch_end_raw_seconds']) if name == 'step1' else 0.0
        assert part['epoch_end_seconds'] == pytest.approx(end, rel=1e-12)
        expected = per_iteration * part['iterations_per_epoch'] + end
        assert _positive(part['seconds_per_epoch'])
        assert part['seconds_per_epoch'] == pytest.approx(expected, rel=1e-12)
        assert part['images_per_second'] == pytest.approx(N_TRAIN / expected, rel=1e-12)
    step1 = result['parts']['step1']
    assert len(step1['epoch_end_raw_seconds']) == 2
    assert all(map(_positive, step1['epoch_end_raw_seconds']))
    assert result['parts']['pencil']['schedule_epochs'] == 320     # all stages' epochs
    evaluation = result['parts']['evaluation']
    assert evaluation['batch_size'] == 1000 and evaluation['images'] == 128
    assert len(evaluation['raw_seconds']) == 2 and all(map(_positive, evaluation['raw_seconds']))
    assert evaluation['seconds_per_epoch'] == pytest.approx(
        statistics.median(evaluation['raw_seconds']), rel=1e-12)
    assert evaluation['images_per_second'] == pytest.approx(
        128 / evaluation['seconds_per_epoch'], rel=1e-12)
    assert set(result['schedule_seconds_estimate']) == set(benchmark.PART_NAMES)
    for name, seconds in result['schedule_seconds_estimate'].items():
        assert seconds == pytest.approx(result['parts'][name]['schedule_epochs'] * (
            result['parts'][name]['seconds_per_epoch'] + evaluation['seconds_per_epoch']))


def _plan_reads(result):
    """What the plan reads of a benchmark result (:func:`plan.benchmark_speed`, :class:`Speed`)."""
    assert plan.benchmark_result(result) is result
    return (result['model']['name'], result['device']['gpu'],
            [result['provenance'][k] for k in ('device', 'commit', 'date')],
            {k: result['data'][k] for k in ('n_train', 'n_val', 'n_test')},
            {name: (part['seconds_per_epoch'], part.get('iterations_per_epoch'),
                    part.get('schedule_epochs')) for name, part in result['parts'].items()})


def test_the_plan_reads_a_new_result_as_it_reads_the_recorded_one(tiny_run):
    """The recorded benchmark (an older layout) and a new result both give the plan every figure
    it reads, and the plan's epoch estimate follows from them."""
    path = os.path.join(ROOT, 'results', 'benchmarks', 'cpu_x86_64_2cores_resnet32.json')
    with open(path) as f:
        recorded = json.load(f)
    config = types.SimpleNamespace(iterations_per_epoch=None)
    for result, n_train in ((recorded, SIZES['train']), (tiny_run[1], N_TRAIN)):
        model, gpu, where, data, parts = _plan_reads(result)
        assert model in ('resnet32', 'tiny') and gpu is False and all(where)
        assert data['n_train'] == n_train and set(parts) == set(benchmark.PARTS)
        for name in benchmark.PART_NAMES:
            assert all(_positive(float(v)) for v in parts[name])
        speed = plan.Speed('x', benchmark=result, sizes=SIZES)
        assert speed.seconds_per_epoch('ours', config) == pytest.approx(
            parts['step2'][0] * SIZES['train'] / n_train + parts['evaluation'][0] *
            (SIZES['val'] + SIZES['test']) / (data['n_val'] + data['n_test']))


def test_prints_a_table_saying_what_it_measured(tiny_run):
    out = tiny_run[2]
    assert 'data      : random, uint8 images drawn with seed 0' in out
    assert 'device    : CPU' in out and 'versions  : chainer 7.8.1' in out
    assert 'cuDNN     : not used on the CPU' in out
    assert 'TF32      : off (CUPY_TF32=0, NVIDIA_TF32_OVERRIDE=0)' in out
    assert 'median of 2 repeats x 2 iterations after 1 warm-up' in out
    assert 'SCALED from the timed iterations' in out
    for label in benchmark.LABELS.values():
        assert label in out
    assert 'pool MiB' not in out and 'peak memory: not recorded on the CPU' in out


def test_gpu_memory_peaks_and_their_columns(tiny_run):
    """On a GPU (a stand-in: CuPy's pool and cudaMemGetInfo), each part records the high-water
    marks the runner reads, and the table shows them in MiB."""
    now = {'pool': 3 << 20, 'used': 5 << 20}
    xp = types.SimpleNamespace(
        get_default_memory_pool=lambda: types.SimpleNamespace(total_bytes=lambda: now['pool']),
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(
            memGetInfo=lambda: ((64 << 20) - now['used'], 64 << 20))))
    gpu = types.SimpleNamespace(xp=xp)
    peak = benchmark._peak(gpu, None)
    assert peak == {'pool_peak_bytes': 3 << 20, 'device_used_peak_bytes': 5 << 20}
    now.update(pool=1 << 20, used=7 << 20)
    peak = benchmark._peak(gpu, peak)
    assert peak == {'pool_peak_bytes': 3 << 20, 'device_used_peak_bytes': 7 << 20}
    assert benchmark._peak(chainer.get_device('@numpy'), peak) is None
    result = copy.deepcopy(tiny_run[1])
    result['device'].update(gpu=True, cudnn='cuDNN 9 (a stand-in)')
    for part in result['parts'].values():
        part['peak_memory'] = peak
    out = benchmark.format_report(result)
    assert 'pool MiB   used MiB' in out and 'cuDNN     : cuDNN 9 (a stand-in)' in out
    rows = [line for line in out.splitlines() if line.startswith(tuple(benchmark.LABELS.values()))]
    assert len(rows) == 5 and all(row.split()[-2:] == ['3', '7'] for row in rows)


@pytest.mark.parametrize('options, message', [
    (['--iterations', '-1'], 'argument --iterations: must be at least 1, got -1 (see --help)'),
    (['--repeats', '0'], 'argument --repeats: must be at least 1, got 0'),
    (['--warmup', 'x'], "argument --warmup: takes an integer, got 'x'"),
    (['--model', 'vgg16'], "--model: invalid choice: 'vgg16'"),
    (['--device', '@nowhere'], "cannot use device '@nowhere'"),
    (['--parts', 'step1,step3'], "argument --parts: takes parts among step1, step2"),
    (['--duration', '0'], 'argument --duration: must be positive, got 0.0'),
])
def test_bad_options_say_what_is_wrong(options, message, capsys, empty_dataset_root):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(TINY + options)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_data_dir_and_random_data_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit):
        benchmark.main(['--data-dir', str(tmp_path), '--random-data'])
    assert 'exclude each other' in capsys.readouterr().err


def test_parts_are_timed_in_their_order():
    assert benchmark.parser().parse_args(['--parts', 'pencil,step1,pencil']).parts == \
        ['step1', 'pencil']
    assert benchmark.parser().parse_args([]).parts == list(benchmark.PART_NAMES)


def test_random_data_and_its_subsets():
    args = benchmark.parser().parse_args(
        ['--random-data', '--n-train', '40', '--n-val', '10', '--n-test', '12'])
    data, source = benchmark.load_data(args)
    assert source == {'kind': 'random',
                      'description': 'uint8 images drawn with seed 0 (--random-data)'}
    assert data.name == 'random' and data.image_shape == (3, 32, 32) and data.n_classes == 10
    assert (len(data.train_x), len(data.val_x), len(data.test_x)) == (40, 10, 12)
    assert data.pad == 4 and data.flip
    cut = benchmark.subset(data, 20, 10, 5)
    assert (len(cut.train_x), len(cut.val_x), len(cut.test_x)) == (20, 10, 5)
    assert (cut.train_x == data.train_x[:20]).all() and (cut.test_y == data.test_y[:5]).all()
    assert numpy.array_equal(cut.mean, mean_image(data.train_x[:20]))
    assert not numpy.array_equal(cut.mean, data.mean)
    assert numpy.array_equal(benchmark.subset(data, 40, 10, 12).mean, data.mean)
    with pytest.raises(ValueError, match='--n-train 41 is more than the 40 train images'):
        benchmark.subset(data, 41, 10, 12)


def test_runs_as_a_file_and_as_a_module():
    started = [subprocess.Popen([sys.executable] + command + ['--help'], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for command in (['reproduce/benchmark.py'], ['-m', 'reproduce.benchmark'])]
    for process in started:                  # both at once: two cores
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        assert '--iterations' in stdout and '--device' in stdout


def test_a_throughput_process_waits_for_the_common_start(tmp_path, empty_dataset_root):
    start = tmp_path / 'start'
    result = {}

    def worker():
        result.update(benchmark.run_throughput(benchmark.parser().parse_args(
            TINY + ['--throughput', 'step1', '--start-file', str(start), '--duration', '0.5'])))
    thread = threading.Thread(target=worker)
    thread.start()
    for _ in range(600):
        if any(f.name.endswith('.ready') for f in tmp_path.iterdir()):
            break
        time.sleep(0.1)
    assert (tmp_path / 'start.{}.ready'.format(os.getpid())).exists() and not result
    begin = time.time() + 0.3
    start.write_text(repr(begin))
    thread.join(120)
    assert result['part'] == 'step1' and result['iterations'] >= 1
    assert result['started'] >= begin - 0.05 and result['seconds'] >= 0.5
    assert result['images'] == result['iterations'] * BATCH
    assert result['images_per_second'] == pytest.approx(result['images'] / result['seconds'])
    assert result['peak_memory'] is None and result['data'] == 'random'


@pytest.mark.parametrize('flag, expected', [([], '0'), (['--tf32'], '1')])
def test_a_timed_part_sets_tf32_as_asked(flag, expected, monkeypatch, empty_dataset_root):
    """--tf32 reaches CuPy's switch as in a real run; without it a TF32 shell setting is off."""
    monkeypatch.setenv('CUPY_TF32', '1' if expected == '0' else '0')
    s = benchmark._prepare(benchmark.parser().parse_args(TINY + flag + ['--device', '@numpy']))
    benchmark.TimedPart('cross_entropy', s.config, s.settings, s.data, s.noisy, s.device)
    assert os.environ['CUPY_TF32'] == expected


@pytest.mark.parametrize('where, message', [
    (lambda tmp: tmp / 'a_file' / 'result.json', 'cannot be a folder: it is a file'),
    (lambda tmp: tmp / 'a_file' / 'deeper' / 'result.json', 'lies inside the file'),
    (lambda tmp: tmp, 'is a folder: name a file'),
], ids=['in-a-file', 'deeper-in-a-file', 'a-folder'])
def test_a_json_that_cannot_be_written_stops_it_before_anything_runs(where, message, tmp_path,
                                                                     capsys, monkeypatch):
    """--json is checked first: one line, status 2, nothing measured and nothing created."""
    (tmp_path / 'a_file').write_text('x')
    ran = []

    def measure(args):
        ran.append(args)
        raise ValueError('it ran')
    monkeypatch.setattr(benchmark, 'run_benchmark', measure)
    monkeypatch.setattr(benchmark, 'run_throughput', measure)
    for extra in ([], ['--throughput', 'step1']):
        with pytest.raises(SystemExit) as exit_info:
            benchmark.main(TINY + extra + ['--json', str(where(tmp_path))])
        assert exit_info.value.code == 2
        out, err = capsys.readouterr()
        assert err.count('\n') == 1 and '--json' in err and message in err, err
        assert 'Traceback' not in err and out == ''
    assert ran == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a_file']
    assert (tmp_path / 'a_file').read_text() == 'x'

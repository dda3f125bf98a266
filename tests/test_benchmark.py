"""reproduce/benchmark.py on the CPU with a tiny network and data: what it records, how the
epoch figures follow from the raw times, and its errors. No speed is asserted."""
import contextlib
import io
import json
import math
import os
import statistics
import subprocess
import sys

import chainer
import pytest

import background
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
    assert {'options', 'data', 'model', 'settings', 'device', 'environment', 'provenance',
            'timing', 'parts', 'schedule_seconds_estimate', 'peak_memory'} <= set(result)
    assert set(result['parts']) == set(benchmark.PARTS)
    assert result['data']['kind'] == 'random'
    assert 'CIFAR-10 is not' in result['data']['description']
    assert (result['data']['n_train'], result['data']['n_val'], result['data']['n_test']) == \
        (N_TRAIN, 64, 64)
    assert result['data']['image_shape'] == [3, 32, 32] and result['data']['n_classes'] == 10
    assert result['device'] == {'spec': '@numpy', 'gpu': False}
    assert result['provenance']['device'].startswith('CPU')
    assert result['provenance']['versions']['chainer'] == '7.8.1'
    assert result['environment']['cudnn_available'] is False
    assert 'use_cudnn' in result['environment'] and 'CUPY_TF32' in result['environment']
    assert result['model']['name'] == 'tiny' and result['model']['parameters'] > 0
    assert result['options']['iterations'] == 2 and result['options']['repeats'] == 2
    assert result['settings']['mixup_weight'] == 1.0
    assert result['peak_memory'] is None
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
        assert _positive(part['synchronized_seconds_per_iteration'])
        assert len(part['raw_seconds']) == 2 and all(map(_positive, part['raw_seconds']))
        per_iteration = statistics.median(part['raw_seconds']) / 2
        assert part['seconds_per_iteration'] == pytest.approx(per_iteration, rel=1e-12)
        end = statistics.median(part['epoch_end_raw_seconds']) if name == 'step1' else 0.0
        assert part['epoch_end_seconds'] == pytest.approx(end, rel=1e-12)
        expected = per_iteration * part['iterations_per_epoch'] + end
        assert _positive(part['seconds_per_epoch'])
        assert part['seconds_per_epoch'] == pytest.approx(expected, rel=1e-12)
        assert part['images_per_second'] == pytest.approx(N_TRAIN / expected, rel=1e-12)
        assert part['epoch_scaled_from_iterations'] is True
        assert part['epoch_ends_in_timed_iterations'] == 0     # 1 + 1 + 2 + 2 x 2 < 16
    step1 = result['parts']['step1']
    assert len(step1['epoch_end_raw_seconds']) == 2
    assert all(map(_positive, step1['epoch_end_raw_seconds']))
    evaluation = result['parts']['evaluation']
    assert evaluation['batch_size'] == 1000 and evaluation['images'] == 128
    assert len(evaluation['raw_seconds']) == 2 and all(map(_positive, evaluation['raw_seconds']))
    assert evaluation['seconds_per_epoch'] == pytest.approx(
        statistics.median(evaluation['raw_seconds']), rel=1e-12)
    assert evaluation['images_per_second'] == pytest.approx(
        128 / evaluation['seconds_per_epoch'], rel=1e-12)
    for name, seconds in result['schedule_seconds_estimate'].items():
        assert seconds == pytest.approx(result['parts'][name]['schedule_epochs'] * (
            result['parts'][name]['seconds_per_epoch'] + evaluation['seconds_per_epoch']))


def test_prints_a_table_saying_what_it_measured(tiny_run):
    out = tiny_run[2]
    assert 'data      : random' in out
    assert 'SCALED from the timed iterations' in out
    for label in ('step 1', 'step 2, ours', 'cross-entropy baseline', 'PENCIL', 'evaluation'):
        assert label in out
    assert 'not recorded (CPU)' in out


@pytest.mark.parametrize('options, message', [
    (['--iterations', '-1'], 'argument --iterations: must be at least 1, got -1 (see --help)'),
    (['--repeats', '0'], 'argument --repeats: must be at least 1, got 0'),
    (['--warmup', 'x'], "argument --warmup: takes an integer, got 'x'"),
    (['--model', 'vgg16'], "--model: invalid choice: 'vgg16'"),
    (['--device', '@nowhere'], "cannot use device '@nowhere'"),
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


def test_random_data_and_its_subsets():
    data = benchmark.random_image_data(40, 10, 12)
    assert data.name == 'random' and data.image_shape == (3, 32, 32) and data.n_classes == 10
    assert (len(data.train_x), len(data.val_x), len(data.test_x)) == (40, 10, 12)
    assert data.pad == 4 and data.flip
    cut = benchmark.subset(data, 20, 10, 5)
    assert (len(cut.train_x), len(cut.val_x), len(cut.test_x)) == (20, 10, 5)
    assert (cut.train_x == data.train_x[:20]).all() and (cut.test_y == data.test_y[:5]).all()
    assert benchmark.subset(data, 40, 10, 12) is data
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
    result_path = tmp_path / 'k.json'
    import threading
    result = {}

    def worker():
        result.update(benchmark.run_throughput(benchmark.parser().parse_args(
            TINY + ['--throughput', 'step1', '--start-file', str(start), '--duration', '0.5'])))
    thread = threading.Thread(target=worker)
    thread.start()
    for _ in range(600):
        if any(f.name.endswith('.ready') for f in tmp_path.iterdir()):
            break
        import time
        time.sleep(0.1)
    import time
    begin = time.time() + 0.3
    start.write_text(repr(begin))
    thread.join(120)
    assert result['part'] == 'step1' and result['iterations'] >= 1
    assert result['started'] >= begin - 0.05 and result['seconds'] >= 0.5
    assert result['images_per_second'] == pytest.approx(
        result['iterations'] * BATCH / result['seconds'])
    assert not result_path.exists()


@pytest.mark.parametrize('flag, expected', [([], '0'), (['--tf32'], '1')])
def test_a_timed_part_sets_tf32_as_asked(flag, expected, monkeypatch):
    """--tf32 reaches CuPy's switch as in a real run; without it a TF32 shell setting is off."""
    from reproduce.run import data as data_sets
    monkeypatch.setenv('CUPY_TF32', '1' if expected == '0' else '0')
    args = benchmark.parser().parse_args(TINY + flag)
    config = benchmark.run_config(args)
    data = benchmark.random_image_data(64, 16, 16)
    benchmark.TimedPart('cross_entropy', config, benchmark.run_settings(config, args.model),
                        data, data_sets.noisy_labels(config, data), chainer.get_device('@numpy'))
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

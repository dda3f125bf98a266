"""The plan printed before a table's work: runs, epochs, the split per device and the estimated
wall time from a recorded benchmark (or the recorded digits runs), by hand."""
import json
import os

import pytest

from reproduce.batch import plan, runner, tables

ALL = ['cross_entropy', 'forward_t', 'tanaka', 'pencil', 'ours']
#: A made-up CPU benchmark: seconds per (45k-image) epoch of each part and per evaluation pass.
SECONDS = {'step1': 100.0, 'step2': 200.0, 'cross_entropy': 50.0, 'pencil': 60.0,
           'evaluation': 10.0}


def write_benchmark(folder, gpu=False, name='CPU (x86_64, 2 cores)', model='resnet32'):
    record = {
        'benchmark': 'training pipeline speed', 'model': {'name': model},
        'device': {'spec': '@cupy:0' if gpu else '@numpy', 'gpu': gpu},
        'data': {'n_train': 45000, 'n_val': 5000, 'n_test': 10000},
        'parts': {k: {'seconds_per_epoch': v, 'iterations_per_epoch': 352}
                  for k, v in SECONDS.items()},
        'provenance': {'device': name, 'commit': 'abcdef0123456789', 'date': '2026-12-01'}}
    folder.mkdir(exist_ok=True)
    (folder / 'bench.json').write_text(json.dumps(record))
    return str(folder)


def units_of(tmp_path, rates=(0.5,), trials=(0,), dataset='cifar10', **extra):
    base = dict(dataset=dataset, noise='symmetric', device='@numpy', **extra)
    return runner.plan(base, list(rates), list(trials), ALL, str(tmp_path / 'runs'))


def by_hand(units):
    """Seconds of every unit from SECONDS: each epoch trains its part and evaluates once."""
    part_of = {'step1': 'step1', 'tanaka': 'step2', 'ours': 'step2',
               'cross_entropy': 'cross_entropy', 'forward_t': 'cross_entropy',
               'pencil': 'pencil'}
    return [sum(e * (SECONDS[part_of[p]] + SECONDS['evaluation'])
                for p, e in u.epochs().items()) for u in units]


def test_a_benchmark_gives_each_run_its_seconds(tmp_path):
    units = units_of(tmp_path)
    speed = plan.speed_of(units[0].config, '@numpy', write_benchmark(tmp_path / 'b'),
                          str(tmp_path / 'none'))
    assert 'bench.json' in speed.source and 'CPU (x86_64, 2 cores)' in speed.source
    assert [plan.unit_seconds(u, speed) for u in units] == pytest.approx(by_hand(units))


def test_subsampled_epochs_are_costed_as_such(tmp_path):
    units = units_of(tmp_path, iterations_per_epoch=35)
    speed = plan.speed_of(units[0].config, '@numpy', write_benchmark(tmp_path / 'b'),
                          str(tmp_path / 'none'))
    step1 = [u for u in units if 'step1' in u.parts][0]
    assert speed.seconds_per_epoch('step1', step1.config) == pytest.approx(
        100.0 * 35 / 352 + 10.0)


def test_the_plan_counts_runs_and_epochs_and_splits_them_over_devices(tmp_path):
    units = units_of(tmp_path, rates=(0.5, 0.9), trials=(0, 1))
    epochs = sum(sum(u.epochs().values()) for u in units)
    lines = plan.plan_lines(units, ['@numpy', '@numpy2'], 2, write_benchmark(tmp_path / 'b'),
                            str(tmp_path / 'none'))
    assert lines[0].startswith('plan: {} runs (0 finished already), {:,} epochs in all'.format(
        len(units), epochs))
    assert '@numpy: ' in lines[1] and '@numpy2: ' in lines[1]
    runs = [int(part.split(': ')[1].split(' runs')[0]) for part in lines[1][9:].split('; ')]
    assert sum(runs) == len(units) and abs(runs[0] - runs[1]) <= 1
    # two devices: the wall time is the busier device's (longest runs first, each to the less
    # busy device), at least half of the whole
    loads = [0.0, 0.0]
    for seconds in sorted(by_hand(units), reverse=True):
        loads[loads.index(min(loads))] += seconds
    assert max(loads) >= sum(by_hand(units)) / 2
    assert 'ESTIMATE from the benchmark' in lines[2]
    assert lines[2].split('about ')[1].split(' (')[0] == plan.duration(max(loads))


def test_cifar10_on_the_cpu_points_to_the_demo_and_the_gpu(tmp_path):
    units = units_of(tmp_path, rates=(0.1, 0.3, 0.5, 0.7, 0.9), trials=range(5))
    lines = plan.plan_lines(units, ['@numpy'], 1, write_benchmark(tmp_path / 'b'),
                            str(tmp_path / 'none'))
    assert 'weeks' in lines[2] or 'years' in lines[2]
    assert 'make demo' in lines[3] and '--device @cupy:0' in lines[3]


def test_without_a_measurement_the_plan_says_what_to_record(tmp_path):
    units = units_of(tmp_path)
    lines = plan.plan_lines(units, ['@numpy'], 1, str(tmp_path / 'none'), str(tmp_path / 'none'))
    assert 'unknown' in lines[-1] and 'reproduce/benchmark.py --device @numpy' in lines[-1]
    # a GPU benchmark does not stand for the CPU, nor a benchmark of another network
    folder = write_benchmark(tmp_path / 'gpu', gpu=True, name='GPU 0 (NVIDIA H200)')
    assert plan.benchmark_speed(units[0].config, '@numpy', folder) is None
    folder = write_benchmark(tmp_path / 'tiny', model='tiny')
    assert plan.benchmark_speed(units[0].config, '@numpy', folder) is None


def test_digits_are_estimated_from_the_recorded_digits_runs(tmp_path):
    units = units_of(tmp_path, dataset='digits')
    speed = plan.speed_of(units[0].config, '@numpy', str(tmp_path / 'none'))
    assert speed is not None and 'results/recorded' in speed.source
    recorded = json.load(open(os.path.join(plan.RECORDED, 'digits_cpu_table2.json')))
    step1 = [r['train_seconds'] / r['epochs'] for r in recorded['runs'] if r['part'] == 'step1']
    assert min(step1) * 0.2 < speed.seconds_per_epoch('step1', units[0].config) < \
        max(step1) * 5


def test_plan_option_prints_the_plan_and_creates_nothing(tmp_path, capsys):
    out = tmp_path / 'runs'
    status = tables.main(2, ['--dataset', 'digits', '--rates', '0.5', '--trials', '2',
                             '--device', '@numpy', '--out', str(out), '--plan'])
    printed = capsys.readouterr().out
    assert status == 0
    assert printed.splitlines()[1].startswith('plan: 6 runs')
    assert 'estimated wall time: about' in printed
    assert not out.exists()


def test_each_table_runs_the_paper_rows_it_computes_and_says_so_first(tmp_path, capsys):
    """By default a table runs the rows of the paper's table that this code computes (Table 2
    has no Forward T; CNN-CRF is only quoted); --methods chooses others. The plan says which."""
    assert tables.paper_rows(2) == ['cross_entropy', 'tanaka', 'pencil', 'ours']
    assert tables.paper_rows(3) == tables.paper_rows(4) == ALL
    argv = ['--dataset', 'digits', '--rates', '0.5', '--trials', '1', '--device', '@numpy',
            '--out', str(tmp_path / 'runs'), '--plan']
    for number, rows, runs in ((2, 'cross_entropy, tanaka, pencil, ours', 3), (3, ', '.join(ALL),
                                                                                4)):
        assert tables.main(number, argv) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == "rows: {}: the paper's Table {} rows this code computes (others: " \
            "--methods)".format(rows, number)
        assert lines[1].startswith('plan: {} runs'.format(runs))
    assert tables.main(2, argv + ['--methods', 'forward_t,ours']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == 'rows: forward_t, ours (--methods)' and lines[1].startswith('plan: 2 runs')


def test_a_resumed_table_is_planned_from_the_epochs_still_to_train(tmp_path, monkeypatch):
    units = units_of(tmp_path)
    step1 = [u for u in units if 'step1' in u.parts][0]
    total = sum(sum(u.epochs().values()) for u in units)
    half = step1.epochs()['step1'] // 2
    monkeypatch.setattr(step1, 'epochs_done', lambda: {'step1': half})
    benchmarks = write_benchmark(tmp_path / 'b')
    lines = plan.plan_lines(units, ['@numpy'], 1, benchmarks, str(tmp_path / 'none'))
    assert lines[0].endswith('{:,} still to train'.format(total - half))
    assert '{:,} epochs to train'.format(total - half) in lines[1]
    speed = plan.speed_of(units[0].config, '@numpy', benchmarks, str(tmp_path / 'none'))
    assert plan.unit_seconds(step1, speed) == pytest.approx(
        by_hand([step1])[0] - half * (SECONDS['step1'] + SECONDS['evaluation']))


def test_a_finished_table_plans_no_devices(tmp_path, monkeypatch):
    units = units_of(tmp_path)
    for unit in units:
        monkeypatch.setattr(unit, 'finished', lambda: True)
    lines = plan.plan_lines(units, ['@numpy'], 1, write_benchmark(tmp_path / 'b'),
                            str(tmp_path / 'none'))
    assert len(lines) == 1 and '({} finished already)'.format(len(units)) in lines[0]

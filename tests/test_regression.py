"""The suite's regression check: a small seeded Table-2 configuration on the real digits data,
trained by the table script and compared trial by trial with the numbers recorded in
results/recorded/ under several CPU numerics settings (reproduce/platform_spread.py), with the
tolerance that recording's spread gives. It must pass on any CPU (make test runs it again under a
second OpenBLAS kernel) and fail for a broken method by a wide margin.
Exact CPU mode must give bit-identical numbers whatever kernel the machine would pick.
The table script's runs go on beside the session's other tests (tests/background.py)."""
import json
import os
import shutil
import subprocess
import sys

import pytest

import background
import chainer_compat
import partial_runs
from reproduce import experiment
from reproduce.batch import runner, tables
from reproduce.report import regression
from reproduce.run import launch
from updaters.labels import LabelTable
from updaters.mixup import MixupUpdater

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDED = os.path.join(ROOT, 'results', 'recorded', 'digits_regression_table2.json')
#: The regression configuration (also in the recording's platform_spread.command): 50 %
#: symmetric noise, a fifth of the digits schedules, every computed method, one trial.
CONFIGURATION = ['--dataset', 'digits', '--rates', '0.5', '--trials', '1', '--epochs-scale',
                 '0.2', '--jobs', '2']
#: How far (in tolerances) a broken method must move its sharpest cell.
WIDE = 5.0


def read(path):
    with open(path) as f:
        return json.load(f)


def test_the_recording_is_of_this_configuration_with_its_spread():
    recorded = read(RECORDED)
    spread = recorded['platform_spread']
    assert spread['command'][spread['command'].index('--') + 1:] == CONFIGURATION
    names = [s['name'] for s in spread['settings']]
    assert {'native', 'openblas-prescott', 'numpy-no-avx512', 'numpy-baseline'} <= set(names)
    assert len(names) >= 5 and spread['reference'] == names[0]
    keys = {(c['part'], c['quantity']) for c in spread['cells']}
    for method in tables.COMPUTED:
        assert {(method, 'best'), (method, 'last'), (method, 'final_loss')} <= keys
    assert {('step1', 'label_accuracy'), ('pencil', 'label_accuracy')} <= keys
    for c in spread['cells']:
        assert c['min'] <= recorded_value(recorded, c) <= c['max']
    # the check's tolerance of every cell rests on the recording's own spread
    assert set(regression.recorded_spreads(recorded)) == set(regression.cells_of(recorded))


def recorded_value(recorded, spread_cell):
    key = (spread_cell['part'], spread_cell['quantity'], spread_cell['rate'])
    return regression.cells_of(recorded)[key]['mean']


def _table_script(folder):
    return [sys.executable, os.path.join(ROOT, 'reproduce', 'table2.py')] + CONFIGURATION + [
        '--methods', ','.join(tables.COMPUTED),   # Forward T too: the paper's Table 2 has none
        '--device', '@numpy', '--out', os.path.join(folder, 'runs'), '--results',
        os.path.join(folder, 'results'), '--check', RECORDED], None


#: The configuration trained by the table script (its step 1 is also the one the lost mix-up
#: term is trained after, below)
regression_run = background.command('regression_run', _table_script, cost=100)


@pytest.mark.slow
@pytest.mark.regression
def test_the_configuration_reproduces_the_recorded_numbers(regression_run):
    """The regression test proper; make test runs it under two OpenBLAS kernels."""
    done, res = regression_run, os.path.join(regression_run.folder, 'results')
    report = done.stdout[done.stdout.index('check against'):] if 'check against' in \
        done.stdout else done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, report
    comparison = regression.compare(read(os.path.join(res, 'table2.json')), read(RECORDED))
    assert comparison.ok and not comparison.missing
    assert comparison.compared == len(regression.cells_of(read(RECORDED)))


#: The regression configuration's run of the step-1 chain (step 1, tanaka, ours).
BASE = dict(dataset='digits', noise='symmetric', epochs_scale=0.2, device='@numpy',
            progress=False)


def _chain(root):
    (unit,) = runner.plan(BASE, [0.5], [0], ('tanaka', 'ours'), root)
    return unit


def _table(unit, methods):
    """The table built from the chain's run, ``methods`` computed (the others not run)."""
    return tables.build(2, [unit], [0.5], [0], methods, experiment.RunConfig(rate=0.5, **BASE))


def train_step1_with_labels_never_updated(root):
    """Step 1 of the regression configuration with its label update broken: the table. Only
    step 1 is trained: the cell the check must move reads step 1 alone, and every part after it
    would only train on the broken labels."""
    _never_update_labels(pytest.MonkeyPatch())            # this process only
    unit = _chain(root)
    partial_runs.train_step1(unit.config, unit.run_dir)
    return _table(unit, ())


broken_step1_run = background.call('broken_step1_run', 'test_regression',
                                   'train_step1_with_labels_never_updated', cost=20)


def _ours_without_mixup(regression_run, root, monkeypatch):
    """"ours" of the regression configuration trained with its mix-up term lost: the table. It
    trains after the regression run's step 1, copied (the breakage does not reach step 1, which
    has no mix-up)."""
    unit = _chain(root)
    trained = os.path.join(regression_run.folder, 'runs', os.path.relpath(unit.run_dir, root))
    assert os.path.isfile(os.path.join(trained, 'step1', 'result.json')), \
        regression_run.stdout[-2000:] + regression_run.stderr[-2000:]
    os.makedirs(unit.run_dir)
    shutil.copy(os.path.join(trained, 'config.json'), unit.run_dir)
    shutil.copytree(os.path.join(trained, 'step1'), os.path.join(unit.run_dir, 'step1'))
    _no_mixup(monkeypatch)
    launch.run(unit.config, unit.run_dir, methods=('ours',))
    return _table(unit, ('ours',))


def _margins(table, recorded):
    """|mean paired difference| / its tolerance of every cell of ``table`` that the recording
    has (one trial each here)."""
    spreads, old = regression.recorded_spreads(recorded), regression.cells_of(recorded)
    margins = {}
    for key, cell in regression.cells_of(table).items():
        if key in old:
            (now,), (then,) = cell['values'], old[key]['values']
            allowed, _ = regression.tolerances(key[1], old[key], 1, spreads[key])
            margins[key] = abs(now - then) / allowed
    return margins


def _never_update_labels(monkeypatch):
    original = LabelTable.end_epoch

    def end_epoch(self, epoch=None):
        self.begin = 10 ** 9            # the label update never comes
        return original(self, epoch)
    monkeypatch.setattr(LabelTable, 'end_epoch', end_epoch)


def _no_mixup(monkeypatch):
    original = MixupUpdater.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.mixup_weight = 0.0         # "ours" silently loses its mix-up term
    monkeypatch.setattr(MixupUpdater, '__init__', init)


def _fails_the_check_by_a_wide_margin(table, sharpest):
    recorded = read(RECORDED)
    comparison = regression.compare(table, recorded)
    assert not comparison.ok
    assert any(line.startswith(regression._where(sharpest)) for line in comparison.moved)
    assert _margins(table, recorded)[sharpest] > WIDE


@pytest.mark.slow
def test_a_broken_label_update_fails_the_check_by_a_wide_margin(broken_step1_run):
    _fails_the_check_by_a_wide_margin(broken_step1_run[1], ('step1', 'label_accuracy', 0.5))


@pytest.mark.slow
def test_a_lost_mixup_term_fails_the_check_by_a_wide_margin(regression_run, tmp_path,
                                                            monkeypatch):
    _fails_the_check_by_a_wide_margin(_ours_without_mixup(regression_run, str(tmp_path),
                                                          monkeypatch),
                                      ('ours', 'final_loss', 0.5))


EXACT_CPU = chainer_compat.exact_cpu_possible()


def _exact_cpu_run(kernel):
    """The table script on a small configuration in exact CPU mode, OpenBLAS told to pick
    ``kernel`` (a machine that would pick it stands in): (command, environment) for a folder
    (nothing where exact CPU mode cannot hold: its test is skipped)."""
    def build(folder):
        if not EXACT_CPU:
            return [sys.executable, '-c', ''], None
        env = {k: v for k, v in os.environ.items() if k not in
               ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'NPY_DISABLE_CPU_FEATURES')}
        env.update({chainer_compat.EXACT_CPU_VARIABLE: '1', 'OPENBLAS_CORETYPE': kernel})
        return [sys.executable, os.path.join(ROOT, 'reproduce', 'table2.py'), '--dataset',
                'digits', '--rates', '0.8', '--trials', '1', '--epochs-scale', '0.05',
                '--iterations-per-epoch', '5', '--jobs', '2', '--methods',
                'cross_entropy,tanaka,ours',
                '--device', '@numpy', '--out', os.path.join(folder, 'runs'),
                '--results', os.path.join(folder, 'results')], env
    return build


def _exact_table(done):
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return read(os.path.join(done.folder, 'results', 'table2.json'))


exact_cpu_prescott = background.command('exact_cpu_prescott', _exact_cpu_run('Prescott'),
                                         cost=10)
exact_cpu_other = background.command(
    'exact_cpu_other', _exact_cpu_run('SkylakeX' if 'avx512f' in chainer_compat.cpu_flags()
                                      else ''), cost=10)


@pytest.mark.slow
@pytest.mark.skipif(not EXACT_CPU, reason='exact CPU mode needs an x86-64 CPU with AVX2 and FMA')
def test_exact_cpu_mode_gives_the_same_bits_whatever_kernel_the_machine_picks(
        exact_cpu_prescott, exact_cpu_other):
    """Two machines stand in: one whose OpenBLAS would pick Prescott, one that would pick
    SkylakeX (or its own kernel where the CPU lacks AVX-512). Cross entropy, step 1, Tanaka's
    step 2 and ours, two epochs each of five batches: every cell of the table bit for bit."""
    first = _exact_table(exact_cpu_prescott)
    second = _exact_table(exact_cpu_other)
    comparison = regression.compare(second, first)
    assert comparison.exact and not comparison.platform, comparison.report('first')
    assert first['provenance']['exact_cpu'] == [True]
    (platform,) = first['provenance']['platforms']
    numpy_blas = [b for b in platform['blas'] if b['loaded_by'] == 'numpy.libs']
    assert numpy_blas[0]['architecture'] == 'Haswell' and numpy_blas[0]['num_threads'] == 1
    assert not any(t.startswith('AVX512') for t in platform['numpy_simd']['dispatched'])


@pytest.mark.skipif(not {'avx2', 'fma'} <= chainer_compat.cpu_flags(),
                    reason='exact CPU mode needs an x86-64 CPU with AVX2 and FMA')
def test_exact_cpu_mode_refuses_a_numpy_loaded_with_other_settings():
    env = dict(os.environ, **{chainer_compat.EXACT_CPU_VARIABLE: '1'})
    env.pop('OPENBLAS_CORETYPE', None)
    done = subprocess.run([sys.executable, '-c', 'import numpy, chainer_compat'], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and done.stderr.count('\n') == 1
    assert done.stderr.startswith('error: MIXUP_EXACT_CPU=1: numpy was imported before')

"""The suite's regression check: a small seeded Table-2 configuration on the real digits data,
trained by the table script and compared trial by trial with the numbers recorded in
results/recorded/ under several CPU numerics settings (reproduce/platform_spread.py), with the
tolerance that recording's spread gives. It must pass on any CPU (make test runs it again under a
second OpenBLAS kernel) and fail for a broken method by a wide margin.
Exact CPU mode must give bit-identical numbers whatever kernel the machine would pick."""
import json
import os
import subprocess
import sys

import pytest

import chainer_compat
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


@pytest.mark.slow
@pytest.mark.regression
def test_the_configuration_reproduces_the_recorded_numbers(tmp_path):
    """The regression test proper; make test runs it under two OpenBLAS kernels."""
    out, res = str(tmp_path / 'runs'), str(tmp_path / 'results')
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'reproduce', 'table2.py')] + CONFIGURATION
        + ['--device', '@numpy', '--out', out, '--results', res, '--check', RECORDED],
        capture_output=True, text=True)
    report = done.stdout[done.stdout.index('check against'):] if 'check against' in \
        done.stdout else done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, report
    comparison = regression.compare(read(os.path.join(res, 'table2.json')), read(RECORDED))
    assert comparison.ok and not comparison.missing
    assert comparison.compared == len(regression.cells_of(read(RECORDED)))


def _broken_chain(tmp_path, monkeypatch, breakage):
    """Trains the step-1 chain (step 1, tanaka, ours) of the regression configuration in-process
    with one part broken; returns the table built from it."""
    breakage(monkeypatch)
    base = dict(dataset='digits', noise='symmetric', epochs_scale=0.2, device='@numpy',
                progress=False)
    units = runner.plan(base, [0.5], [0], ('tanaka', 'ours'), str(tmp_path))
    (unit,) = units
    launch.run(unit.config, unit.run_dir, methods=unit.methods)
    return tables.build(2, units, [0.5], [0], unit.methods,
                        experiment.RunConfig(rate=0.5, **base))


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


@pytest.mark.slow
@pytest.mark.parametrize('breakage, sharpest', [
    (_never_update_labels, ('step1', 'label_accuracy', 0.5)),
    (_no_mixup, ('ours', 'final_loss', 0.5)),
])
def test_a_broken_method_fails_the_check_by_a_wide_margin(tmp_path, monkeypatch, breakage,
                                                           sharpest):
    recorded = read(RECORDED)
    table = _broken_chain(tmp_path, monkeypatch, breakage)
    comparison = regression.compare(table, recorded)
    assert not comparison.ok
    assert any(line.startswith(regression._where(sharpest)) for line in comparison.moved)
    assert _margins(table, recorded)[sharpest] > WIDE


def _exact_cpu_run(tmp_path, name, kernel):
    env = {k: v for k, v in os.environ.items() if k not in
           ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'NPY_DISABLE_CPU_FEATURES')}
    env.update({chainer_compat.EXACT_CPU_VARIABLE: '1', 'OPENBLAS_CORETYPE': kernel})
    res = str(tmp_path / name / 'results')
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'reproduce', 'table2.py'), '--dataset', 'digits',
         '--rates', '0.8', '--trials', '1', '--epochs-scale', '0.05', '--jobs', '2',
         '--methods', 'cross_entropy,tanaka,ours', '--device', '@numpy',
         '--out', str(tmp_path / name / 'runs'), '--results', res],
        env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return read(os.path.join(res, 'table2.json'))


@pytest.mark.slow
@pytest.mark.skipif(not {'avx2', 'fma'} <= chainer_compat.cpu_flags(),
                    reason='exact CPU mode needs an x86-64 CPU with AVX2 and FMA')
def test_exact_cpu_mode_gives_the_same_bits_whatever_kernel_the_machine_picks(tmp_path):
    """Two machines stand in: one whose OpenBLAS would pick Prescott, one that would pick
    SkylakeX (or its own kernel where the CPU lacks AVX-512)."""
    other = 'SkylakeX' if 'avx512f' in chainer_compat.cpu_flags() else ''
    first = _exact_cpu_run(tmp_path, 'prescott', 'Prescott')
    second = _exact_cpu_run(tmp_path, 'other', other)
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

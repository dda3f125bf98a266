"""Float32 by default, for real: what a run, the benchmark and the GPU check set before CUDA
starts (NVIDIA_TF32_OVERRIDE for cuDNN and cuBLAS, CUPY_TF32 for CuPy's cuBLAS calls), and what
the provenance records."""
import json
import os
import subprocess
import sys

import chainer
import pytest

from reproduce.run import precision, provenance, training
from reproduce.run.config import RunConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_float32_sets_both_switches_and_tf32_allows_both():
    env = {'NVIDIA_TF32_OVERRIDE': '1', 'OTHER': 'x'}
    precision.use_tf32(False, env)
    assert env == {'CUPY_TF32': '0', 'NVIDIA_TF32_OVERRIDE': '0', 'OTHER': 'x'}
    assert not precision.tf32_in_force(env)
    precision.use_tf32(True, env)
    assert env == {'CUPY_TF32': '1', 'OTHER': 'x'}
    assert precision.tf32_in_force(env)


@pytest.mark.parametrize('env, in_force', [
    ({}, True),                                          # cuDNN's own default on Ampere/Hopper
    ({'CUPY_TF32': '0'}, True),                          # CuPy's switch reaches cuBLAS only
    ({'NVIDIA_TF32_OVERRIDE': '0'}, False),
    ({'NVIDIA_TF32_OVERRIDE': '0', 'CUPY_TF32': '1'}, True)])
def test_what_is_in_force_follows_the_two_variables(env, in_force):
    assert precision.tf32_in_force(env) is in_force


@pytest.mark.parametrize('tf32', [False, True])
def test_a_run_sets_its_precision_before_the_device_and_records_it(tf32, monkeypatch, tmp_path):
    monkeypatch.setenv('CUPY_TF32', '0' if tf32 else '1')          # the shell says otherwise
    monkeypatch.setenv('NVIDIA_TF32_OVERRIDE', '0' if tf32 else '1')
    used = []
    real_get_device = chainer.get_device
    monkeypatch.setattr(chainer, 'get_device', lambda spec: used.append(
        dict(os.environ)) or real_get_device(spec))
    config = RunConfig(dataset='digits', rate=0.3, device='@numpy', tf32=tf32, progress=False)
    data = config.spec.load(config)
    from reproduce.run import data as data_sets
    training.setup(config, data, data_sets.noisy_labels(config, data), str(tmp_path))
    first = used[0]                                        # when the device was first asked for
    if tf32:
        assert first['CUPY_TF32'] == '1' and 'NVIDIA_TF32_OVERRIDE' not in first
    else:
        assert first['CUPY_TF32'] == first['NVIDIA_TF32_OVERRIDE'] == '0'
    recorded = provenance.provenance('@numpy')
    assert recorded['tf32'] is tf32
    assert recorded['tf32_environment'] == (
        {'CUPY_TF32': '1', 'NVIDIA_TF32_OVERRIDE': None} if tf32 else
        {'CUPY_TF32': '0', 'NVIDIA_TF32_OVERRIDE': '0'})


def test_the_benchmark_sets_float32_before_it_starts(monkeypatch):
    from reproduce.tools import benchmark
    monkeypatch.setenv('CUPY_TF32', '1')
    monkeypatch.delenv('NVIDIA_TF32_OVERRIDE', raising=False)
    seen = {}

    def stop(args):
        seen.update(os.environ)
        raise ValueError('stopped here')
    monkeypatch.setattr(benchmark, 'run_benchmark', stop)
    with pytest.raises(SystemExit):
        benchmark.main(['--model', 'tiny'])
    assert seen['CUPY_TF32'] == seen['NVIDIA_TF32_OVERRIDE'] == '0'


@pytest.mark.slow
def test_a_run_started_from_a_tf32_shell_records_float32(tmp_path):
    """The single-run command, started with TF32 allowed in its environment, runs (and records)
    float32; with --tf32 it records TF32."""
    env = dict(os.environ, CUPY_TF32='1')
    env.pop('NVIDIA_TF32_OVERRIDE', None)
    base = [sys.executable, '-m', 'reproduce.experiment', '--dataset', 'digits', '--rate',
            '0.3', '--methods', 'cross_entropy', '--set', 'step2.epochs=1',
            '--set', 'step2.milestones=[]', '--iterations-per-epoch', '2', '--quiet',
            '--device', '@numpy']
    started = [(out, tf32, subprocess.Popen(                  # both at once: two cores
        base + flag + ['--out', str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)) for flag, tf32, out in (
            ([], False, tmp_path / 'float32'), (['--tf32'], True, tmp_path / 'tf32'))]
    for out, tf32, process in started:
        stderr = process.communicate(timeout=300)[1]
        assert process.returncode == 0, stderr[-2000:]
        (result,) = [os.path.join(d, f) for d, _, files in os.walk(str(out)) for f in files
                     if f == 'result.json']
        with open(result) as f:
            prov = json.load(f)['provenance']
        assert prov['tf32'] is tf32
        assert prov['tf32_environment']['CUPY_TF32'] == ('1' if tf32 else '0')
        assert prov['tf32_environment']['NVIDIA_TF32_OVERRIDE'] == (None if tf32 else '0')

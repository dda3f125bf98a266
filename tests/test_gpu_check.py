"""The GPU acceptance check: its CPU smoke version end to end, and the pieces that decide on a
GPU (parity, file names, the memory check of runs per device) on fabricated inputs."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import background
from reproduce.batch import runner
from reproduce.tools import gpu_check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# The CPU smoke version, run beside the session's tests
gpu_check_smoke = background.command('gpu_check_smoke', lambda folder: (
    [sys.executable, os.path.join(ROOT, 'reproduce', 'gpu_check.py'), '--smoke', '--device',
     '@numpy', '--out', os.path.join(folder, 'work'), '--results',
     os.path.join(folder, 'results')], None), cost=75)


@pytest.mark.slow
def test_the_smoke_version_runs_every_step_it_can_on_the_cpu(gpu_check_smoke):
    done, tmp_path = gpu_check_smoke, Path(gpu_check_smoke.folder)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (json_path,) = [p for p in os.listdir(tmp_path / 'results') if p.endswith('.json')]
    with open(tmp_path / 'results' / json_path) as f:
        record = json.load(f)
    steps = record['steps']
    assert set(steps) == {'tests', 'training', 'parity', 'benchmark', 'variants', 'concurrency'}
    assert steps['tests']['status'] == steps['parity']['status'] == 'skipped'
    assert steps['tests']['reason'] == 'the device is the CPU'
    for name in ('training', 'benchmark', 'variants', 'concurrency'):
        assert steps[name]['status'] == 'passed', (name, steps[name])
    assert set(steps['training']['final_loss']) == {'step1', 'cross_entropy', 'forward_t',
                                                     'tanaka', 'pencil', 'ours'}
    parts = steps['benchmark']['result']['parts']
    assert set(parts) == {'step1', 'step2', 'cross_entropy', 'pencil', 'evaluation'}
    assert [m['k'] for m in steps['concurrency']['levels']] == [1, 2]
    variants = steps['variants']
    assert [(r['batch_norm'], r['precision']) for r in variants['runs']] == [
        ('chainer', 'float32'), ('fused', 'float32')]         # TF32 is timed on a GPU only
    assert all(not r['tf32_in_force'] for r in variants['runs'])
    assert set(variants['faster']['float32']) == {'step1', 'step2', 'cross_entropy'}
    assert variants['default'] == 'chainer' and variants['verdict']
    assert record['cudnn'] == 'not used on the CPU'
    assert record['kernel_cache'] == str(tmp_path / 'work' / 'kernel-cache')
    assert steps['concurrency']['recommended_per_device'] in (1, 2)
    assert record['provenance']['commit'] and record['provenance']['platform']['cpu']
    markdown = (tmp_path / 'results' / json_path.replace('.json', '.md')).read_text()
    assert '| concurrency | passed |' in markdown and 'Recommended `--per-device`' in markdown
    assert '## Batch normalisation' in markdown and '| fused | float32 |' in markdown
    assert 'GPU acceptance check on CPU' in done.stdout


def test_a_full_check_needs_a_gpu():
    done = subprocess.run([sys.executable, os.path.join(ROOT, 'reproduce', 'gpu_check.py'),
                           '--device', '@numpy'], capture_output=True, text=True)
    assert done.returncode == 2 and 'no GPU asked for' in done.stderr and '--smoke' in done.stderr


@pytest.mark.parametrize('option', ['--results', '--out'])
def test_an_output_folder_that_cannot_be_one_stops_it_before_anything_runs(option, tmp_path,
                                                                           capsys, monkeypatch):
    """--out and --results are checked first: one line, status 2, no step run, nothing created."""
    a_file = tmp_path / 'a_file'
    a_file.write_text('x')
    ran = []
    monkeypatch.setattr(gpu_check, 'check', lambda args: ran.append(args) or 0)
    places = {'--out': str(tmp_path / 'work'), '--results': str(tmp_path / 'results')}
    places[option] = str(a_file / 'inside')
    argv = ['--smoke', '--device', '@numpy'] + [x for kv in places.items() for x in kv]
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(argv)
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert err.count('\n') == 1 and 'Traceback' not in err and out == ''
    assert '{} {} cannot be a folder: it lies inside the file {}'.format(
        option, a_file / 'inside', a_file) in err
    assert ran == [] and sorted(p.name for p in tmp_path.iterdir()) == ['a_file']


def test_parity_compares_first_epoch_losses_and_label_accuracies():
    cpu = {'step1': {'first_epoch_loss': 2.0, 'labels': 0.50},
           'ours': {'first_epoch_loss': 1.0, 'labels': None}}
    close = {'step1': {'first_epoch_loss': 2.02, 'labels': 0.53},
             'ours': {'first_epoch_loss': 0.99, 'labels': None}}
    problems, rows = gpu_check.compare_parity(cpu, close)
    assert problems == [] and rows['step1']['relative_difference'] == pytest.approx(0.01)
    far = {'step1': {'first_epoch_loss': 2.2, 'labels': 0.60},
           'pencil': {'first_epoch_loss': 1.0, 'labels': None}}
    problems, _ = gpu_check.compare_parity(cpu, far)
    assert [p.split(':')[0] for p in problems] == ['ours', 'pencil', 'step1', 'step1']
    assert 'ran on one device only' in problems[0] and '10.0 points apart' in problems[3]


def test_the_record_is_named_after_the_device():
    assert gpu_check.device_slug('GPU 0 (NVIDIA H200)') == 'nvidia-h200'
    assert gpu_check.device_slug('CPU (x86_64, 2 cores)') == 'cpu-x86-64-2-cores'


def _record(folder, name, pool_peak):
    parts = {'step1': {'peak_memory': {'pool_peak_bytes': pool_peak}},
             'evaluation': {'peak_memory': {'pool_peak_bytes': pool_peak // 2}}}
    with open(os.path.join(folder, 'x.json'), 'w') as f:
        json.dump({'device': 'GPU 0 ({})'.format(name),
                   'steps': {'benchmark': {'result': {'parts': parts}}}}, f)


def test_runs_per_device_are_checked_against_the_recorded_memory(tmp_path):
    gib = 1 << 30
    _record(str(tmp_path), 'NVIDIA H200', 2 * gib)
    need = 2 * gib + runner.CONTEXT_BYTES
    assert runner.recorded_run_bytes('NVIDIA H200', str(tmp_path)) == need
    query = lambda device: ('NVIDIA H200', 10 * gib, 140 * gib)        # noqa: E731
    assert runner.check_gpu_memory(['@cupy:0'], 3, query, str(tmp_path)) == []
    with pytest.raises(ValueError, match=r'--per-device 4 or fewer') as error:
        runner.check_gpu_memory(['@cupy:0'], 8, query, str(tmp_path))
    assert 'need about 20.0 GiB (2.5 GiB each' in str(error.value)
    other = lambda device: ('NVIDIA A100', 10 * gib, 80 * gib)         # noqa: E731
    notes = runner.check_gpu_memory(['@cupy:0', '@cupy:0'], 8, other, str(tmp_path))
    assert len(notes) == 1 and 'memory not checked' in notes[0]
    assert runner.check_gpu_memory(['@numpy'], 8, query, str(tmp_path)) == []


def test_gpu_runs_share_one_kernel_cache():
    env = runner._child_environment(4, '@cupy:0', '/runs/.cupy-kernel-cache')
    assert env['CUPY_CACHE_DIR'] == '/runs/.cupy-kernel-cache'
    assert 'CUPY_CACHE_DIR' not in runner._child_environment(4, '@numpy', '/x') or \
        os.environ.get('CUPY_CACHE_DIR')


def _variant_run(variant, precision, ms):
    return {'batch_norm': variant, 'precision': precision, 'parts': {
        part: {'ms_per_iteration': value} for part, value in zip(
            ('step1', 'step2', 'cross_entropy'), ms)}}


def test_the_variant_comparison_names_the_faster_and_judges_the_default():
    runs = [_variant_run('chainer', 'float32', (10, 20, 9)),
            _variant_run('fused', 'float32', (11, 18, 11)),
            _variant_run('chainer', 'tf32', (8, 15, 7)),
            _variant_run('fused', 'tf32', (7, 14, 6))]
    compared = gpu_check.compare_variants(runs, 'chainer')
    assert compared['faster'] == {
        'float32': {'step1': 'chainer', 'step2': 'fused', 'cross_entropy': 'chainer'},
        'tf32': {'step1': 'fused', 'step2': 'fused', 'cross_entropy': 'fused'}}
    assert compared['fastest'] == {'float32': 'chainer', 'tf32': 'fused'}   # 39 ms against 40
    assert 'keep it' in compared['verdict']
    slower = [_variant_run('chainer', 'float32', (12, 20, 9)), runs[1]]
    verdict = gpu_check.compare_variants(slower, 'chainer')['verdict']
    assert verdict.startswith('fused is faster than the default (chainer)')

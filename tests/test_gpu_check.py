"""The GPU acceptance check: its CPU smoke version end to end, and the pieces that decide on a
GPU (parity, file names, the memory check of runs per device) on fabricated inputs."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest

import background
from reproduce.batch import runner
from reproduce.tools import gpu_check, gpu_steps

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
    assert set(steps) == set(gpu_check.NAMES)
    for name in ('tests', 'tf32'):
        assert steps[name]['status'] == 'skipped' and steps[name]['reason'] == \
            'the device is the CPU'
    for name in ('probe', 'parity', 'benchmark', 'concurrency', 'training'):
        assert steps[name]['status'] == 'passed', (name, steps[name])
    probe = steps['probe']
    assert probe['device'] == '@numpy' and probe['chainer'] == '7.8.1' and probe['python']
    assert probe['cuda_available'] is False and probe['resolution_error']
    assert probe['matplotlib'][0].isdigit()
    assert steps['parity']['problems'] == []
    assert set(steps['parity']['parts']) == {'step1', 'cross_entropy', 'forward_t', 'tanaka',
                                             'pencil', 'ours'}
    assert set(steps['training']['final_loss']) == set(steps['parity']['parts'])
    parts = steps['benchmark']['result']['parts']
    assert set(parts) == {'step1', 'step2', 'cross_entropy', 'pencil', 'evaluation'}
    assert [m['k'] for m in steps['concurrency']['levels']] == [1, 2]
    assert steps['concurrency']['recommended_per_device'] in (1, 2)
    assert record['provenance']['commit'] and record['provenance']['platform']['cpu']
    assert record['total_seconds'] < record['budget']
    markdown = (tmp_path / 'results' / json_path.replace('.json', '.md')).read_text()
    assert '| concurrency | passed |' in markdown and '## benchmark' in markdown
    assert 'written: ' in done.stdout


def test_a_step_that_does_not_fit_the_budget_is_skipped_with_the_reason(tmp_path,
                                                                       monkeypatch):
    """Steps run in order while their estimates fit in what is left of the budget, each with
    what is left as its timeout; the others are skipped, and say why."""
    clock, ran = [1000.0], []

    def fake(name, args, timeout):
        ran.append((name, timeout))
        clock[0] += 30                                   # every step takes 30 s
        found = {'status': 'passed'}
        if name == 'probe':
            found.update(device='@numpy', provenance={'device': 'CPU (test)', 'commit': 'x'})
        return found
    monkeypatch.setattr(gpu_check, 'run_step', fake)
    monkeypatch.setattr(gpu_check.time, 'time', lambda: clock[0])
    args = gpu_check.parser().parse_args(['--smoke', '--device', '@numpy', '--budget', '75',
                                          '--out', str(tmp_path / 'w'), '--results',
                                          str(tmp_path / 'r')])
    assert gpu_check.check(args) == 0
    # smoke estimates: probe 10 (75 s left), parity 60 (45 left: skipped), benchmark 40 (45),
    # tests 5 (15), then nothing fits
    assert ran == [('probe', 75), ('benchmark', 45), ('tests', 15)]
    steps = json.loads((tmp_path / 'r' / 'cpu-test.json').read_text())['steps']
    assert steps['parity']['status'] == 'skipped'
    assert steps['parity']['reason'] == 'would not fit: estimated 60 s, 45 s left of --budget 75'
    assert [steps[n]['status'] for n in ('concurrency', 'training', 'tf32')] == ['skipped'] * 3


def test_a_killed_check_leaves_its_finished_steps_on_disk(tmp_path):
    """The record is written after every step: kill the check (and its step) on the CPU once
    the probe has finished, and the probe's record is there, whole."""
    check = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'reproduce', 'gpu_check.py'), '--smoke',
         '--device', '@numpy', '--out', str(tmp_path / 'work'), '--results',
         str(tmp_path / 'results')], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        for line in check.stdout:
            if line.startswith('--- parity'):          # the probe is done and recorded
                break
        time.sleep(1.0)
    finally:
        os.killpg(check.pid, signal.SIGKILL)
        check.wait()
    (record,) = (tmp_path / 'results').glob('*.json')
    steps = json.loads(record.read_text())['steps']
    assert list(steps) == ['probe'] and steps['probe']['status'] == 'passed'
    assert '| probe | passed |' in record.with_suffix('.md').read_text()
    assert not [p for p in os.listdir(tmp_path / 'results') if p.endswith('.tmp')]


def test_a_step_past_its_time_is_stopped_with_everything_it_started(tmp_path):
    """A step that outlives its timeout is killed with the processes it started (here the
    training step's table script and its runs), and recorded as failed, saying so."""
    args = gpu_check.parser().parse_args(['--smoke', '--device', '@numpy', '--out',
                                          str(tmp_path / 'work'), '--results', str(tmp_path)])
    found = gpu_check.run_step('training', args, timeout=4)
    assert found['status'] == 'failed' and found['error'] == 'stopped after its 4 s'
    time.sleep(0.5)
    left = subprocess.run(['ps', '-eo', 'args'], stdout=subprocess.PIPE, text=True).stdout
    assert str(tmp_path / 'work') not in left


def test_the_parity_reference_is_what_the_cpu_computes(tmp_path):
    """The recorded CPU reference that the parity step compares the GPU with is what its
    command computes now, on this CPU (losses within 1e-4, relative)."""
    with open(gpu_steps.PARITY_REFERENCE) as f:
        recorded = json.load(f)
    assert recorded['configuration'] == gpu_steps.PARITY
    assert recorded['data'] == json.loads(json.dumps(gpu_steps.PARITY_DATA))
    measured = gpu_steps.parity_numbers('@numpy', str(tmp_path / 'parity'))
    assert gpu_steps.compare_parity(recorded['parts'], measured) == []
    for part, numbers in recorded['parts'].items():
        numpy.testing.assert_allclose(measured[part]['losses'], numbers['losses'], rtol=1e-4,
                                      err_msg=part)
        assert measured[part]['accuracy'] == pytest.approx(numbers['accuracy'], abs=0.01)


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


def test_parity_compares_every_epoch_and_the_accuracies():
    reference = {'step1': {'losses': [2.0, 1.5], 'accuracy': 0.5, 'labels': 0.6},
                 'ours': {'losses': [1.0], 'accuracy': 0.4, 'labels': None}}
    close = {'step1': {'losses': [2.02, 1.49], 'accuracy': 0.53, 'labels': 0.62},
             'ours': {'losses': [0.99], 'accuracy': 0.45, 'labels': None}}
    assert gpu_steps.compare_parity(reference, close) == []
    far = {'step1': {'losses': [2.0, 1.6], 'accuracy': 0.5, 'labels': 0.7},
           'pencil': {'losses': [1.0], 'accuracy': 0.4, 'labels': None}}
    problems = gpu_steps.compare_parity(reference, far)
    assert [p.split(':')[0] for p in problems] == ['ours', 'pencil', 'step1', 'step1']
    assert 'in one of the two only' in problems[0] and 'epoch 2 loss' in problems[2]
    assert 'labels 60.0 % against 0.7' in problems[3]


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
    env = runner.run_environment('@cupy:0', '/runs/.cupy-kernel-cache', {})
    assert env['CUPY_CACHE_DIR'] == '/runs/.cupy-kernel-cache'
    assert 'CUPY_CACHE_DIR' not in runner.run_environment('@numpy', '/x', {})


def test_the_readmes_estimates_are_the_checks():
    """reproduce/README.md's estimate table gives each step's STEPS entry, and the first six add
    up to the default budget, as it says."""
    with open(os.path.join(ROOT, 'reproduce', 'README.md')) as f:
        text = f.read()
    shown = [int(n) for n in re.findall(r'^\| [a-zA-Z0-9 ]+ \| (\d+) \| ', text, re.M)]
    assert shown == [gpu_estimate for _, gpu_estimate, _ in gpu_check.STEPS]
    assert sum(shown[:6]) == gpu_check.parser().parse_args([]).budget == 300

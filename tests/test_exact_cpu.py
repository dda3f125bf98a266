"""Exact CPU mode's guard (chainer_compat): where it can hold, what it refuses in one line, and
what it sets. The bits it gives are tested by training in tests/test_regression.py."""
import os
import platform
import subprocess
import sys

import pytest

import chainer_compat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('machine, flags, possible', [
    ('x86_64', {'avx2', 'fma', 'sse2'}, True),
    ('AMD64', {'avx2', 'fma'}, True),
    ('x86_64', {'avx2'}, False),                 # no FMA
    ('x86_64', set(), False),                    # no /proc/cpuinfo to read
    ('aarch64', {'avx2', 'fma'}, False),
])
def test_exact_mode_is_possible_on_x86_64_with_avx2_and_fma(monkeypatch, machine, flags,
                                                            possible):
    monkeypatch.setattr(platform, 'machine', lambda: machine)
    monkeypatch.setattr(chainer_compat, 'cpu_flags', lambda: flags)
    assert chainer_compat.exact_cpu_possible() is possible


def test_asked_for_where_it_cannot_hold_it_is_refused_in_one_line(monkeypatch):
    monkeypatch.setenv(chainer_compat.EXACT_CPU_VARIABLE, '1')
    monkeypatch.setattr(platform, 'machine', lambda: 'x86_64')
    monkeypatch.setattr(chainer_compat, 'cpu_flags', lambda: {'avx2'})
    before = dict(os.environ)
    with pytest.raises(chainer_compat.ExactCpuError) as error:
        chainer_compat._apply_exact_cpu()
    assert str(error.value).count('\n') == 0 and 'lacks fma' in str(error.value)
    assert dict(os.environ) == before                          # nothing set


def test_it_sets_the_pinned_numerics_or_says_that_numpy_came_first(monkeypatch):
    monkeypatch.setattr(platform, 'machine', lambda: 'x86_64')
    monkeypatch.setattr(chainer_compat, 'cpu_flags', lambda: {'avx2', 'fma'})
    for name in chainer_compat.EXACT_CPU_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(chainer_compat.EXACT_CPU_VARIABLE, '0')
    chainer_compat._apply_exact_cpu()                          # not asked for: nothing set
    assert not set(chainer_compat.EXACT_CPU_SETTINGS) & set(os.environ)
    monkeypatch.setenv(chainer_compat.EXACT_CPU_VARIABLE, '1')
    # numpy is loaded in this process with other settings: too late to pin them
    with pytest.raises(chainer_compat.ExactCpuError, match='numpy was imported before'):
        chainer_compat._apply_exact_cpu()
    for name, value in chainer_compat.EXACT_CPU_SETTINGS.items():   # as exported before Python
        monkeypatch.setenv(name, value)
    chainer_compat._apply_exact_cpu()
    assert {k: os.environ[k] for k in chainer_compat.EXACT_CPU_SETTINGS} == \
        chainer_compat.EXACT_CPU_SETTINGS
    assert chainer_compat.EXACT_CPU_SETTINGS['OPENBLAS_CORETYPE'] == 'Haswell'
    assert chainer_compat.EXACT_CPU_SETTINGS['OPENBLAS_NUM_THREADS'] == '1'


COMMANDS = sorted(name for name in os.listdir(os.path.join(ROOT, 'reproduce'))
                  if name.endswith('.py') and name != '__init__.py')


@pytest.mark.skipif(not chainer_compat.exact_cpu_possible(),
                    reason='exact CPU mode needs an x86-64 CPU with AVX2 and FMA')
def test_every_command_starts_in_exact_mode():
    """No command loads numpy before the guard can pin its numerics (figure3.py did)."""
    env = dict(os.environ, **{chainer_compat.EXACT_CPU_VARIABLE: '1'})
    for name in chainer_compat.EXACT_CPU_SETTINGS:
        env.pop(name, None)
    started = [(command, subprocess.Popen(
        [sys.executable] + command + ['--help'], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True))
        for command in [[os.path.join('reproduce', name)] for name in COMMANDS]
        + [['-m', 'reproduce.report']]]
    assert len(started) == 11               # the ten scripts and the report
    for command, process in started:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, (command, stderr[-2000:])


def test_a_value_other_than_0_or_1_is_refused_in_one_line():
    for value, requested in (('', False), ('0', False), ('1', True)):
        assert chainer_compat.exact_cpu_requested({chainer_compat.EXACT_CPU_VARIABLE: value}) \
            is requested
    with pytest.raises(chainer_compat.ExactCpuError, match="give 1 .* or 0"):
        chainer_compat.exact_cpu_requested({chainer_compat.EXACT_CPU_VARIABLE: 'yes'})
    done = subprocess.run(
        [sys.executable, os.path.join('reproduce', 'table2.py'), '--help'], cwd=ROOT,
        env=dict(os.environ, **{chainer_compat.EXACT_CPU_VARIABLE: 'true'}),
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ''
    assert done.stderr == ("error: MIXUP_EXACT_CPU='true': give 1 (exact CPU mode) or 0 "
                           '(off)\n'), done.stderr

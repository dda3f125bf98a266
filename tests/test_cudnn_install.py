"""cuDNN comes with the documented install (``.[cuda12]``: the nvidia-cudnn-cu12 8.9 wheel).

CuPy 13 does not look for cuDNN in the wheel, so chainer_compat loads the wheel's libcudnn.so.8
before Chainer imports CuPy's cuDNN binding, and ``chainer_compat.cudnn_status()`` says in one line
which cuDNN is in use or what fixes its absence. The preload and the lines are checked here against
a fake wheel layout; the real check (CuPy's binding reads the wheel's version, no GPU needed) runs
where CuPy and the wheel are installed, and is skipped elsewhere with the reason.
"""
import ctypes
import importlib.util
import json
import os
import subprocess
import sys

import pytest

import chainer_compat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fake_wheel(site, name='libcudnn.so.8'):
    lib = site / 'nvidia' / 'cudnn' / 'lib'
    lib.mkdir(parents=True)
    (lib / name).write_bytes(b'')
    return str(lib / name)


def test_the_wheels_library_is_found_on_the_path(tmp_path):
    empty, site = tmp_path / 'empty', tmp_path / 'site'
    empty.mkdir()
    path = fake_wheel(site)
    assert chainer_compat.cudnn_wheel_library([str(empty), str(site)]) == path
    assert chainer_compat.cudnn_wheel_library([str(empty)]) is None


def test_a_cudnn_9_wheel_is_not_taken_for_cudnn_8(tmp_path):
    fake_wheel(tmp_path, 'libcudnn.so.9')          # CuPy 13 links libcudnn.so.8
    assert chainer_compat.cudnn_wheel_library([str(tmp_path)]) is None


def test_the_preload_loads_the_wheels_library_once_and_globally(tmp_path, monkeypatch):
    path = fake_wheel(tmp_path)
    loaded = []
    monkeypatch.setattr(ctypes, 'CDLL', lambda name, mode=0: loaded.append((name, mode)))
    state = {'path': None, 'error': None}
    assert chainer_compat.preload_cudnn([str(tmp_path)], state=state) == {'path': path,
                                                                          'error': None}
    chainer_compat.preload_cudnn([str(tmp_path)], state=state)
    assert loaded == [(path, ctypes.RTLD_GLOBAL)]


def test_without_the_wheel_nothing_is_loaded(tmp_path):
    def loader(name):
        raise AssertionError('loaded ' + name)
    state = {'path': None, 'error': None}
    assert chainer_compat.preload_cudnn([str(tmp_path)], loader, state) == state
    assert state == {'path': None, 'error': None}


def test_a_library_that_does_not_load_is_kept_for_the_status_line(tmp_path):
    path = fake_wheel(tmp_path)                     # an empty file: ctypes refuses it
    state = chainer_compat.preload_cudnn([str(tmp_path)], state={'path': None, 'error': None})
    assert state['path'] is None and state['error'].startswith(path + ' (')
    facts = dict(FACTS, version=None, preload_error=state['error'])
    line = chainer_compat.cudnn_line(facts)
    assert line.startswith('WARNING: cuDNN not found: ' + path)
    assert chainer_compat.CUDNN_FIX in line


def test_chainer_compat_preloads_on_import(tmp_path):
    """At import (before Chainer imports CuPy), from the first sys.path entry holding the wheel."""
    path = fake_wheel(tmp_path)
    code = ('import sys; sys.path.insert(0, {!r}); import chainer_compat, json; '
            'print(json.dumps(chainer_compat.CUDNN_PRELOAD))'.format(str(tmp_path)))
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    state = json.loads(out.strip().splitlines()[-1])
    assert state['path'] is None and state['error'].startswith(path + ' (')


FACTS = {'cupy': '13.6.0', 'cupy_error': None, 'binding': True, 'version': 8907,
         'path': '/site/nvidia/cudnn/lib/libcudnn.so.8', 'preload_error': None,
         'disabled': False, 'chainer_error': None}


@pytest.mark.parametrize('change, expected', [
    ({}, 'cuDNN 8.9.7 (/site/nvidia/cudnn/lib/libcudnn.so.8)'),
    ({'path': None}, "cuDNN 8.9.7 (the system's library path)"),
    ({'cupy': None, 'cupy_error': "ModuleNotFoundError: No module named 'cupy'"},
     "WARNING: no cuDNN: CuPy is not importable (ModuleNotFoundError: No module named 'cupy'); "
     "install CuPy with cuDNN: .venv/bin/pip install -e '.[cuda12]'"),
    ({'binding': False, 'version': None}, 'WARNING: no cuDNN: CuPy 13.6.0 was built without cuDNN'),
    ({'version': None}, 'WARNING: cuDNN not found (CuPy 13.6.0 looks for libcudnn.so.8)'),
    ({'disabled': True}, 'WARNING: cuDNN 8.9.7 (/site/nvidia/cudnn/lib/libcudnn.so.8) is loaded '
                         'but not in use: CHAINER_CUDNN=0 is set'),
    ({'chainer_error': 'libcublas.so.12: cannot open'}, 'WARNING: cuDNN 8.9.7 '
     '(/site/nvidia/cudnn/lib/libcudnn.so.8) is loaded, but Chainer cannot use CuPy '
     '(libcublas.so.12: cannot open)'),
])
def test_the_status_line(change, expected):
    line = chainer_compat.cudnn_line(dict(FACTS, **change))
    assert line.startswith(expected)
    assert '\n' not in line
    if line.startswith('WARNING: cuDNN not found'):
        assert line.endswith("fix: pip install 'nvidia-cudnn-cu12==8.9.*' "
                             "(or .venv/bin/pip install -e '.[cuda12]')")
    if 'built without cuDNN' in line:
        assert 'CUDA 13' in line and ".[cuda12]'" in line


def test_the_status_without_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, 'cupy', None)      # import cupy raises ImportError
    line = chainer_compat.cudnn_status()
    assert line.startswith('WARNING: no cuDNN: CuPy is not importable (')
    assert line.endswith(".venv/bin/pip install -e '.[cuda12]'")


@pytest.mark.parametrize('number, text', [(8907, '8.9.7'), (8801, '8.8.1'), (90100, '9.1.0')])
def test_version_text(number, text):
    assert chainer_compat.cudnn_version_text(number) == text


def test_cupys_binding_reads_the_wheels_cudnn_without_a_gpu():
    """The real thing, where `.[cuda12]` is installed: in a fresh process chainer_compat loads the
    wheel's library and CuPy's binding (cupy.cuda.cudnn.getVersion, no GPU needed) reports 8.9."""
    if importlib.util.find_spec('cupy') is None:
        pytest.skip("CuPy is not installed here (.venv/bin/pip install -e '.[cuda12]' brings it)")
    wheel = chainer_compat.cudnn_wheel_library()
    if wheel is None:
        pytest.skip('the nvidia-cudnn-cu12 8.9 wheel is not installed here (' +
                    chainer_compat.CUDNN_FIX + ')')
    code = ('import chainer_compat, json; print(json.dumps([chainer_compat.cudnn_facts(), '
            'chainer_compat.CUDNN_PRELOAD, chainer_compat.cudnn_status()]))')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    env.pop('CHAINER_CUDNN', None)
    out = subprocess.run([sys.executable, '-W', 'ignore', '-c', code], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True).stdout
    facts, preload, line = json.loads(out.strip().splitlines()[-1])
    assert preload == {'path': wheel, 'error': None}
    assert facts['binding'] and facts['version'] // 100 == 89, facts
    assert os.path.realpath(facts['path']) == os.path.realpath(wheel), facts
    assert 'cuDNN 8.9.' in line and wheel in line, line

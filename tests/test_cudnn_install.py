"""The CUDA 12 install works where only a driver is (``.[cuda12]``: CuPy 13 and the nvidia-*-cu12
wheels of cuBLAS, NVRTC, cuRAND and cuDNN 8.9).

CuPy 13 does not look in those wheels, so chainer_compat loads their libraries before Chainer
imports CuPy, and ``chainer_compat.cudnn_status()`` says in one line which cuDNN is in use or what
is wrong (Chainer's own reason first). The preload and the lines are checked here against fake
wheel layouts; the real check (in a fresh process Chainer's CUDA backend is available and CuPy's
binding reads cuDNN's version, no GPU needed) runs where the extra is installed, and is skipped
elsewhere with the reason.
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
SONAMES = [soname for _, soname in chainer_compat.CUDA12_WHEEL_LIBRARIES]


def fake_wheel(site, folder='cudnn', name='libcudnn.so.8'):
    lib = site / 'nvidia' / folder / 'lib'
    lib.mkdir(parents=True, exist_ok=True)
    (lib / name).write_bytes(b'')
    return str(lib / name)


def fake_wheels(site):
    """Every library of the table, in a layout like the wheels'; returns their paths in order."""
    return [fake_wheel(site, *entry) for entry in chainer_compat.CUDA12_WHEEL_LIBRARIES]


def test_the_table_loads_cublaslt_before_cublas_and_names_what_cupy_13_links():
    assert SONAMES.index('libcublasLt.so.12') < SONAMES.index('libcublas.so.12')
    assert {'libcublas.so.12', 'libnvrtc.so.12', 'libcurand.so.10', 'libcudnn.so.8'} <= set(SONAMES)


def test_the_wheels_libraries_are_found_on_the_path_in_the_tables_order(tmp_path):
    empty, site, other = tmp_path / 'empty', tmp_path / 'site', tmp_path / 'other'
    empty.mkdir()
    paths = fake_wheels(site)
    fake_wheel(other, 'cublas', 'libcublas.so.12')        # a later entry: not taken
    found = chainer_compat.wheel_libraries([str(empty), str(site), str(other)])
    assert found == list(zip(SONAMES, paths))
    assert chainer_compat.wheel_libraries([str(empty)]) == []


def test_only_the_installed_wheels_are_found(tmp_path):
    path = fake_wheel(tmp_path)
    assert chainer_compat.wheel_libraries([str(tmp_path)]) == [('libcudnn.so.8', path)]


def test_a_cudnn_9_wheel_is_not_taken_for_cudnn_8(tmp_path):
    fake_wheel(tmp_path, 'cudnn', 'libcudnn.so.9')          # CuPy 13 links libcudnn.so.8
    assert chainer_compat.wheel_libraries([str(tmp_path)]) == []


def test_the_preload_loads_each_library_once_globally_in_dependency_order(tmp_path, monkeypatch):
    paths = fake_wheels(tmp_path)
    loaded = []
    monkeypatch.setattr(ctypes, 'CDLL', lambda name, mode=0: loaded.append((name, mode)))
    state = {}
    assert chainer_compat.preload_wheel_libraries([str(tmp_path)], state=state) == {
        soname: {'path': path, 'error': None} for soname, path in zip(SONAMES, paths)}
    chainer_compat.preload_wheel_libraries([str(tmp_path)], state=state)
    assert loaded == [(path, ctypes.RTLD_GLOBAL) for path in paths]


def test_without_the_wheels_nothing_is_loaded(tmp_path):
    def loader(name):
        raise AssertionError('loaded ' + name)
    assert chainer_compat.preload_wheel_libraries([str(tmp_path)], loader, {}) == {}


def test_a_library_that_does_not_load_is_kept_for_the_status_line(tmp_path):
    paths = fake_wheels(tmp_path)               # empty files: ctypes refuses them
    state = chainer_compat.preload_wheel_libraries([str(tmp_path)], state={})
    assert all(state[s]['path'] is None and state[s]['error'].startswith(p + ' (')
               for s, p in zip(SONAMES, paths))
    line = chainer_compat.cudnn_line(dict(FACTS, version=None,
                                          preload_error=state['libcudnn.so.8']['error']))
    assert line.startswith('WARNING: cuDNN not found: ' + paths[-1])
    assert chainer_compat.CUDNN_FIX in line


def test_chainer_compat_preloads_on_import(tmp_path):
    """At import (before Chainer imports CuPy), from the first sys.path entry holding the wheels."""
    paths = fake_wheels(tmp_path)
    code = ('import sys; sys.path.insert(0, {!r}); import chainer_compat, json; '
            'print(json.dumps(chainer_compat.CUDA_PRELOAD))'.format(str(tmp_path)))
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    state = json.loads(out.strip().splitlines()[-1])
    for soname, path in zip(SONAMES, paths):
        assert state[soname]['path'] is None and state[soname]['error'].startswith(path + ' (')


FACTS = {'cupy': '13.6.0', 'cupy_error': None, 'binding': True, 'version': 8907,
         'path': '/site/nvidia/cudnn/lib/libcudnn.so.8', 'preload_error': None,
         'preload_failed': [], 'disabled': False, 'chainer_error': None}
NO_CUBLAS = 'ImportError: libcublas.so.12: cannot open shared object file'


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
    # Chainer's reason first, then cuDNN's state
    ({'chainer_error': NO_CUBLAS}, 'WARNING: Chainer cannot use CuPy (' + NO_CUBLAS + "); fix: "
     ".venv/bin/pip install -e '.[cuda12]'; cuDNN 8.9.7 (/site/nvidia/cudnn/lib/libcudnn.so.8) "
     'is loaded'),
    ({'chainer_error': NO_CUBLAS, 'preload_failed': ['libcublas.so.12: /s/libcublas.so.12 (bad)']},
     'WARNING: Chainer cannot use CuPy (' + NO_CUBLAS + '); from the wheels, failed to load: '
     "libcublas.so.12: /s/libcublas.so.12 (bad); fix: .venv/bin/pip install -e '.[cuda12]'; "
     'cuDNN 8.9.7'),
    ({'chainer_error': NO_CUBLAS, 'version': None}, 'WARNING: Chainer cannot use CuPy (' +
     NO_CUBLAS + "); fix: .venv/bin/pip install -e '.[cuda12]'; cuDNN not found (CuPy 13.6.0"),
    ({'chainer_error': "ImportError: No module named 'cupy'", 'cupy': None,
      'cupy_error': "ModuleNotFoundError: No module named 'cupy'"},
     "WARNING: Chainer cannot use CuPy (ImportError: No module named 'cupy'); fix: "
     ".venv/bin/pip install -e '.[cuda12]'; no cuDNN"),
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
    """Where Chainer itself found no CuPy (this venv without the extra), its reason comes first."""
    monkeypatch.setitem(sys.modules, 'cupy', None)      # import cupy raises ImportError
    cuda = sys.modules['chainer.backends.cuda']
    line = chainer_compat.cudnn_status()
    if cuda.available:
        assert line.startswith('WARNING: no cuDNN: CuPy is not importable (')
        assert line.endswith(".venv/bin/pip install -e '.[cuda12]'")
    else:
        assert line.startswith('WARNING: Chainer cannot use CuPy ({}: '.format(
            type(cuda._resolution_error).__name__))
        assert line.endswith("fix: .venv/bin/pip install -e '.[cuda12]'; no cuDNN")


@pytest.mark.parametrize('number, text', [(8907, '8.9.7'), (8801, '8.8.1'), (90100, '9.1.0')])
def test_version_text(number, text):
    assert chainer_compat.cudnn_version_text(number) == text


REAL_CHECK = '''
import json, chainer_compat
import chainer.backends.cuda as cuda
facts = chainer_compat.cudnn_facts()
from cupy_backends.cuda.libs import curand, nvrtc    # curand links libcurand.so.10
print(json.dumps({
    'available': cuda.available, 'cudnn_enabled': cuda.cudnn_enabled,
    'resolution_error': repr(getattr(cuda, '_resolution_error', None)),
    'cudnn_version': int(cuda.cuda.cudnn.getVersion()), 'nvrtc': list(nvrtc.getVersion()),
    'preload': chainer_compat.CUDA_PRELOAD, 'facts': facts, 'line': chainer_compat.cudnn_status()}))
'''


def test_chainer_finds_cuda_and_cudnn_from_the_wheels_without_a_gpu():
    """The real thing, where `.[cuda12]` is installed: in a fresh process (only a driver, or not
    even one, on the system) chainer_compat loads the wheels' libraries, Chainer's CUDA backend is
    available, CuPy's binding reads cuDNN 8.9's version and NVRTC's (the first kernel needs it)."""
    if importlib.util.find_spec('cupy') is None:
        pytest.skip("CuPy is not installed here (.venv/bin/pip install -e '.[cuda12]' brings it)")
    wheels = dict(chainer_compat.wheel_libraries())
    if set(wheels) != set(SONAMES):
        pytest.skip('the wheels of {} are not installed here ({})'.format(
            ', '.join(sorted(set(SONAMES) - set(wheels))), chainer_compat.CUDA12_FIX))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    env.pop('CHAINER_CUDNN', None)
    env.pop('LD_LIBRARY_PATH', None)                    # the wheels alone
    out = subprocess.run([sys.executable, '-W', 'ignore', '-c', REAL_CHECK], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    print(json.dumps(result, indent=1))                  # pytest -s shows it
    assert result['available'] and result['cudnn_enabled'], result
    assert result['preload'] == {s: {'path': p, 'error': None} for s, p in wheels.items()}
    assert result['cudnn_version'] // 1000 == 8 and result['facts']['version'] // 100 == 89, result
    assert result['nvrtc'][0] == 12, result
    assert os.path.realpath(result['facts']['path']) == os.path.realpath(wheels['libcudnn.so.8'])
    assert result['line'] == 'cuDNN {} ({})'.format(
        chainer_compat.cudnn_version_text(result['cudnn_version']), wheels['libcudnn.so.8'])

"""Makes Chainer 7.8.1 import quietly on today's Python and NumPy (a stand-in for the removed
``numpy.distutils.system_info``, its deprecation warnings silenced, no CuPy-13 version warning),
loads cuDNN from the ``nvidia-cudnn-cu12`` wheel where installed (:func:`cudnn_status`), and on
request (``MIXUP_EXACT_CPU=1``) pins the CPU numerics before numpy loads: OpenBLAS's Haswell
kernel, one thread, numpy's AVX2 paths, so that CPU runs give the same bits on any x86-64 machine
with AVX2 and FMA. Import it before the first ``import chainer``/``numpy`` (``reproduce``,
``updaters``, ``models`` and ``datasets`` do). README and reproduce/README.md ("Regression
checks", "Supported combinations") say why.
"""
import importlib
import os
import sys
import types
import warnings


def _install_numpy_distutils_stand_in():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            importlib.import_module('numpy.distutils.system_info')
        return False
    except ImportError:
        package = types.ModuleType('numpy.distutils')
        package.__path__ = []
        system_info = types.ModuleType('numpy.distutils.system_info')
        system_info.get_info = lambda name, notfound_action=0: {}
        package.system_info = system_info
        sys.modules['numpy.distutils'] = package
        sys.modules['numpy.distutils.system_info'] = system_info
        return True


#: The environment variable that turns exact CPU mode on ('1') .
EXACT_CPU_VARIABLE = 'MIXUP_EXACT_CPU'
#: numpy's AVX-512 dispatch targets (numpy 1.2x); names a CPU or numpy build lacks are ignored.
NUMPY_AVX512_TARGETS = ('AVX512F', 'AVX512CD', 'AVX512_KNL', 'AVX512_KNM', 'AVX512_SKX',
                        'AVX512_CLX', 'AVX512_CNL', 'AVX512_ICL', 'AVX512_SPR')
#: What exact CPU mode sets: the OpenBLAS kernel, one BLAS/OpenMP thread, numpy's AVX2 paths.
EXACT_CPU_SETTINGS = {
    'OPENBLAS_CORETYPE': 'Haswell',
    'OPENBLAS_NUM_THREADS': '1',
    'OMP_NUM_THREADS': '1',
    'MKL_NUM_THREADS': '1',
    'NPY_DISABLE_CPU_FEATURES': ' '.join(NUMPY_AVX512_TARGETS),
}


class ExactCpuError(RuntimeError):
    """Exact CPU mode was asked for where it cannot hold."""


def exact_cpu_requested(environ=None):
    """Whether ``MIXUP_EXACT_CPU=1`` is set (in ``environ``, default ``os.environ``); unset,
    empty or '0' is off, any other value an :class:`ExactCpuError` (a typo is not silently off)."""
    value = (environ if environ is not None else os.environ).get(EXACT_CPU_VARIABLE, '')
    if value not in ('', '0', '1'):
        raise ExactCpuError('{}={!r}: give 1 (exact CPU mode) or 0 (off)'.format(
            EXACT_CPU_VARIABLE, value))
    return value == '1'


def cpu_flags():
    """The CPU's feature flags as Linux reports them (empty where /proc/cpuinfo is absent)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def exact_cpu_possible():
    """Whether exact CPU mode can hold here: an x86-64 CPU with AVX2 and FMA."""
    import platform
    return platform.machine() in ('x86_64', 'AMD64') and {'avx2', 'fma'} <= cpu_flags()


def _apply_exact_cpu():
    """Put :data:`EXACT_CPU_SETTINGS` into the environment when exact CPU mode is asked for."""
    if not exact_cpu_requested():
        return
    import platform
    flags = cpu_flags()
    if not exact_cpu_possible():
        raise ExactCpuError(
            '{}=1 needs an x86-64 CPU with AVX2 and FMA (read from /proc/cpuinfo); this machine '
            'is {} and lacks {}: unset {} (README, "Regression checks")'.format(
                EXACT_CPU_VARIABLE, platform.machine(),
                ', '.join(sorted({'avx2', 'fma'} - flags)) or 'a readable /proc/cpuinfo',
                EXACT_CPU_VARIABLE))
    if 'numpy' in sys.modules:
        differ = sorted(k for k, v in EXACT_CPU_SETTINGS.items() if os.environ.get(k) != v)
        if differ:
            raise ExactCpuError(
                '{}=1: numpy was imported before chainer_compat, with other {}; import '
                'chainer_compat (or any package of this project) first, or export the settings '
                'before Python starts'.format(EXACT_CPU_VARIABLE, ', '.join(differ)))
    os.environ.update(EXACT_CPU_SETTINGS)


def _import_chainer():
    os.environ.setdefault('CHAINER_WARN_VERSION_MISMATCH', '0')
    _install_numpy_distutils_stand_in()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', PendingDeprecationWarning)
        warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
        import chainer  # noqa: F401
    return chainer


# --- cuDNN from its wheel -------------------------------------------------------------------------
# CuPy 13 (cupy-cuda12x) opens libcudnn.so.8 when cupy.cuda.cudnn is first imported (Chainer does so
# on import) and looks only in ~/.cupy/cuda_lib and the system's library path. The wheel's library,
# loaded here first by its path (RTLD_GLOBAL), is then the one CuPy's binding links to: the dynamic
# linker reuses an object already loaded under the same soname, and the library finds its own parts
# (libcudnn_*_infer/train.so.8) beside it. Without the wheel nothing is loaded; a failure to load is
# kept for cudnn_status, never raised. Linux only (the wheel's x86-64 build).

#: The command that brings the cuDNN that CuPy 13 loads.
CUDNN_FIX = "pip install 'nvidia-cudnn-cu12==8.9.*' (or .venv/bin/pip install -e '.[cuda12]')"
#: Where the nvidia-cudnn-cu12 8.x wheel puts cuDNN, under a site-packages directory.
CUDNN_WHEEL_LIBRARY = os.path.join('nvidia', 'cudnn', 'lib', 'libcudnn.so.8')
#: What :func:`preload_cudnn` did at import: ``path`` loaded, or ``error`` (the path and why).
CUDNN_PRELOAD = {'path': None, 'error': None}


def cudnn_wheel_library(paths=None):
    """Path of ``libcudnn.so.8`` from an installed nvidia-cudnn-cu12 8.x wheel: the first found
    under an entry of ``paths`` (default ``sys.path``, where the wheel's ``nvidia`` folder is), or
    None."""
    for entry in (sys.path if paths is None else paths):
        candidate = os.path.join(entry or os.curdir, CUDNN_WHEEL_LIBRARY)
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    return None


def preload_cudnn(paths=None, loader=None, state=None):
    """Loads :func:`cudnn_wheel_library` (``loader(path)``, default ``ctypes.CDLL`` with
    ``RTLD_GLOBAL``) and records the outcome in ``state`` (default :data:`CUDNN_PRELOAD`), which
    it returns; no wheel, nothing done. Never raises for a library that does not load."""
    state = CUDNN_PRELOAD if state is None else state
    path = cudnn_wheel_library(paths)
    if path is None or state.get('path') == path:
        return state
    if loader is None:
        import ctypes

        def loader(name):
            return ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
    try:
        loader(path)
        state.update(path=path, error=None)
    except OSError as e:
        state.update(path=None, error='{} ({})'.format(path, e))
    return state


def cudnn_version_text(version):
    """cuDNN's version number as text: 8907 -> '8.9.7' (cuDNN 8), 90100 -> '9.1.0' (cuDNN 9)."""
    major, rest = (version // 10000, version % 10000) if version >= 10000 else \
        (version // 1000, version % 1000)
    return '{}.{}.{}'.format(major, rest // 100, rest % 100)


def _loaded_library(stem):
    """Path of the loaded shared object whose file name starts with ``stem`` (/proc/self/maps)."""
    try:
        with open('/proc/self/maps') as f:
            for line in f:
                path = line.split(None, 5)[-1].strip()
                if os.path.basename(path).startswith(stem):
                    return path
    except OSError:
        pass
    return None


def cudnn_facts():
    """What :func:`cudnn_line` reports, gathered from this process: CuPy's version (``cupy``, or
    None with ``cupy_error``), whether this CuPy build has a cuDNN binding (``binding``; CuPy's
    CUDA 13 wheels have none), the version its binding reports (``version``, or None where
    libcudnn.so.8 could not be opened), the library's path, what the preload did, whether
    ``CHAINER_CUDNN=0`` turns cuDNN off, and why Chainer cannot use CuPy (``chainer_error``)."""
    facts = {'cupy': None, 'cupy_error': None, 'binding': False, 'version': None, 'path': None,
             'preload_error': CUDNN_PRELOAD['error'],
             'disabled': os.environ.get('CHAINER_CUDNN', '1') == '0', 'chainer_error': None}
    try:
        import cupy
        facts['cupy'] = cupy.__version__
    except Exception as e:   # not installed, or a broken install: the line says which
        facts['cupy_error'] = '{}: {}'.format(type(e).__name__, e)
        return facts
    import importlib.util
    try:
        facts['binding'] = importlib.util.find_spec('cupy_backends.cuda.libs.cudnn') is not None
    except (ImportError, ValueError):
        facts['binding'] = False
    if facts['binding']:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')      # CuPy's own advice names ~/.cupy/cuda_lib
                from cupy.cuda import cudnn
            if cudnn.available:
                facts['version'] = int(cudnn.getVersion())
        except Exception as e:
            facts['preload_error'] = facts['preload_error'] or '{}: {}'.format(type(e).__name__, e)
    if facts['version'] is not None:
        facts['path'] = _loaded_library('libcudnn.so') or CUDNN_PRELOAD['path']
    cuda = sys.modules.get('chainer.backends.cuda')
    if cuda is not None and not cuda.available:
        facts['chainer_error'] = str(getattr(cuda, '_resolution_error', None) or 'no CUDA')
    return facts


def cudnn_line(facts):
    """One line from :func:`cudnn_facts`: ``cuDNN 8.9.7 (path)`` where cuDNN is in use, else a
    line starting ``WARNING:`` that says why not and the command that fixes it."""
    slow = 'Chainer convolves by im2col + GEMM and normalises batches without cuDNN (slower)'
    if facts['cupy'] is None:
        return ("WARNING: no cuDNN: CuPy is not importable ({}); install CuPy with cuDNN: "
                ".venv/bin/pip install -e '.[cuda12]'".format(facts['cupy_error']))
    if not facts['binding']:
        return ('WARNING: no cuDNN: CuPy {} was built without cuDNN (CuPy 13 for CUDA 13 has none, '
                'and no cuDNN 8 exists for CUDA 13); {}; for cuDNN use CUDA 12: '
                ".venv/bin/pip install -e '.[cuda12]'".format(facts['cupy'], slow))
    if facts['version'] is None:
        return 'WARNING: cuDNN not found{} (CuPy {} looks for libcudnn.so.8); {}; fix: {}'.format(
            ': ' + facts['preload_error'] if facts['preload_error'] else '', facts['cupy'], slow,
            CUDNN_FIX)
    where = facts['path'] or "the system's library path"
    if facts.get('chainer_error'):
        return 'WARNING: cuDNN {} ({}) is loaded, but Chainer cannot use CuPy ({})'.format(
            cudnn_version_text(facts['version']), where, facts['chainer_error'])
    if facts['disabled']:
        return ('WARNING: cuDNN {} ({}) is loaded but not in use: CHAINER_CUDNN=0 is set; {}; '
                'unset CHAINER_CUDNN to use it'.format(cudnn_version_text(facts['version']),
                                                       where, slow))
    return 'cuDNN {} ({})'.format(cudnn_version_text(facts['version']), where)


def cudnn_status():
    """One line for the benchmark and the GPU check: the cuDNN in use (``cuDNN 8.9.7 (path)``),
    or ``WARNING: ...`` with the reason and the command that fixes it. Imports CuPy."""
    return cudnn_line(cudnn_facts())


# --- import ---------------------------------------------------------------------------------------
try:
    _apply_exact_cpu()
except ExactCpuError as _error:   # a setting of the environment: one line, no traceback
    sys.stderr.write('error: {}\n'.format(_error))
    sys.exit(2)
preload_cudnn()          # before Chainer imports CuPy's cuDNN binding
chainer = _import_chainer()

"""Make Chainer 7.8.1 importable, quietly, on today's Python and NumPy; on request, pin the CPU
numerics so that CPU runs give the same bits on every x86-64 machine.

Import this module before the first ``import chainer`` or ``import numpy`` (every package of this
project does so in its ``__init__``). It deals with three things Chainer 7.8.1 trips over today:

* ``chainer/_environment_check.py`` imports ``numpy.distutils.system_info``, which NumPy 1.26 no
  longer provides on Python >= 3.12. Chainer uses it only for a macOS BLAS check, so where the
  import fails a stand-in module whose ``get_info`` finds nothing is registered instead.
* On Python <= 3.11 the same import, and Chainer's ``pkg_resources`` import, print deprecation
  warnings that concern Chainer's own code; they are silenced for the duration of the import only.
* Chainer compares the installed CuPy with the 7.x series it was released with and warns about
  CuPy 13, which works (README, "Supported combinations"); ``CHAINER_WARN_VERSION_MISMATCH=0`` turns that warning off
  unless the user has set the variable.

Exact CPU mode (``MIXUP_EXACT_CPU=1`` in the environment): floating-point results on the CPU
depend on which OpenBLAS kernel the machine selects (Haswell, SkylakeX, Zen, ...), on OpenBLAS's
thread count (some kernels split a product differently with more threads) and on which SIMD path
numpy takes for ``exp``, ``log``, ``tanh``... (AVX-512, AVX2 or baseline). Training amplifies those
last-bit differences into different accuracies. With the variable set, this module fixes all three
before numpy is loaded: OpenBLAS's Haswell kernel, one thread, and numpy's AVX2 paths (every
AVX-512 path disabled), which every x86-64 CPU with AVX2 and FMA (Intel since 2013, AMD since
2017) can run. Together with the same numpy/OpenBLAS build (numpy 1.26.4's wheel), the same
Python packages and the same settings, a CPU run then gives bit-identical numbers on any such
machine (README, "Regression checks"). It refuses, with one line, a machine that lacks AVX2 or
FMA, and a process that imported numpy before this module with other settings.
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
    """Whether ``MIXUP_EXACT_CPU=1`` is set (in ``environ``, default ``os.environ``)."""
    return (environ if environ is not None else os.environ).get(EXACT_CPU_VARIABLE, '') == '1'


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


def _apply_exact_cpu():
    """Put :data:`EXACT_CPU_SETTINGS` into the environment when exact CPU mode is asked for."""
    if not exact_cpu_requested():
        return
    import platform
    flags = cpu_flags()
    if platform.machine() not in ('x86_64', 'AMD64') or not {'avx2', 'fma'} <= flags:
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


try:
    _apply_exact_cpu()
except ExactCpuError as _error:   # a setting of the environment: one line, no traceback
    sys.stderr.write('error: {}\n'.format(_error))
    sys.exit(2)
chainer = _import_chainer()

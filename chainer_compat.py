"""Makes Chainer 7.8.1 import quietly on today's Python and NumPy (a stand-in for the removed
``numpy.distutils.system_info``, no deprecation, CuPy-13 version or NCCL warning), loads the CUDA
12 libraries CuPy 13 needs from the nvidia-*-cu12 wheels where installed (even where the system
has its own: pip resolved the wheels together), so that a machine with only a driver runs
(:func:`cudnn_status`), and on request (``MIXUP_EXACT_CPU=1``) pins the CPU numerics before numpy
loads (OpenBLAS's Haswell kernel, one thread, numpy's AVX2 paths: the same bits on any x86-64
CPU with AVX2 and FMA). Import it before the first ``import chainer``/``numpy`` (``reproduce``,
``updaters``, ``models`` and ``datasets`` do); README and reproduce/README.md say why."""
import importlib
import os
import platform
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


def cpuinfo(field):
    """The value of the first line of /proc/cpuinfo (Linux) that starts with ``field``, or None."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith(field):
                    return line.split(':', 1)[1]
    except OSError:
        pass
    return None


def cpu_flags():
    """The CPU's feature flags as Linux reports them (empty where /proc/cpuinfo is absent)."""
    return set((cpuinfo('flags') or '').split())


def exact_cpu_possible():
    """Whether exact CPU mode can hold here: an x86-64 CPU with AVX2 and FMA."""
    return platform.machine() in ('x86_64', 'AMD64') and {'avx2', 'fma'} <= cpu_flags()


def _apply_exact_cpu():
    """Put :data:`EXACT_CPU_SETTINGS` into the environment when exact CPU mode is asked for."""
    if not exact_cpu_requested():
        return
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
        # Chainer's multi-GPU updater imports cupy.cuda.nccl: single-GPU runs need no NCCL
        warnings.filterwarnings('ignore', message=r'\s*nccl library could not be loaded')
        import chainer  # noqa: F401
    return chainer


# --- CUDA 12 libraries from their wheels ----------------------------------------------------------
# CuPy 13 (cupy-cuda12x) opens cuBLAS, cuRAND, cuDNN and NVRTC by soname from the system's library
# path only, never from the nvidia-*-cu12 wheels. Loaded here first by path (RTLD_GLOBAL, in
# dependency order, once), a wheel's library is the one the dynamic linker then gives CuPy.
# cuSOLVER, cuSPARSE and cuFFT are left out: only cupy.linalg/sparse/fft open them.

#: (folder under site-packages' ``nvidia/``, soname): what CuPy 13 opens for Chainer and this
#: project, in the order loaded (a library after those it needs).
CUDA12_WHEEL_LIBRARIES = (
    ('cublas', 'libcublasLt.so.12'),     # nvidia-cublas-cu12: libcublas.so.12 needs it
    ('cublas', 'libcublas.so.12'),       # cupy.cuda.cublas, imported by Chainer
    ('cuda_nvrtc', 'libnvrtc.so.12'),    # nvidia-cuda-nvrtc-cu12: compiles every CuPy kernel
    ('curand', 'libcurand.so.10'),       # nvidia-curand-cu12: cupy.random (initialisers, augment)
    ('cudnn', 'libcudnn.so.8'),          # nvidia-cudnn-cu12 8.9: cupy.cuda.cudnn (Chainer's too)
)
#: The command that brings CuPy and the CUDA 12 libraries above.
CUDA12_FIX = ".venv/bin/pip install -e '.[cuda12]'"
#: The command that brings the cuDNN that CuPy 13 loads.
CUDNN_FIX = "pip install 'nvidia-cudnn-cu12==8.9.*' (or {})".format(CUDA12_FIX)
#: What :func:`preload_wheel_libraries` did at import: soname -> ``{'path', 'error'}``.
CUDA_PRELOAD = {}


def wheel_libraries(paths=None, table=CUDA12_WHEEL_LIBRARIES):
    """``[(soname, path)]`` of the ``table``'s libraries that are installed, in its order, each
    from the first entry of ``paths`` (default sys.path) holding nvidia/<folder>/lib/<soname>."""
    found = []
    for folder, soname in table:
        for entry in (sys.path if paths is None else paths):
            candidate = os.path.join(entry or os.curdir, 'nvidia', folder, 'lib', soname)
            if os.path.isfile(candidate):
                found.append((soname, os.path.abspath(candidate)))
                break
    return found


def preload_wheel_libraries(paths=None, loader=None, state=None):
    """Loads each of :func:`wheel_libraries` (``loader(path)``, default ``ctypes.CDLL`` with
    ``RTLD_GLOBAL``) and records the outcome per soname in ``state`` (default
    :data:`CUDA_PRELOAD`), which it returns. A library already loaded is not loaded again; one that
    fails is recorded (``'path (why)'``), never raised."""
    state = CUDA_PRELOAD if state is None else state
    if loader is None:
        import ctypes

        def loader(name):
            return ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
    for soname, path in wheel_libraries(paths):
        if state.get(soname, {}).get('path') == path:
            continue
        try:
            loader(path)
            state[soname] = {'path': path, 'error': None}
        except OSError as e:
            state[soname] = {'path': None, 'error': '{} ({})'.format(path, e)}
    return state


def cudnn_version_text(version):
    """cuDNN's version number as text: 8907 -> '8.9.7' (cuDNN 8), 90100 -> '9.1.0' (cuDNN 9)."""
    major, rest = divmod(version, 10000 if version >= 10000 else 1000)
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
    """What :func:`cudnn_line` reports, from this process: CuPy's version or error, its cuDNN
    binding (CuPy's CUDA 13 wheels have none), cuDNN's version and path, the preload's failures,
    ``CHAINER_CUDNN=0``, and why Chainer cannot use CuPy (its ``_resolution_error``)."""
    failed = {k: v['error'] for k, v in CUDA_PRELOAD.items() if v['error']}
    facts = {'cupy': None, 'cupy_error': None, 'binding': False, 'version': None, 'path': None,
             'preload_error': failed.pop('libcudnn.so.8', None),
             'preload_failed': ['{}: {}'.format(k, v) for k, v in sorted(failed.items())],
             'disabled': os.environ.get('CHAINER_CUDNN', '1') == '0', 'chainer_error': None}
    cuda = sys.modules.get('chainer.backends.cuda')
    if cuda is not None and not cuda.available:
        e = getattr(cuda, '_resolution_error', None)
        facts['chainer_error'] = '{}: {}'.format(type(e).__name__, e) if e else 'no CUDA'
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
        facts['path'] = _loaded_library('libcudnn.so') or \
            CUDA_PRELOAD.get('libcudnn.so.8', {}).get('path')
    return facts


def _cudnn_part(facts):
    """cuDNN's state, for :func:`cudnn_line`: ``(in use, text)``."""
    slow = 'Chainer convolves by im2col + GEMM and normalises batches without cuDNN (slower)'
    if facts['cupy'] is None:
        return False, ('no cuDNN: CuPy is not importable ({}); install CuPy with cuDNN: {}'.format(
            facts['cupy_error'], CUDA12_FIX))
    if not facts['binding']:
        return False, ('no cuDNN: CuPy {} was built without cuDNN (CuPy 13 for CUDA 13 has none, '
                       'and no cuDNN 8 exists for CUDA 13); {}; for cuDNN use CUDA 12: {}'.format(
                           facts['cupy'], slow, CUDA12_FIX))
    if facts['version'] is None:
        return False, 'cuDNN not found{} (CuPy {} looks for libcudnn.so.8); {}; fix: {}'.format(
            ': ' + facts['preload_error'] if facts['preload_error'] else '', facts['cupy'], slow,
            CUDNN_FIX)
    name = 'cuDNN {} ({})'.format(cudnn_version_text(facts['version']),
                                  facts['path'] or "the system's library path")
    if facts['disabled']:
        return False, ('{} is loaded but not in use: CHAINER_CUDNN=0 is set; {}; unset '
                       'CHAINER_CUDNN to use it'.format(name, slow))
    return True, name


def cudnn_line(facts):
    """One line from :func:`cudnn_facts`: ``cuDNN 8.9.7 (path)`` where CUDA and cuDNN are in use,
    else a line starting ``WARNING:`` that says why not and the command that fixes it; where
    Chainer cannot use CuPy, its reason comes first, then cuDNN's state."""
    in_use, cudnn = _cudnn_part(facts)
    if facts.get('chainer_error'):
        failed = facts.get('preload_failed')
        cudnn = 'no cuDNN' if facts['cupy'] is None else cudnn + (' is loaded' if in_use else '')
        return 'WARNING: Chainer cannot use CuPy ({}){}; fix: {}; {}'.format(
            facts['chainer_error'], '; from the wheels, failed to load: ' + ', '.join(failed)
            if failed else '', CUDA12_FIX, cudnn)
    return cudnn if in_use else 'WARNING: ' + cudnn


def cudnn_status():
    """One line for the benchmark and the GPU check: the cuDNN in use (``cuDNN 8.9.7 (path)``),
    or ``WARNING: ...`` with the reason (Chainer's first, where it cannot use CuPy) and the command
    that fixes it. Imports CuPy."""
    return cudnn_line(cudnn_facts())


# --- import ---------------------------------------------------------------------------------------
try:
    _apply_exact_cpu()
except ExactCpuError as _error:   # a setting of the environment: one line, no traceback
    sys.stderr.write('error: {}\n'.format(_error))
    sys.exit(2)
preload_wheel_libraries()   # before Chainer imports CuPy's bindings
chainer = _import_chainer()

"""The package's own CUDA kernels: each one a complete CUDA C source, all in one list.

CuPy's ``ElementwiseKernel`` holds a snippet that CuPy completes into a CUDA source only when it
runs on a GPU, so a snippet that does not compile is found on the GPU, not before. Every kernel
of this package is instead written here in full (``extern "C" __global__``, a grid-stride loop),
launched through ``cupy.RawKernel``, and registered in :data:`CUDA_SOURCES`, which the test suite
(tests/test_cuda_sources.py) compiles with NVRTC on the CPU: NVRTC needs no GPU, only its library
(``libnvrtc.so.12``, from the ``nvidia-cuda-nvrtc-cu12`` wheel of the ``test`` extra, or a CUDA
toolkit). :func:`load_nvrtc` and :func:`compile_ptx` are that check's ctypes binding of NVRTC
(no CuPy needed).

A new kernel: add its :class:`CudaSource` to :data:`CUDA_SOURCES` and launch it with
:func:`raw_kernel` and :func:`grid`; the suite then compiles it, and refuses a kernel written
anywhere else.
"""
import collections
import ctypes
import os
import sys

import numpy

#: ``name``: the program's file name (NVRTC reports an error as ``name(line): error: ...``);
#: ``source``: the complete CUDA C text; ``entries``: its ``extern "C" __global__`` functions.
CudaSource = collections.namedtuple('CudaSource', 'name source entries')

#: Threads per block of every launch, and the most blocks one launch starts (each kernel's
#: grid-stride loop covers the elements beyond ``BLOCK * MAX_BLOCKS``).
BLOCK = 256
MAX_BLOCKS = 4096

#: The dtypes that have a kernel variant, and their C types.
C_TYPES = {'float32': 'float', 'float64': 'double'}


def _fused_momentum_sgd(dtype):
    # The arithmetic of the ElementwiseKernel it replaces (updaters/fused_sgd.py), per element:
    # T g = grad + rate * param;  v = momentum * v - lr * g;  param += v
    return r'''
extern "C" __global__ void fused_momentum_sgd_%(dtype)s(
        const %(T)s* __restrict__ grad, %(T)s* __restrict__ param, %(T)s* __restrict__ v,
        const %(T)s lr, const %(T)s momentum, const %(T)s rate, const long long n) {
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const %(T)s g = grad[i] + rate * param[i];
        v[i] = momentum * v[i] - lr * g;
        param[i] += v[i];
    }
}
''' % {'dtype': dtype, 'T': C_TYPES[dtype]}


#: Momentum SGD with weight decay over one flat buffer (updaters/fused_sgd.FusedMomentumSGD).
FUSED_MOMENTUM_SGD = CudaSource(
    'fused_momentum_sgd.cu',
    ''.join(_fused_momentum_sgd(dtype) for dtype in C_TYPES),
    tuple('fused_momentum_sgd_' + dtype for dtype in C_TYPES))

#: Every CUDA source of the package; the test suite compiles each with NVRTC.
CUDA_SOURCES = (FUSED_MOMENTUM_SGD,)


# --- launching (CuPy) -----------------------------------------------------------------------------

_KERNELS = {}


def raw_kernel(source, entry):
    """``cupy.RawKernel`` of ``entry`` in ``source`` (one per process; CuPy compiles it on first
    launch per device and caches the binary on disk)."""
    if entry not in source.entries:
        raise ValueError('{} has no kernel {!r} (it has {})'.format(
            source.name, entry, ', '.join(source.entries)))
    key = (source.name, entry)
    if key not in _KERNELS:
        import cupy
        _KERNELS[key] = cupy.RawKernel(source.source, entry)
    return _KERNELS[key]


def grid(n):
    """Blocks for ``n`` elements: one thread per element, at most :data:`MAX_BLOCKS` blocks."""
    return (max(1, min(-(-int(n) // BLOCK), MAX_BLOCKS)),)


def fused_momentum_sgd(grad, param, velocity, lr, momentum, rate, kernel=None):
    """In place, for every element: ``g = grad + rate * param; velocity = momentum * velocity -
    lr * g; param += velocity``, in the arrays' dtype (float32 or float64; the scalars are cast
    to it). The three arrays are contiguous, of one dtype and size. ``kernel``: what gives the
    launchable kernel, default :func:`raw_kernel` (the tests hand it a host emulation)."""
    dtype = numpy.dtype(param.dtype)
    if dtype.name not in C_TYPES:
        raise TypeError('fused_momentum_sgd has kernels for {}, not {}'.format(
            ' and '.join(C_TYPES), dtype))
    for name, array in (('grad', grad), ('param', param), ('velocity', velocity)):
        if array.dtype != dtype or array.size != param.size or not array.flags.c_contiguous:
            raise ValueError('fused_momentum_sgd: {} is {} {} (contiguous: {}); expected {} {} '
                             'contiguous'.format(name, array.dtype, array.size,
                                                 array.flags.c_contiguous, dtype, param.size))
    n = param.size
    if n == 0:
        return
    scalar = dtype.type
    (kernel or raw_kernel)(FUSED_MOMENTUM_SGD, 'fused_momentum_sgd_' + dtype.name)(
        grid(n), (BLOCK,), (grad, param, velocity, scalar(lr), scalar(momentum), scalar(rate),
                            numpy.int64(n)))


# --- compiling without a GPU (NVRTC through ctypes) -----------------------------------------------

#: NVRTC's library of CUDA 12 on Linux, and where the nvidia-cuda-nvrtc-cu12 wheel installs it.
NVRTC_LIBRARY = 'libnvrtc.so.12'
NVRTC_WHEEL_DIR = os.path.join('nvidia', 'cuda_nvrtc', 'lib')


class NvrtcError(RuntimeError):
    """NVRTC refused a source (the message holds NVRTC's log: ``name(line): error: ...``)."""


def nvrtc_candidates(paths=None):
    """Where :func:`load_nvrtc` looks, in order: the wheel's directory under each entry of
    ``paths`` (default ``sys.path``), ``$CUDA_PATH/lib64``, then the system's library path."""
    found = []
    for entry in (sys.path if paths is None else paths):
        candidate = os.path.join(entry or os.curdir, NVRTC_WHEEL_DIR, NVRTC_LIBRARY)
        if os.path.isfile(candidate):
            found.append(os.path.abspath(candidate))
    for root in (os.environ.get('CUDA_PATH'), '/usr/local/cuda'):
        if root and os.path.isfile(os.path.join(root, 'lib64', NVRTC_LIBRARY)):
            found.append(os.path.join(root, 'lib64', NVRTC_LIBRARY))
    return found + [NVRTC_LIBRARY]


def load_nvrtc(paths=None):
    """(library, path): NVRTC loaded with ctypes from the first of :func:`nvrtc_candidates`
    that loads; OSError naming every place tried where none does."""
    errors = []
    for path in nvrtc_candidates(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append('{} ({})'.format(path, e))
            continue
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        return lib, path
    raise OSError('NVRTC not found: tried ' + '; '.join(errors))


def nvrtc_version(lib):
    """NVRTC's (major, minor)."""
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check(lib, lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), 'nvrtcVersion')
    return major.value, minor.value


def _check(lib, result, what, log=''):
    if result != 0:
        raise NvrtcError('{}: {}{}'.format(what, lib.nvrtcGetErrorString(result).decode(),
                                           '\n' + log if log else ''))


def compile_ptx(lib, source, name='kernel.cu', arch='compute_90', options=()):
    """PTX of the CUDA C text ``source`` compiled by NVRTC (``lib`` from :func:`load_nvrtc`) for
    ``--gpu-architecture=arch``; NvrtcError with NVRTC's log when it does not compile."""
    prog = ctypes.c_void_p()
    _check(lib, lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0,
                                       None, None), 'nvrtcCreateProgram')
    try:
        opts = [('--gpu-architecture=' + arch).encode()] + [o.encode() for o in options]
        argv = (ctypes.c_char_p * len(opts))(*opts)
        result = lib.nvrtcCompileProgram(prog, len(opts), argv)
        size = ctypes.c_size_t()
        _check(lib, lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size)), 'nvrtcGetProgramLogSize')
        log = ctypes.create_string_buffer(size.value)
        _check(lib, lib.nvrtcGetProgramLog(prog, log), 'nvrtcGetProgramLog')
        _check(lib, result, 'nvrtcCompileProgram of {} for {}'.format(name, arch),
               log.value.decode(errors='replace').strip())
        _check(lib, lib.nvrtcGetPTXSize(prog, ctypes.byref(size)), 'nvrtcGetPTXSize')
        ptx = ctypes.create_string_buffer(size.value)
        _check(lib, lib.nvrtcGetPTX(prog, ptx), 'nvrtcGetPTX')
        return ptx.value.decode()
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))

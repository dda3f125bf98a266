"""Every CUDA source of the package compiles, without a GPU.

* NVRTC (``libnvrtc.so.12``, from the ``nvidia-cuda-nvrtc-cu12`` wheel of the ``test`` extra,
  loaded through ctypes) compiles each source of ``updaters.cuda_sources.CUDA_SOURCES`` to PTX for
  compute_80 and compute_90, and every kernel the source declares is in the PTX; a wrong
  identifier is refused with its line. Skipped, with the reason, where NVRTC cannot be loaded.
* The same sources, compiled as C++ by the host compiler with a stand-in for CUDA's thread
  indices, run on the CPU thread by thread through the package's own launchers: the launch
  arguments match each kernel's C parameters, the grid-stride loop covers every element once,
  and the fused optimizer's kernel gives the bits of its numpy path (no FMA contraction on the
  host; on a GPU NVRTC contracts, which the GPU tests' tolerance covers). Skipped without a C++
  compiler.
* No kernel is written anywhere else in the package (a CuPy kernel snippet compiles only on a GPU).
"""
import ctypes
import os
import re
import shutil
import subprocess

import numpy
import pytest

from updaters import cuda_sources
from updaters import fused_sgd as fused_sgd_module
from updaters.cuda_sources import CUDA_SOURCES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHS = ('compute_80', 'compute_90')
SIGNATURE = re.compile(r'extern "C" __global__ void (\w+)\(([^)]*)\)')
#: C parameter type -> (ctypes type, numpy scalar type) of a scalar argument
SCALARS = {'float': (ctypes.c_float, numpy.float32), 'double': (ctypes.c_double, numpy.float64),
           'int': (ctypes.c_int, numpy.int32), 'long long': (ctypes.c_longlong, numpy.int64)}
POINTEES = {'float': numpy.float32, 'double': numpy.float64, 'int': numpy.int32,
            'long long': numpy.int64}


def signatures(source):
    """{entry: [(C base type, is_pointer), ...]} of the ``extern "C" __global__`` functions."""
    found = {}
    for name, params in SIGNATURE.findall(source.source):
        types = []
        for param in params.split(','):
            words = param.replace('*', ' * ').split()[:-1]      # drop the parameter's name
            pointer = '*' in words
            base = ' '.join(w for w in words if w not in ('const', '*', '__restrict__'))
            types.append((base, pointer))
        found[name] = types
    return found


@pytest.fixture(scope='module')
def nvrtc():
    try:
        lib, path = cuda_sources.load_nvrtc()
        version = cuda_sources.nvrtc_version(lib)
    except (OSError, AttributeError, cuda_sources.NvrtcError) as e:
        pytest.skip('NVRTC cannot be loaded here ({}); it comes with the test extra: '
                    ".venv/bin/pip install -e '.[test]'".format(e))
    return lib, path, version


def test_every_source_declares_its_kernels():
    names = [source.name for source in CUDA_SOURCES]
    assert len(set(names)) == len(names)
    for source in CUDA_SOURCES:
        assert sorted(signatures(source)) == sorted(source.entries), source.name
        for types in signatures(source).values():
            for base, pointer in types:
                assert base in (POINTEES if pointer else SCALARS), (source.name, base)


@pytest.mark.parametrize('arch', ARCHS)
@pytest.mark.parametrize('source', CUDA_SOURCES, ids=lambda s: s.name)
def test_every_source_compiles_with_nvrtc(nvrtc, source, arch):
    lib, _, _ = nvrtc
    ptx = cuda_sources.compile_ptx(lib, source.source, source.name, arch)
    assert '.target sm_{}'.format(arch.split('_')[1]) in ptx
    for entry in source.entries:
        assert re.search(r'\.visible \.entry {}\('.format(entry), ptx), entry


def test_nvrtc_names_the_line_of_a_wrong_identifier(nvrtc):
    lib, path, version = nvrtc
    source = ('extern "C" __global__ void broken(float* x, long long n) {\n'
              '    for (long long i = threadIdx.x; i < n; i += blockDim.x)\n'
              '        x[i] = momentun * x[i];\n'
              '}\n')
    with pytest.raises(cuda_sources.NvrtcError) as error:
        cuda_sources.compile_ptx(lib, source, 'broken.cu', 'compute_90')
    message = str(error.value)
    assert 'broken.cu(3): error' in message, (path, version, message)
    assert 'momentun' in message


# --- the sources run on the host ------------------------------------------------------------------

HOST_PRELUDE = r'''
#define __global__
struct HostDim3 { unsigned int x; };
static HostDim3 blockIdx, threadIdx, blockDim, gridDim;
extern "C" void host_set_thread(unsigned int block, unsigned int thread, unsigned int threads,
                                unsigned int blocks) {
    blockIdx.x = block; threadIdx.x = thread; blockDim.x = threads; gridDim.x = blocks;
}
#line 1
'''


@pytest.fixture(scope='module')
def host_libraries(tmp_path_factory):
    compiler = shutil.which('g++') or shutil.which('c++') or shutil.which('clang++')
    if compiler is None:
        pytest.skip('no C++ compiler (g++, c++ or clang++) to run the CUDA sources on the host')
    libraries = {}
    folder = tmp_path_factory.mktemp('cuda-on-host')
    for source in CUDA_SOURCES:
        cpp = folder / (source.name + '.cpp')
        cpp.write_text(HOST_PRELUDE + source.source)
        so = folder / (source.name + '.so')
        subprocess.run([compiler, '-x', 'c++', '-O1', '-ffp-contract=off', '-shared', '-fPIC',
                        '-o', str(so), str(cpp)], check=True)
        libraries[source.name] = ctypes.CDLL(str(so))
    return libraries


def host_kernel(libraries, launches):
    """A stand-in for ``cuda_sources.raw_kernel``: the kernel runs on the host, every thread of
    the grid in turn; the launch's arguments are checked against the C parameters."""
    def make(source, entry):
        lib = libraries[source.name]
        params = signatures(source)[entry]
        function = getattr(lib, entry)

        def launch(grid, block, args):
            assert len(grid) == len(block) == 1
            assert len(args) == len(params), (entry, args)
            c_args = []
            for arg, (base, pointer) in zip(args, params):
                if pointer:
                    assert isinstance(arg, numpy.ndarray) and arg.flags.c_contiguous
                    assert arg.dtype == POINTEES[base], (entry, base, arg.dtype)
                    c_args.append(ctypes.c_void_p(arg.ctypes.data))
                else:
                    c_type, scalar = SCALARS[base]
                    assert type(arg) is scalar, (entry, base, type(arg))
                    c_args.append(c_type(arg))
            launches.append((entry, grid, block))
            for b in range(grid[0]):
                for t in range(block[0]):
                    lib.host_set_thread(b, t, block[0], grid[0])
                    function(*c_args)
        return launch
    return make


def numpy_momentum_sgd(grad, param, velocity, lr, momentum, rate):
    """FusedMomentumSGD's numpy path, operation by operation."""
    grad = grad.copy()
    grad += rate * param
    velocity *= momentum
    velocity -= lr * grad
    param += velocity


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
@pytest.mark.parametrize('n, block, max_blocks', [(1000, 256, 4096), (50, 4, 3), (7, 256, 4096)])
def test_fused_momentum_sgd_kernel_gives_the_numpy_bits(host_libraries, monkeypatch, dtype, n,
                                                        block, max_blocks):
    monkeypatch.setattr(cuda_sources, 'BLOCK', block)
    monkeypatch.setattr(cuda_sources, 'MAX_BLOCKS', max_blocks)
    rs = numpy.random.RandomState(n)
    grad, param, velocity = (rs.normal(size=n).astype(dtype) for _ in range(3))
    want_param, want_velocity = param.copy(), velocity.copy()
    numpy_momentum_sgd(grad, want_param, want_velocity, 0.05, 0.9, 1e-3)
    launches = []
    cuda_sources.fused_momentum_sgd(grad, param, velocity, 0.05, 0.9, 1e-3,
                                    kernel=host_kernel(host_libraries, launches))
    blocks = min(-(-n // block), max_blocks)
    assert launches == [('fused_momentum_sgd_' + dtype, (blocks,), (block,))]
    assert param.tobytes() == want_param.tobytes()
    assert velocity.tobytes() == want_velocity.tobytes()


def test_fused_optimizer_through_its_kernel_equals_its_numpy_path(host_libraries, monkeypatch):
    """FusedMomentumSGD's device branch (its kernel, run on the host) against its numpy branch:
    the call passes the buffers and hyperparameters in the kernel's order."""
    from test_fused_sgd import fused_sgd, network, params, step
    cpu, device = network(), network()
    cpu_opt, device_opt = fused_sgd(cpu), fused_sgd(device)
    launches = []
    for k in range(4):
        if k == 2:
            cpu_opt.lr = device_opt.lr = 0.005
        step(cpu, cpu_opt, k)
        with monkeypatch.context() as m:          # the update takes the branch it takes on a GPU
            m.setattr(fused_sgd_module, 'numpy', None)
            m.setattr(cuda_sources, 'raw_kernel', host_kernel(host_libraries, launches))
            step(device, device_opt, k)
    assert len(launches) == 4 and device_opt.operations == cpu_opt.operations == 8
    want, got = params(cpu), params(device)
    for name in want:
        assert got[name].tobytes() == want[name].tobytes(), name


def test_the_launcher_refuses_other_dtypes_and_mismatched_buffers():
    a = numpy.zeros(4, numpy.float16)
    with pytest.raises(TypeError, match='float32 and float64'):
        cuda_sources.fused_momentum_sgd(a, a, a, 0.1, 0.9, 0.0, kernel=lambda *_: None)
    b, c = numpy.zeros(4, numpy.float32), numpy.zeros(8, numpy.float32)[::2]
    with pytest.raises(ValueError, match='velocity'):
        cuda_sources.fused_momentum_sgd(b, b, c, 0.1, 0.9, 0.0, kernel=lambda *_: None)


def test_the_grid_covers_the_elements_within_the_cap():
    assert cuda_sources.grid(0) == (1,)
    assert cuda_sources.grid(1) == (1,)
    assert cuda_sources.grid(cuda_sources.BLOCK) == (1,)
    assert cuda_sources.grid(cuda_sources.BLOCK + 1) == (2,)
    assert cuda_sources.grid(10 ** 9) == (cuda_sources.MAX_BLOCKS,)


# --- no kernel elsewhere --------------------------------------------------------------------------

#: what makes a CuPy kernel: a call of a kernel class or helper, or a fused function
KERNEL_MAKERS = re.compile(r'\b(ElementwiseKernel|ReductionKernel|RawKernel|RawModule|'
                           r'cuda\.elementwise|cuda\.reduce|cuda\.raw|fuse)\s*\(|'
                           r'@(cupy\.|cuda\.)?fuse\b')


def test_no_cuda_kernel_is_written_outside_the_registered_sources():
    offenders = []
    for package in ('datasets', 'models', 'updaters', 'reproduce'):
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in sorted(files):
                path = os.path.join(folder, name)
                if not name.endswith('.py') or path == os.path.abspath(cuda_sources.__file__):
                    continue
                with open(path, encoding='utf-8') as f:
                    for number, line in enumerate(f, 1):
                        if KERNEL_MAKERS.search(line.split('#')[0]):
                            offenders.append('{}:{}: {}'.format(
                                os.path.relpath(path, ROOT), number, line.strip()))
    assert not offenders, (
        'CUDA kernels outside updaters/cuda_sources.py (write each as a complete source there, '
        'registered in CUDA_SOURCES, so that the tests compile it):\n' + '\n'.join(offenders))

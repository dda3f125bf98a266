"""Where a number came from: commit, device, library versions, date, and the platform that decides
its last bits (BLAS kernel, numpy's SIMD paths, CPU; on a GPU CUDA, cuBLAS, cuDNN and TF32)."""
import datetime
import json
import os
import platform as _platform
import subprocess
import sys

import chainer_compat
import chainer
import numpy

from reproduce import REPOSITORY
from reproduce.run import precision

#: Environment variables that change CPU or GPU numerics; recorded with every result.
NUMERICS_VARIABLES = tuple(sorted(set(chainer_compat.EXACT_CPU_SETTINGS) | {
    chainer_compat.EXACT_CPU_VARIABLE, 'CUPY_TF32', 'NVIDIA_TF32_OVERRIDE'}))


def git_commit():
    """The checkout's commit, with ``+dirty`` when tracked files differ from it; None outside git."""
    try:
        commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPOSITORY, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=REPOSITORY,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ('+dirty' if dirty else '')


def cpu_model():
    """The CPU's model name (Linux: /proc/cpuinfo), else what ``platform`` knows."""
    model = chainer_compat.cpuinfo('model name')
    return model.strip() if model is not None else _platform.processor() or _platform.machine()


def device_description(device):
    """A readable name of a Chainer device: the CPU model, or the GPU's name."""
    device = chainer.get_device(device)
    if device.xp is numpy:
        return 'CPU ({}, {} cores)'.format(_platform.processor() or _platform.machine(),
                                           os.cpu_count())
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(device.device.id)
    name = props['name']
    return 'GPU {} ({})'.format(device.device.id, name.decode() if isinstance(name, bytes) else name)


def library_versions():
    versions = {'python': sys.version.split()[0], 'chainer': chainer.__version__,
                'numpy': numpy.__version__}
    try:
        import cupy
        versions['cupy'] = cupy.__version__
        versions['cudnn'] = bool(chainer.backends.cuda.cudnn_enabled)
    except ImportError:
        versions['cupy'] = None
    return versions


def blas_libraries():
    """The BLAS libraries loaded in this process, as threadpoolctl sees them: library, version,
    the kernel it selected (``architecture``) and its thread count; None without threadpoolctl."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    keys = ('internal_api', 'version', 'architecture', 'num_threads', 'threading_layer')
    found = [dict({k: info.get(k) for k in keys},
                  loaded_by=os.path.basename(os.path.dirname(info.get('filepath') or '')))
             for info in threadpoolctl.threadpool_info() if info.get('user_api') == 'blas']
    return sorted(found, key=lambda b: (b['loaded_by'], str(b['internal_api'])))


def numpy_simd():
    """numpy's compiled-in baseline and the SIMD targets it dispatches to on this CPU now (after
    ``NPY_DISABLE_CPU_FEATURES``)."""
    try:
        from numpy.core import _multiarray_umath as umath
    except ImportError:   # numpy >= 2 moved it; Chainer needs numpy < 2 anyway
        return None
    features = umath.__cpu_features__
    return {'baseline': list(umath.__cpu_baseline__),
            'dispatched': [t for t in umath.__cpu_dispatch__ if features.get(t)]}


def gpu_stack(device):
    """CUDA runtime and driver, cuBLAS and cuDNN versions, compute capability and TF32 of a CuPy
    device (None on the CPU)."""
    device = chainer.get_device(device)
    if device.xp is numpy:
        return None
    import cupy
    stack = {'name': device_description(device),
             'compute_capability': cupy.cuda.Device(device.device.id).compute_capability,
             'cuda_runtime': cupy.cuda.runtime.runtimeGetVersion(),
             'cuda_driver': cupy.cuda.runtime.driverGetVersion(),
             'tf32': precision.tf32_in_force(),
             'use_cudnn': chainer.config.use_cudnn}
    try:
        stack['cublas'] = cupy.cuda.cublas.getVersion(cupy.cuda.device.get_cublas_handle())
    except Exception:   # a CuPy without the call: leave it out rather than fail a run
        stack['cublas'] = None
    try:
        from cupy.cuda import cudnn
        stack['cudnn'] = cudnn.getVersion() if chainer.backends.cuda.cudnn_enabled else None
    except Exception:   # CuPy without cuDNN
        stack['cudnn'] = None
    return stack


def numerics_key(prov):
    """The part of a :func:`provenance` record that decides the numbers (JSON-ready): library
    versions, and the GPU stack, or the BLAS kernel and threads and numpy's SIMD targets (None for
    a record without a platform)."""
    record = (prov or {}).get('platform')
    if not record:
        return None
    key = {'versions': prov.get('versions')}
    if record.get('gpu'):
        key['gpu'] = record['gpu']
        return key
    key['blas'] = [{k: b.get(k) for k in ('loaded_by', 'internal_api', 'version', 'architecture',
                                          'num_threads')}
                   for b in sorted(record.get('blas') or [],
                                   key=lambda b: (b.get('loaded_by', ''), str(b['internal_api'])))]
    key['numpy_simd'] = record.get('numpy_simd')
    return key


def platform_differences(recorded, current):
    """Readable lines naming how two :func:`numerics_key` records differ (empty: the same; one
    line when a record has no platform)."""
    if recorded is None or current is None:
        return ['{} records no platform'.format('the recording' if recorded is None else 'now')]
    lines = []
    for key in sorted(set(recorded) | set(current)):
        before, now = recorded.get(key), current.get(key)
        if before != now:
            lines.append('{}: {} recorded, {} now'.format(
                key, json.dumps(before, sort_keys=True), json.dumps(now, sort_keys=True)))
    return lines


def provenance(device):
    """Everything a recorded number carries about the code and machine that measured it."""
    return {
        'commit': git_commit(),
        'device': device_description(device),
        'device_spec': str(chainer.get_device(device)),
        'versions': library_versions(),
        'tf32': precision.tf32_in_force(),
        'tf32_environment': {name: os.environ.get(name) for name in sorted(precision.FLOAT32)},
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'platform': {   # everything about the machine that can change a result's last bits
            'cpu': cpu_model(),
            'machine': _platform.machine(),
            'blas': blas_libraries(),
            'numpy_simd': numpy_simd(),
            'exact_cpu': chainer_compat.exact_cpu_requested(),
            'environment': {k: os.environ[k] for k in NUMERICS_VARIABLES if k in os.environ},
            'gpu': gpu_stack(device),
        },
    }

"""Where a number came from: commit, device, library versions, date."""
import datetime
import os
import platform
import subprocess
import sys

import chainer
import numpy

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def git_commit():
    """The checkout's commit, with ``+dirty`` when tracked files differ from it; None outside git."""
    try:
        commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=_ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ('+dirty' if dirty else '')


def device_description(device):
    """A readable name of a Chainer device: the CPU model, or the GPU's name."""
    device = chainer.get_device(device)
    if device.xp is numpy:
        return 'CPU ({}, {} cores)'.format(platform.processor() or platform.machine(),
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


def provenance(device):
    """Everything a recorded number carries about the code and machine that measured it."""
    return {
        'commit': git_commit(),
        'device': device_description(device),
        'device_spec': str(chainer.get_device(device)),
        'versions': library_versions(),
        'tf32': os.environ.get('CUPY_TF32', '0') == '1',
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    }

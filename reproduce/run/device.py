"""Devices (a spec: '@numpy', '@cupy:1', 'auto'; or a Chainer device), resolved and checked."""
import chainer
import numpy


def resolve(spec):
    """``'auto'``: the first GPU when CuPy sees one, else the CPU; other specs unchanged."""
    if spec != 'auto':
        return spec
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            return '@cupy:0'
    except Exception:  # no CuPy, no driver, no GPU: all mean the CPU
        pass
    return '@numpy'


def check(spec):
    """Refuses (ValueError, one line) a device Chainer cannot use, before anything starts."""
    try:
        chainer.get_device(resolve(spec))
    except Exception as error:        # ValueError, RuntimeError, CuPy's errors: all one line
        raise ValueError("cannot use device {!r} ({}): use '@numpy', '@cupy:<id>' or "
                         "auto".format(spec, str(error).splitlines()[0] if str(error) else
                                       type(error).__name__))


def check_all(specs):
    for spec in specs:
        check(spec)


def is_gpu(device):
    """Whether a spec or a Chainer device is a GPU."""
    if isinstance(device, str):
        return '@cupy' in device or device.startswith('cuda')
    return device.xp is not numpy


def synchronize(device):
    """Waits until a Chainer device has finished everything queued."""
    if is_gpu(device):
        device.xp.cuda.Device(device.device.id).synchronize()


def gpu_memory(spec):
    """(name, free bytes, total bytes) of a CuPy device spec such as '@cupy:0'."""
    import cupy
    index = int(spec.split(':')[1]) if ':' in spec else 0
    with cupy.cuda.Device(index):
        free, total = cupy.cuda.runtime.memGetInfo()
        name = cupy.cuda.runtime.getDeviceProperties(index)['name']
    return (name.decode() if isinstance(name, bytes) else name), free, total


def gpu_name(spec):
    """The name of a CuPy device, or None when CuPy or the GPU cannot say."""
    try:
        return gpu_memory(spec)[0]
    except Exception:   # no CuPy, no driver, no such GPU: the name is unknown
        return None

"""Write files so that a crash never leaves a half-written one: temporary file, then rename."""
import contextlib
import json
import os
import tempfile

import numpy


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically, with
    the permissions a new file gets (0644 under the usual umask, not the temporary file's 0600),
    so that a shared results folder can be read by others."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp',
                               dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, obj):
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write('\n')


def write_text(path, text):
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        f.write(text)


def save_npz(path, **arrays):
    """``numpy.savez`` of host copies of ``arrays`` (numpy or cupy), atomically."""
    host = {k: _to_host(v) for k, v in arrays.items()}
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        numpy.savez(f, **host)


def _to_host(array):
    get = getattr(array, 'get', None)
    return get() if callable(get) else numpy.asarray(array)


def save_npy(path, array):
    """``numpy.save`` of a host copy of ``array`` (numpy or cupy), atomically."""
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        numpy.save(f, _to_host(array))


def save_model(path, model):
    """``chainer.serializers.save_npz`` of ``model``'s parameters, atomically."""
    import chainer
    with atomic_path(path) as tmp:
        chainer.serializers.save_npz(tmp, model)

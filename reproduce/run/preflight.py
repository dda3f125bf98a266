"""Checks made before anything starts or is written: a bad device, an output folder that cannot
be one, and file-system errors turned into one line naming the path and the cause."""
import errno
import os
import sys
import tempfile


def folder(path, option):
    """Refuses, with one line (ValueError), a path that is a file or lies inside one, or whose
    nearest existing folder takes no new folder (tried: one is made and removed)."""
    path = os.path.abspath(path)
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        where = 'is a file' if probe == path else 'lies inside the file {}'.format(probe)
        raise ValueError('{} {} cannot be a folder: it {}'.format(option, path, where))
    try:
        os.rmdir(tempfile.mkdtemp(prefix='.write-check-', dir=probe))
    except OSError as error:
        raise ValueError('{} {} cannot be written: {} is not writable ({}; choose another '
                         '{})'.format(option, path, probe, error.strerror, option)) from None


def shown(path):
    """A path as its reader wants it: relative where it lies below the working folder."""
    relative = os.path.relpath(path)
    return os.path.abspath(path) if relative.startswith(os.pardir) else relative


def describe(error):
    """One line for a file-system error: the path and the cause."""
    path = error.filename or ''
    cause = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        cause += ': free some space; what was already computed is kept'
    return '{}: {}'.format(path, cause) if path else cause


def guarded(work):
    """Runs ``work()`` as a script's main work; returns ``(exit status, its result)``: 0, else
    2 (bad input), 1 (a file-system error) or 130 (Ctrl-C) and None, the error on stderr."""
    try:
        return 0, work()
    except (ValueError, FileNotFoundError) as error:
        sys.stderr.write('error: {}\n'.format(error))
        return 2, None
    except OSError as error:
        sys.stderr.write('error: {}\n'.format(describe(error)))
        return 1, None
    except KeyboardInterrupt:
        return 130, None

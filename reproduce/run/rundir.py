"""A run directory: its file names, reading its results, the identity check that keeps one
directory to one setting, and the lock that keeps one process training a part. Layout
(``<root>/<dataset>[-x<scale>][-i<iterations>]/<noise>-<rate>/trial<k>/``): ``config.json``
(identity + launch entry), ``output-<methods>.txt``, and per part (step1, tanaka, ours,
cross_entropy, forward_t, pencil) ``.lock``, ``log.json``, ``accuracy.json``, ``snapshot.npz``,
``labels.npz``/``label_accuracy.json`` (label-correcting parts), ``model.npz``,
``transition.npy`` (estimated Forward T) and, written last, ``result.json``.
"""
import contextlib
import errno
import json
import os

import atomic_files as atomic

CONFIG = 'config.json'
#: The entry of config.json beside the run's identity: how to start it (device, paths, ...).
LAUNCH = 'launch'
LOCK = '.lock'
RESULT = 'result.json'
SNAPSHOT = 'snapshot.npz'
LOG = 'log.json'
ACCURACY = 'accuracy.json'
LABELS = 'labels.npz'
LABEL_ACCURACY = 'label_accuracy.json'
MODEL = 'model.npz'
TRANSITION = 'transition.npy'


class SettingsMismatchError(ValueError):
    """An output directory already holds a run made with other settings."""


class RunDirectoryBusy(RuntimeError):
    """Another process is training in the run directory."""


def read_json(path):
    """The JSON in ``path``, or None when it is missing or being replaced."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_result(part_dir):
    """A part's ``result.json`` (None: the part has not finished)."""
    return read_json(os.path.join(part_dir, RESULT))


def finished(part_dir):
    return os.path.exists(os.path.join(part_dir, RESULT))


def epochs_done(part_dir):
    """Epochs a part has finished: from its result, else from its per-epoch log."""
    result = read_result(part_dir)
    if result is not None:
        return result['epochs']
    log = read_json(os.path.join(part_dir, LOG)) or []
    return int(log[-1]['epoch']) if log else 0


def final_loss(part_dir):
    """The mean training loss of a part's last epoch, from its log (None if absent)."""
    log = read_json(os.path.join(part_dir, LOG)) or []
    return log[-1].get('main/loss') if log else None


def output_path(run_dir, methods):
    return os.path.join(run_dir, 'output-{}.txt'.format('+'.join(methods)))


def check_identity(run_dir, identity, defaults):
    """Refuses (:class:`SettingsMismatchError`, nothing touched) a run directory whose
    ``config.json`` names other settings than ``identity``; a field missing there (added to
    the configuration after the run was made) counts as its value in ``defaults``. Returns
    whether the directory holds a configuration already."""
    recorded = read_json(os.path.join(run_dir, CONFIG))
    if recorded is None:
        return False
    recorded = {k: v for k, v in recorded.items() if k != LAUNCH}
    differ = sorted(k for k in set(recorded) | set(identity)
                    if recorded.get(k, defaults.get(k)) != identity.get(k, defaults.get(k)))
    if differ:
        raise SettingsMismatchError(
            '{} holds a run made with other settings ({}); nothing was changed there: use '
            'another --out, or delete that directory to start it again'.format(
                run_dir, ', '.join('{} {} there, {} now'.format(
                    k, json.dumps(recorded.get(k)), json.dumps(identity.get(k)))
                    for k in differ)))
    return True


def claim(run_dir, identity, defaults, launch=None, new_launch=False):
    """Claims ``run_dir`` for a configuration: checks an existing ``config.json``
    (:func:`check_identity`) or writes one. ``launch`` (how to start the run) is written beside
    the identity where the file has none, or replaces the file's with ``new_launch``; the
    identity already there is never rewritten."""
    path = os.path.join(run_dir, CONFIG)
    if check_identity(run_dir, identity, defaults):
        recorded = read_json(path)
        if launch is None or recorded.get(LAUNCH) == launch or (
                LAUNCH in recorded and not new_launch):
            return
        identity = {k: v for k, v in recorded.items() if k != LAUNCH}
    data = dict(identity)
    if launch is not None:
        data[LAUNCH] = launch
    atomic.write_json(path, data)


@contextlib.contextmanager
def locked(part_dir):
    """Holds a part's lock while it trains: a second process that tries to train the same part
    is refused (:class:`RunDirectoryBusy`) instead of interleaving its snapshots with the first
    one's. The lock dies with its process (flock), so a killed run leaves nothing to clean
    up."""
    run_dir = part_dir
    import fcntl
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, LOCK)
    with open(path, 'a+') as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or 'another process'
            raise RunDirectoryBusy('{} is being trained by {}; wait for it to finish, or '
                                   'stop it first'.format(run_dir, holder))
        handle.seek(0)
        handle.truncate()
        handle.write('process {}'.format(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

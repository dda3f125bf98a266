"""A run directory: its file names, its results, the identity check that keeps one directory to
one setting, and the lock that keeps one process training a part. Layout: ``config.json``
(identity + launch entry), ``output-<methods>.txt``, and per part (step1, tanaka, ...) ``.lock``,
``log.json``, ``accuracy.json``, ``snapshot.npz``, ``labels.npz``, ``label_accuracy.json``,
``model.npz``, ``transition.npy`` and, written last, ``result.json``."""
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import time
import zipfile

import numpy

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
    """A part's ``result.json``; None if the part has not finished or its result is damaged."""
    return None if result_problem(part_dir) else read_json(os.path.join(part_dir, RESULT))


def finished(part_dir):
    return read_result(part_dir) is not None


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
    ``config.json`` names other settings than ``identity`` (a field missing there counts as its
    value in ``defaults``). Returns whether the directory holds a configuration already."""
    path = os.path.join(run_dir, CONFIG)
    reason = problem(path)
    if reason:
        raise DamagedFile(
            '{} is damaged ({}); it records which run {} holds, so nothing was started there: '
            'move it aside (or delete that folder) to start the run again'.format(
                path, reason, run_dir))
    recorded = read_json(path)
    if recorded is None:
        return False
    recorded = {k: v for k, v in recorded.items() if k != LAUNCH}
    differ = sorted(k for k in set(recorded) | set(identity)
                    if recorded.get(k, defaults.get(k)) != identity.get(k, defaults.get(k)))
    if differ:
        raise SettingsMismatchError(
            '{} holds a run made with other settings ({}, says {}); nothing was changed there: '
            'use another --out, or delete that directory to start it again'.format(
                run_dir, ', '.join('{} {} there, {} now'.format(
                    k, json.dumps(recorded.get(k)), json.dumps(identity.get(k)))
                    for k in differ), path))
    return True


def claim(run_dir, identity, defaults, launch=None, new_launch=False):
    """Claims ``run_dir`` for a configuration: checks an existing ``config.json`` or writes one.
    ``launch`` is written where the file has none, or replaces it with ``new_launch``; the
    identity there is never rewritten. Returns what changed in an existing launch entry."""
    path = os.path.join(run_dir, CONFIG)
    changed = []
    if check_identity(run_dir, identity, defaults):
        recorded = read_json(path)
        if launch is None or recorded.get(LAUNCH) == launch or (
                LAUNCH in recorded and not new_launch):
            return []
        before = recorded.get(LAUNCH) or {}
        changed = ['{} {} -> {}'.format(k, json.dumps(before.get(k)), json.dumps(launch.get(k)))
                   for k in sorted(set(before) | set(launch)) if before.get(k) != launch.get(k)
                   and LAUNCH in recorded]
        identity = {k: v for k, v in recorded.items() if k != LAUNCH}
    data = dict(identity)
    if launch is not None:
        data[LAUNCH] = launch
    atomic.write_json(path, data)
    return changed


@contextlib.contextmanager
def locked(part_dir):
    """Holds a part's lock while it trains: a second process that tries to train the same part
    is refused (:class:`RunDirectoryBusy`). The lock (flock) dies with its process."""
    os.makedirs(part_dir, exist_ok=True)
    with open(os.path.join(part_dir, LOCK), 'a+') as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or 'another process'
            raise RunDirectoryBusy('{} is being trained by {}; wait for it to finish, or '
                                   'stop it first'.format(part_dir, holder))
        handle.seek(0)
        handle.truncate()
        handle.write('process {}'.format(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# ----- damaged files: named in one line, moved aside where the part can start again -----
class DamagedFile(ValueError):
    """A run folder's file that cannot be what its name says (the message says what to do)."""


class RestartPart(Exception):
    """A part's snapshot could not be loaded and was moved aside: the part trains again."""


#: What each JSON file of a run folder holds.
JSON_TYPES = {CONFIG: dict, RESULT: dict, LOG: list, ACCURACY: dict, LABEL_ACCURACY: dict}
#: A finished part's outputs that later parts read.
OUTPUTS = (LABELS, MODEL, TRANSITION)
#: The outputs a finished part always leaves (later parts read them).
NEEDED = {'step1': (LABELS, MODEL), 'cross_entropy': (MODEL,), 'pencil': (LABELS,)}
#: What a label table (``labels.npz``) holds at least.
LABEL_ARRAYS = ('soft.npy', 'hard.npy', 'noisy.npy', 'clean.npy')
#: The per-epoch files of an unfinished part, written again from the snapshot every epoch.
PER_EPOCH = (LOG, ACCURACY, LABEL_ACCURACY)


def stamp(identity, part):
    """A fingerprint of a run's identity and part, kept in its snapshot and result (to recognise
    a file copied from another run or part)."""
    text = json.dumps([identity, part], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def problem(path):
    """What is wrong with a run folder's file (JSON of its kind, whole .npz, loadable .npy), as a
    few words; None when nothing is, or when it is missing."""
    name = os.path.basename(path)
    try:
        if os.path.getsize(path) == 0:
            return 'empty'
    except OSError:
        return None
    try:
        if name.endswith('.json'):
            with open(path, 'rb') as f:
                value = json.loads(f.read().decode('utf-8'))
            kind = JSON_TYPES.get(name, (dict, list))
            if not isinstance(value, kind):
                return 'not a JSON {}'.format(getattr(kind, '__name__', 'object or list'))
        elif name.endswith('.npz'):
            with zipfile.ZipFile(path) as archive:
                bad, entries = archive.testzip(), archive.namelist()
            if bad is not None:
                return 'entry {} is corrupt'.format(bad)
            if name == LABELS and not set(LABEL_ARRAYS) <= set(entries):
                return 'not a label table: it lacks {}'.format(', '.join(
                    e[:-4] for e in LABEL_ARRAYS if e not in entries))
            if name == MODEL and not all('/' in e for e in entries):
                return "not a network's weights"
        elif name.endswith('.npy'):
            array = numpy.load(path, allow_pickle=False)
            if not isinstance(array, numpy.ndarray):
                array.close()
                return 'an archive, not a NumPy array'
            if name == TRANSITION and (array.ndim != 2 or array.shape[0] != array.shape[1]):
                return 'not a square matrix but of shape {}'.format(array.shape)
    except UnicodeDecodeError:
        return 'not text'
    except ValueError as error:            # json's JSONDecodeError; numpy's bad header
        return 'not {} ({})'.format('JSON' if name.endswith('.json') else 'a NumPy array',
                                    str(error).splitlines()[0][:80])
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        return 'not a whole NumPy archive ({})'.format(str(error).splitlines()[0][:80])
    return None


def result_problem(part_dir, identity=None, part=None):
    """What is wrong with a part's ``result.json`` (None: nothing, or missing): damaged, lacking
    a number, or of another run or part (its stamp, where it has one)."""
    path = os.path.join(part_dir, RESULT)
    found = problem(path)
    if found:
        return found
    result = read_json(path)
    if result is None:
        return None
    missing = [k for k in ('best_test', 'last_test', 'epochs', 'config') if k not in result]
    if missing:
        return 'lacks {}'.format(', '.join(missing))
    if identity is not None and result.get('stamp') not in (None, stamp(identity, part)):
        return 'of another run or part'
    return None


def move_aside(path):
    """Renames a damaged file to ``<name>.damaged-<UTC time>`` beside it (never deleted);
    returns the new path."""
    aside = '{}.damaged-{}'.format(path, time.strftime('%Y%m%dT%H%M%S', time.gmtime()))
    n = 1
    while os.path.exists(aside):
        n += 1
        aside = '{}.damaged-{}-{}'.format(path, time.strftime('%Y%m%dT%H%M%S', time.gmtime()), n)
    os.replace(path, aside)
    return aside


def repair_part(part_dir, identity, part):
    """Before a part is trained or skipped: moves its damaged files aside where the part can
    safely start again; returns one line per file moved, saying what happens next (a damaged
    result or output: the part finishes again from its snapshot; a damaged snapshot: it starts
    again; a per-epoch file: written again at the next epoch)."""
    notes = []

    def aside(name, what, reason):
        path = os.path.join(part_dir, name)
        notes.append('note: {} is damaged ({}): moved aside to {}; {}'.format(
            path, reason, os.path.basename(move_aside(path)), what))

    again = 'the part finishes again from its snapshot'
    reason = result_problem(part_dir, identity, part)
    if reason:
        aside(RESULT, again, reason)
    elif os.path.exists(os.path.join(part_dir, RESULT)):
        for name in OUTPUTS:
            path = os.path.join(part_dir, name)
            reason = problem(path)
            if (not reason and name in NEEDED.get(part, ()) and not os.path.exists(path)
                    and os.path.exists(os.path.join(part_dir, SNAPSHOT))):
                if not os.path.exists(os.path.join(part_dir, RESULT)):
                    continue                # moved aside already, for another missing output
                result = move_aside(os.path.join(part_dir, RESULT))
                notes.append('note: {} is missing (a copy cut short?): the result beside it '
                             'moved aside to {}; {}'.format(path, os.path.basename(result), again))
                continue
            if reason and os.path.exists(os.path.join(part_dir, RESULT)):
                result = move_aside(os.path.join(part_dir, RESULT))
                notes.append('note: {} is damaged ({}): moved aside to {}, with its part\'s '
                             'result (to {}); {}'.format(
                                 path, reason, os.path.basename(move_aside(path)),
                                 os.path.basename(result), again))
            elif reason:
                aside(name, again, reason)
        return notes
    reason = problem(os.path.join(part_dir, SNAPSHOT))
    if reason:
        aside(SNAPSHOT, 'the part starts again from its first epoch', reason)
    for name in PER_EPOCH:
        reason = problem(os.path.join(part_dir, name))
        if reason:
            aside(name, 'written again at the next epoch', reason)
    return notes

"""End-to-end work that runs in processes of its own beside the tests that run in the pytest
process (which keeps one core busy), so that a machine's second core works too. A test reads the
outcome through a session fixture declared here (:func:`command` or :func:`call`), which waits
for it. The session (``background_work`` in conftest.py) starts the work of the tests it
selected, and no other, :data:`AT_ONCE` pieces at a time: first the piece the first test needs,
then the longest first (the last to finish decides when the session ends), at a lower priority
than the tests (``nice``), which go on at full speed while the work takes the cores they leave.
A test that needs work not started yet starts it at once. The work is what the test ran itself
before: nothing asserted changes, and a test run alone waits for its work as for its own run."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
#: How long a test waits for its work (seconds).
TIMEOUT = 1800
#: Pieces of work running at once (each may run several processes), and their niceness.
AT_ONCE, NICENESS = 2, 10
#: {fixture name: function(folder) -> (argv, environment or None)}, as declared.
_DECLARED = {}
#: {fixture name: its CPU seconds on a 2-core machine, about}, as declared.
_COST = {}


class Outcome(object):
    """A finished command: its ``folder``, ``command``, ``returncode``, ``stdout`` and
    ``stderr`` (text)."""

    def __init__(self, folder, command, returncode, stdout, stderr):
        self.folder, self.command = folder, command
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


class Started(object):
    """One declared command running in its own empty ``folder``, from the repository root (its
    output goes to files there: nothing waits on a pipe that nobody reads), in a process group
    of its own (stopped whole, the processes it started with it)."""

    def __init__(self, name, folder, niceness=0, environment=None):
        self.name, self.folder = name, folder
        self.command, env = _DECLARED[name](folder)
        self._files = [open(os.path.join(folder, '{}.{}'.format(name, stream)), 'w+')
                       for stream in ('stdout', 'stderr')]
        nice = shutil.which('nice') if niceness else None
        self.process = subprocess.Popen(
            ([nice, '-n', str(niceness)] if nice else []) + self.command,
            stdout=self._files[0], stderr=self._files[1], text=True, cwd=ROOT,
            env=environment if env is None else env,
            start_new_session=True)
        self._outcome = None

    def outcome(self):
        """Waits for the command; its :class:`Outcome`."""
        if self._outcome is None:
            returncode = self.process.wait(TIMEOUT)
            texts = []
            for f in self._files:
                f.seek(0)
                texts.append(f.read())
                f.close()
            self._outcome = Outcome(self.folder, self.command, returncode, *texts)
        return self._outcome

    def stop(self):
        """Ends the command where the session ends before it does."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        for f in self._files:
            f.close()


class Queue(object):
    """The session's work: ``names`` (declared fixtures) started in this order, :data:`AT_ONCE`
    at a time, each in its own folder from ``tmp_path_factory``."""

    def __init__(self, names, tmp_path_factory, at_once=AT_ONCE):
        self._factory, self._at_once = tmp_path_factory, at_once
        # the session's environment, not what a test running meanwhile has patched
        self._environment = dict(os.environ)
        self._folders = {name: str(tmp_path_factory.mktemp(name)) for name in names}
        self._waiting, self._started = list(names), {}
        self._lock, self._stopped = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._keep_going, daemon=True)
        self._thread.start()

    def _keep_going(self):
        while not self._stopped.is_set():
            with self._lock:
                running = sum(w.process.poll() is None for w in self._started.values())
                while self._waiting and running < self._at_once and not self._stopped.is_set():
                    self._start(self._waiting[0])
                    running += 1
                if not self._waiting:
                    return
            time.sleep(0.2)

    def _start(self, name):                  # under the lock
        if name in self._waiting:
            self._waiting.remove(name)
        folder = self._folders.get(name) or str(self._factory.mktemp(name))
        self._started[name] = Started(name, folder, NICENESS, self._environment)

    def outcome(self, name):
        """Waits for the work ``name`` (started now if it was not yet); its :class:`Outcome`."""
        with self._lock:
            if name not in self._started:
                self._start(name)
            started = self._started[name]
        return started.outcome()

    def stop(self):
        """Ends the work still running (the session ends before it does)."""
        self._stopped.set()
        self._thread.join()
        with self._lock:
            for started in self._started.values():
                started.stop()


def in_order_to_start(items):
    """The declared fixtures that ``items`` (the session's tests, in order) use: the first that a
    test needs, then the others from the longest to the shortest."""
    order = []
    for item in items:
        for name in getattr(item, 'fixturenames', ()):
            if name in _DECLARED and name not in order:
                order.append(name)
    return order[:1] + sorted(order[1:], key=lambda name: -_COST[name])


def _declare(name, build, cost):
    if name in _DECLARED:
        raise ValueError('background work {!r} is declared twice'.format(name))
    _DECLARED[name], _COST[name] = build, cost


def command(name, build, cost):
    """Declares the session fixture ``name``: the :class:`Outcome` of the command that
    ``build(folder)`` returns as ``(argv, environment or None)`` for an empty ``folder``;
    ``cost``: its CPU seconds, about (the longest work starts first)."""
    _declare(name, build, cost)

    @pytest.fixture(scope='session', name=name)
    def fixture(background_work):
        return background_work.outcome(name)
    return fixture


#: Calls ``module.function(folder/out)`` (the folder made empty) and writes its value to
#: ``folder/value.json``.
CALLER = ('import importlib, json, os, sys; sys.path.insert(0, sys.argv[1]); '
          "out = os.path.join(sys.argv[4], 'out'); os.makedirs(out); "
          'value = getattr(importlib.import_module(sys.argv[2]), sys.argv[3])(out); '
          "json.dump(value, open(os.path.join(sys.argv[4], 'value.json'), 'w'))")


def call(name, module, function, cost):
    """Declares the session fixture ``name``: ``(folder, value)`` of ``function(folder)`` of the
    test module ``module`` (its name), called in a process of its own on an empty ``folder``
    (its own: the fixture's output files lie beside it); ``cost`` as for :func:`command`.
    The value goes through JSON, as through a result file; a failure fails the test with the
    call's output."""
    _declare(name, lambda folder: (
        [sys.executable, '-c', CALLER, TESTS, module, function, folder], None), cost)

    @pytest.fixture(scope='session', name=name)
    def fixture(background_work):
        done = background_work.outcome(name)
        if done.returncode:
            pytest.fail('{}.{} failed in its process (exit {}):\n{}\n{}'.format(
                module, function, done.returncode, done.stdout[-3000:], done.stderr[-6000:]),
                pytrace=False)
        with open(os.path.join(done.folder, 'value.json')) as f:
            return os.path.join(done.folder, 'out'), json.load(f)
    return fixture

"""The one aggregator of finished runs: every part's ``result.json`` into per-cell lists of
numbers, for the tables, the figures and :mod:`reproduce.summarize`.

Numbers are in percent (accuracies) or loss units (the final training loss); a cell's statistics
are the mean, the sample standard deviation (ddof 1; 0 for one trial) and the count over trials.
"""
import dataclasses
import os
import sys

import numpy

from reproduce.run import methods as methods_lib, rundir

KINDS = ('best', 'last')
#: How a cell's spread is computed, as captions and JSON state it.
STD_CONVENTION = 'sample standard deviation over trials (ddof 1; 0 for one trial)'


def stats(values, trials=None):
    """Mean, sample standard deviation (ddof 1; 0 for one value), count, the values and the
    trials (seeds) they come from, in the same order."""
    trials = [int(t) for t in trials] if trials is not None else None
    if trials is not None and len(trials) != len(values):
        raise ValueError('{} values but {} trials'.format(len(values), len(trials)))
    if not values:
        return {'mean': None, 'std': None, 'n': 0, 'values': [], 'trials': []}
    std = float(numpy.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {'mean': float(numpy.mean(values)), 'std': std, 'n': len(values),
            'values': [float(v) for v in values], 'trials': trials}


def brief(result):
    """The numbers and provenance of one part's ``result.json`` that tables and summaries keep."""
    entry = {k: result[k] for k in ('best_test', 'last_test', 'epochs', 'train_seconds')}
    entry['best_epoch'] = result['accuracy']['best']['epoch']
    entry['seeds'] = {k: v for k, v in result['config'].items() if k.endswith('_seed')}
    entry['provenance'] = result['provenance']
    if 'labels' in result:
        entry['labels'] = result['labels']
    return entry


@dataclasses.dataclass
class Run:
    """One run directory to gather: its parts and the key its numbers go under (a noise rate
    for a table; (data set, noise, rate) for a summary)."""

    run_dir: str
    parts: tuple
    key: object
    name: str
    trial: int


@dataclasses.dataclass
class Gathered:
    """Finished numbers by cell, each with the trials they come from (``'trials'``):
    ``cells[(method, key)][kind]``, ``labels[key]['noisy' or 'corrected']`` (step 1),
    ``signals[(part, quantity, key)]['value']`` (final_loss, label_accuracy); and a brief of
    every finished part (``parts``)."""

    cells: dict = dataclasses.field(default_factory=dict)
    labels: dict = dataclasses.field(default_factory=dict)
    signals: dict = dataclasses.field(default_factory=dict)
    parts: list = dataclasses.field(default_factory=list)

    def cell(self, method, key, kind):
        """:func:`stats` of one table cell (empty when nothing finished)."""
        return _entry_stats(self.cells.get((method, key)), kind)

    def label_cell(self, key, which):
        """:func:`stats` of step 1's label accuracy (``noisy`` or ``corrected``) at ``key``."""
        return _entry_stats(self.labels.get(key), which)

    def signal(self, part, quantity, key):
        """:func:`stats` of one signal cell."""
        return _entry_stats(self.signals.get((part, quantity, key)), 'value')

    def keys(self):
        return sorted({k for _, k in self.cells} | set(self.labels),
                      key=lambda k: k if isinstance(k, tuple) else (k,))


def _entry_stats(entry, which):
    return stats((entry or {}).get(which, []), (entry or {}).get('trials', []))


def _add(store, key, trial, **values):
    entry = store.setdefault(key, dict({name: [] for name in values}, trials=[]))
    for name, value in values.items():
        entry[name].append(value)
    entry['trials'].append(trial)


def skipped(path, reason):
    """Says in one line (stderr) that gathering left out a run's damaged file."""
    sys.stderr.write('skipped {}: {} is damaged ({})\n'.format(
        os.path.dirname(path), os.path.basename(path), reason))


def gather(runs):
    """Every finished part of ``runs`` (:class:`Run`) into a :class:`Gathered`."""
    found = Gathered()
    for run in runs:
        for part in run.parts:
            part_dir = os.path.join(run.run_dir, part)
            reason = rundir.result_problem(part_dir)
            if reason:
                skipped(os.path.join(part_dir, rundir.RESULT), reason)
            result = rundir.read_result(part_dir)
            if result is None:
                continue
            key, trial = run.key, run.trial
            found.parts.append(dict(brief(result), run=run.name, part=part, trial=trial))
            if result.get('final_loss') is not None:
                _add(found.signals, (part, 'final_loss', key), trial, value=result['final_loss'])
            if 'labels' in result:
                _add(found.signals, (part, 'label_accuracy', key), trial,
                     value=100 * result['labels']['corrected_accuracy'])
            if part in methods_lib.PREREQUISITES:
                _add(found.labels, key, trial, noisy=100 * result['labels']['noisy_accuracy'],
                     corrected=100 * result['labels']['corrected_accuracy'])
            else:
                _add(found.cells, (part, key), trial, best=100 * result['best_test'],
                     last=100 * result['last_test'])
    return found


def runs_of_units(units):
    """The :class:`Run` of every unit of a table plan (key: the noise rate)."""
    return [Run(u.run_dir, u.parts, u.config.rate, u.config.name(), u.config.trial)
            for u in units]


def runs_of_directories(run_dirs):
    """The :class:`Run` of arbitrary run directories (key: (data set, noise, rate), read from
    their parts' results); FileNotFoundError for a directory without a finished part."""
    runs = []
    for run_dir in run_dirs:
        for part in methods_lib.PARTS:
            reason = rundir.result_problem(os.path.join(run_dir, part))
            if reason:
                skipped(os.path.join(run_dir, part, rundir.RESULT), reason)
        parts = [p for p in methods_lib.PARTS if rundir.finished(os.path.join(run_dir, p))]
        if not parts:
            raise FileNotFoundError('{} holds no finished run (no */{})'.format(
                run_dir, rundir.RESULT))
        config = rundir.read_result(os.path.join(run_dir, parts[0]))['config']
        key = tuple(config[k] for k in ('dataset', 'noise', 'rate'))
        runs.append(Run(run_dir, tuple(parts), key, os.path.basename(os.path.normpath(run_dir)),
                        config['trial']))
    return runs


def _readable(run_dirs, part, name):
    """The JSON of ``part``'s file ``name`` in each run directory that has it (damaged: said)."""
    for run_dir in run_dirs:
        path = os.path.join(run_dir, part, name)
        reason = rundir.problem(path)
        if reason:
            skipped(path, reason)
            continue
        record = rundir.read_json(path)
        if record:
            yield record


def curves(run_dirs, part, split='test'):
    """Per run directory, ``(epochs, accuracies)`` of ``part`` on ``split`` (runs that have not
    evaluated yet are left out)."""
    return [(r['epochs'], r['accuracy'][split])
            for r in _readable(run_dirs, part, rundir.ACCURACY) if r.get('epochs')]


def label_histories(run_dirs, part='step1'):
    """Per run directory, ``(epochs, label accuracy)`` of ``part`` per epoch."""
    return [(h['epoch'], h['accuracy'])
            for h in _readable(run_dirs, part, rundir.LABEL_ACCURACY) if h.get('epoch')]

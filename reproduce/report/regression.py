"""Regression checks: a table against a recorded one, trial by trial, with a tolerance taken from
the recording alone (``python -m reproduce.regression NEW.json RECORDED.json``, and the table
scripts' ``--check FILE``; exit 0 held, 1 moved, 2 not a table of the same kind).

A cell is best or last test accuracy (%) of a computed method, or a sharper *signal*:
``final_loss`` of every part, ``label_accuracy`` after step 1 and PENCIL. Trial k has the same
seeds on both sides, so a cell is compared by ``d_k = now_k - recorded_k``. It has *moved* when
``|mean d_k| > TOLERANCE_SIGMAS * s / sqrt(n)``, a trial has *collapsed* when ``|d_k| >
TRIAL_SIGMAS * s``, neither below the floors; ``s`` is the recording's per-trial platform spread
(:mod:`reproduce.tools.platform_spread`), else :data:`DEFAULT_SPREAD`. Cells without a shared
trial are *unpaired*, not compared."""
import argparse
import collections
import dataclasses
import itertools
import json
import math
import os
import sys

import numpy

from reproduce.run import provenance

KINDS = ('best', 'last')
#: The quantities that are accuracies in percent.
ACCURACIES = KINDS + ('label_accuracy',)
#: Tolerance floor of an accuracy cell, in percentage points ...
ACCURACY_FLOOR = 1.0
#: ... and of a loss cell, relative to the recorded value.
LOSS_FLOOR = 0.02
#: Per-trial platform spreads (s / sqrt(n)) the mean paired difference of a cell may move by.
TOLERANCE_SIGMAS = 3.0
#: Per-trial platform spreads one trial may move by before it counts as collapsed.
TRIAL_SIGMAS = 5.0
#: The recording the default spread was measured on (results/recorded/).
SPREAD_REFERENCE = 'digits_regression_table2.json'
#: Per-trial platform spread of a recording without its own, per kind of cell: test accuracy
#: (points), label accuracy (points), loss (relative to the recorded value); the largest figure
#: of each kind in SPREAD_REFERENCE, rounded up (tests/test_regression_power.py keeps them equal).
DEFAULT_SPREAD = {'test_accuracy': 1.14, 'label_accuracy': 0.80, 'loss': 0.027}


class CheckFileError(ValueError):
    """A file that is not a table of the same kind."""


def kind_of(quantity):
    """'test_accuracy', 'label_accuracy' or 'loss': the kinds of :data:`DEFAULT_SPREAD`."""
    return ('test_accuracy' if quantity in KINDS else
            'label_accuracy' if quantity == 'label_accuracy' else 'loss')


# ----- reading the files -----
def load_table(path, role='--check file'):
    """A table JSON written by a table script; :class:`CheckFileError` (one line) if not."""
    def not_a(what):
        return CheckFileError('{} {} {}'.format(role, path, what))
    if not os.path.isfile(path):
        raise not_a('does not exist')
    try:
        with open(path) as f:
            table = json.load(f)
    except (ValueError, UnicodeDecodeError) as error:
        raise not_a('is not JSON ({})'.format(error))
    expected = 'is not a table JSON written by reproduce/table<N>.py '
    if not isinstance(table, dict) or not isinstance(table.get('rows'), list):
        raise not_a(expected + '(no "rows" list)')
    for row in table['rows']:
        if not isinstance(row, dict) or 'method' not in row or any(
                not isinstance(row.get(kind), list) or any(
                    not isinstance(c, dict) or 'rate' not in c or 'mean' not in c
                    for c in row[kind]) for kind in KINDS):
            raise not_a(expected + '(a row lacks method, best or last cells with rate and mean)')
    if not isinstance(table.get('signals', []), list) or not isinstance(
            table.get('provenance', {}), dict):
        raise not_a(expected + '(signals or provenance of the wrong type)')
    return table


def load_check_file(path, table, role='--check file'):
    """A recorded table to compare ``table`` with; :class:`CheckFileError` if it is not one of the
    same kind. ``table`` needs ``table``, ``dataset``, ``noise`` and ``provenance.epochs_scale``."""
    recorded = load_table(path, role)
    for key in ('table', 'dataset', 'noise'):
        if recorded.get(key) != table.get(key):
            raise CheckFileError('{} {} holds {} {!r}, this table {!r}: compare a table with a '
                                 'recording of the same table'.format(
                                     role, path, key, recorded.get(key), table.get(key)))
    scale = (recorded.get('provenance') or {}).get('epochs_scale')
    if scale != (table.get('provenance') or {}).get('epochs_scale'):
        raise CheckFileError('{} {} was recorded with --epochs-scale {}, this table uses {}: the '
                             'numbers are not comparable'.format(
                                 role, path, scale, table['provenance'].get('epochs_scale')))
    return recorded


def cells_of(table):
    """``{(part, quantity, rate): cell}`` of every computed cell of ``table`` and its signals."""
    cells = {(row['method'], kind, cell['rate']): cell for row in table['rows']
             if row.get('status', 'computed') == 'computed' for kind in KINDS for cell in row[kind]}
    cells.update({(signal['part'], signal['quantity'], cell['rate']): cell
                  for signal in table.get('signals', []) for cell in signal['cells']})
    return cells


def trial_values(cell):
    """``{trial: value}`` of a cell; a cell without ``trials`` (recorded before they were kept)
    holds trials 0, 1, ... in order; None for a cell that kept only its summary."""
    values = cell.get('values')
    if values is None or (cell.get('n') and len(values) != cell['n']):
        return None
    trials = cell.get('trials') or list(range(len(values)))
    return dict(zip((int(t) for t in trials), values))


def sample_std(cell):
    """The trial-to-trial sample standard deviation (ddof 1) of a cell, or None (one trial)."""
    values = cell.get('values')
    if values is not None:
        return float(numpy.std(values, ddof=1)) if len(values) > 1 else None
    n, std = cell.get('n', 0), cell.get('std')      # a cell that kept only its summary
    return None if n < 2 or std is None else std * math.sqrt(n / (n - 1.0))


# ----- the per-trial platform spread -----
#: A cell's platform spread in its own units: of one trial, and of the mean of the recorded trials.
Spread = collections.namedtuple('Spread', 'per_trial mean')


def setting_values(spread_cell):
    """``{setting: {trial: value}}`` of a ``platform_spread`` cell (one trial per setting in
    recordings that kept only each setting's mean)."""
    per_trial = spread_cell.get('per_trial')
    if per_trial is None:
        return {name: {0: value} for name, value in spread_cell['values'].items()}
    return {name: dict(zip(entry['trials'], entry['values'])) for name, entry in per_trial.items()}


def distinct_settings(platform_spread):
    """The recorded settings grouped by their results: settings whose every cell is
    bit-identical form one group (the same numerics: they count once)."""
    cells = platform_spread.get('cells', [])
    groups = {}
    for setting in platform_spread.get('settings', []):
        signature = tuple(tuple(sorted(setting_values(c).get(setting['name'], {}).items()))
                          for c in cells)
        groups.setdefault(signature, []).append(setting['name'])
    return list(groups.values())


def measured_spread(spread_cell, representatives):
    """``(per-trial, mean)`` root mean square differences of a cell between every two of the
    ``representatives`` (one setting per distinct result), or None with fewer than two."""
    values = setting_values(spread_cell)
    names = [n for n in representatives if values.get(n)]
    per_trial, means = [], []
    for a, b in itertools.combinations(names, 2):
        d = [values[b][t] - values[a][t] for t in sorted(set(values[a]) & set(values[b]))]
        if d:
            per_trial += d
            means.append(numpy.mean(d))
    if not means:
        return None
    return (float(numpy.sqrt(numpy.mean(numpy.square(per_trial)))),
            float(numpy.sqrt(numpy.mean(numpy.square(means)))))


def spread_basis(recorded):
    """One line: what the tolerances of ``recorded`` rest on."""
    info = recorded.get('platform_spread')
    if not info:
        return ('no platform spread recorded: each cell allows the default per-trial spread of '
                'its kind (measured on {}; README, "Regression checks")'.format(SPREAD_REFERENCE))
    groups = distinct_settings(info)
    return ('platform spread of {} CPU numerics settings, {} distinct results ({}): the '
            'tolerances rest on those {}'.format(len(info.get('settings', [])), len(groups),
                                                 '; '.join(map(' = '.join, groups)), len(groups)))


def kind_spreads(platform_spread):
    """``{(part, quantity, rate): (per-trial, mean)}`` measured per cell, and ``{kind: [per-trial
    spread of every cell of that kind]}`` (losses relative to the cell's mean over the settings)."""
    representatives = [g[0] for g in distinct_settings(platform_spread)]
    cells, kinds = {}, {}
    for cell in platform_spread.get('cells', []):
        measured = measured_spread(cell, representatives)
        if measured is not None:
            cells[(cell['part'], cell['quantity'], cell['rate'])] = measured
            spread, kind = measured[0], kind_of(cell['quantity'])
            if kind == 'loss':
                scale = abs(numpy.mean([v for t in setting_values(cell).values()
                                        for v in t.values()]))
                spread = spread / scale if scale else 0.0
            kinds.setdefault(kind, []).append(spread)
    return cells, kinds


def recorded_spreads(recorded):
    """``{(part, quantity, rate): Spread}`` from the recording's own ``platform_spread`` (empty
    without one): per trial the larger of the cell's own figure and the root mean square of the
    figures of its kind (a cell's own, from a few distinct results, can be near 0 by chance)."""
    info = recorded.get('platform_spread')
    if not info:
        return {}
    measured, kinds = kind_spreads(info)
    typical = {kind: float(numpy.sqrt(numpy.mean(numpy.square(v)))) for kind, v in kinds.items()}
    cells, spreads = cells_of(recorded), {}
    for key, (per_trial, mean) in measured.items():
        kind = kind_of(key[1])
        scale = abs(cells[key]['mean']) if kind == 'loss' and key in cells else 1.0
        spreads[key] = Spread(max(per_trial, typical[kind] * scale), mean)
    return spreads


def default_spread(quantity, recorded_cell):
    """A cell's :data:`DEFAULT_SPREAD` in its own units, the same for every trial and for the
    mean (the mean's shrinks with the trials, as independent trials' does)."""
    s = DEFAULT_SPREAD[kind_of(quantity)]
    return Spread(s * abs(recorded_cell['mean']) if kind_of(quantity) == 'loss' else s, 0.0)


def tolerances(quantity, recorded_cell, n, spread, points=None):
    """``(mean, trial)``: how far the mean paired difference over ``n`` trials and one trial's
    difference may move (the cell's units)."""
    floor = ACCURACY_FLOOR if quantity in ACCURACIES else LOSS_FLOOR * abs(recorded_cell['mean'])
    mean = max(floor, TOLERANCE_SIGMAS * max(spread.mean, spread.per_trial / math.sqrt(n)))
    if points is not None and quantity in ACCURACIES:
        mean = points
    return mean, max(mean, floor, TRIAL_SIGMAS * spread.per_trial)


# ----- comparing -----
def _where(key):
    return '{} {} at {:g}%'.format(key[0], key[1], 100 * key[2])


def _value(quantity, value, sign=''):
    return ('{:%s.%df}' % (sign, 2 if quantity in ACCURACIES else 4)).format(value)


def trials_text(trials):
    """'0-4' for consecutive trials, else '0, 2, 5'."""
    trials = sorted(trials)
    if len(trials) > 2 and trials == list(range(trials[0], trials[-1] + 1)):
        return '{}-{}'.format(trials[0], trials[-1])
    return ', '.join(str(t) for t in trials)


@dataclasses.dataclass
class Comparison:
    """The outcome of :func:`compare`."""

    compared: int = 0          # recorded cells compared (a trial in common)
    identical: int = 0         # of them, bit-identical on the same trials
    moved: list = dataclasses.field(default_factory=list)      # lines: the mean moved
    collapsed: list = dataclasses.field(default_factory=list)  # lines: one trial moved
    missing: list = dataclasses.field(default_factory=list)    # lines: recorded, not measured now
    unpaired: list = dataclasses.field(default_factory=list)   # lines: no trial in common
    partial: dict = dataclasses.field(default_factory=dict)    # (shared, recorded only): cells
    platform: list = dataclasses.field(default_factory=list)   # how the platforms differ
    basis: str = ''            # what the tolerances rest on

    @property
    def ok(self):
        return not self.problems()

    @property
    def exact(self):
        return (self.ok and self.compared > 0 and self.identical == self.compared
                and not self.partial)

    def problems(self):
        """The lines that fail the check."""
        return self.moved + self.collapsed + self.missing + self.unpaired

    def report(self, path):
        """Readable lines for the terminal."""
        lines = []
        if self.exact:
            lines.append('check against {}: exact match, all {} recorded cells bit-identical {}'
                         .format(path, self.compared, '(on another platform)' if self.platform
                                 else 'on the same platform and settings'))
        elif self.ok:
            lines.append('check against {}: every recorded cell within tolerance ({} compared '
                         'trial by trial, {} bit-identical)'.format(
                             path, self.compared, self.identical))
        else:
            lines.append('check against {}: {} cell(s) moved, {} with a collapsed trial, {} not '
                         'measured now, {} without a trial in common ({} compared trial by '
                         'trial, {} bit-identical):'.format(
                             path, len(self.moved), len(self.collapsed), len(self.missing),
                             len(self.unpaired), self.compared, self.identical))
            lines += ['  ' + line for line in self.problems()]
        for (shared, only), count in sorted(self.partial.items()):
            lines.append('  {} cell(s) compared over trials {} only (trials {} recorded, not '
                         'measured now)'.format(count, trials_text(shared), trials_text(only)))
        if self.basis:
            lines.append('  tolerance: ' + self.basis)
        if self.platform:
            lines.append('  recorded on another platform (numbers may differ in their last bits, '
                         'and training amplifies that):')
            lines += ['    ' + line for line in self.platform]
        return lines


def _compare_cell(result, key, new, old, spread, points):
    """Compares one recorded cell with the new one, trial by trial, into ``result``."""
    quantity = key[1]
    before, after = trial_values(old), trial_values(new)
    if before is None or after is None:
        result.unpaired.append('{}: {} keeps no per-trial values: not compared'.format(
            _where(key), 'the recording' if before is None else 'the new table'))
        return
    shared = sorted(set(before) & set(after))
    if not shared:
        result.unpaired.append('{}: no trial in common (recorded trials {}, now {}): not '
                               'compared'.format(_where(key), trials_text(before),
                                                 trials_text(after)))
        return
    result.compared += 1
    only = tuple(sorted(set(before) - set(after)))
    if only:
        result.partial[(tuple(shared), only)] = result.partial.get((tuple(shared), only), 0) + 1
    d = [float(after[t]) - float(before[t]) for t in shared]
    result.identical += bool(not any(d) and set(after) == set(before))
    bad = [t for t, x in zip(shared, d) if not math.isfinite(x)]
    if bad:
        result.moved.append('{}: trial {} is {} now, {} recorded: not a finite number'.format(
            _where(key), bad[0], after[bad[0]], before[bad[0]]))
        return
    allowed, per_trial = tolerances(quantity, old, len(shared), spread, points)
    unit, mean = ' points' * (quantity in ACCURACIES), sum(d) / len(d)
    if abs(mean) > allowed:
        std = sample_std(old)
        in_std = ('{:+.1f} recorded trial std'.format(mean / std) if std else
                  'no trial std: one recorded trial' if std is None else
                  'the recorded trials are all equal')
        result.moved.append(
            '{}: {} now, {} recorded over trials {}: mean paired difference {}{} ({}; '
            'tolerance {}{})'.format(
                _where(key), _value(quantity, numpy.mean([after[t] for t in shared])),
                _value(quantity, numpy.mean([before[t] for t in shared])), trials_text(shared),
                _value(quantity, mean, '+'), unit, in_std, _value(quantity, allowed), unit))
    far = [(t, x) for t, x in zip(shared, d) if abs(x) > per_trial]
    if far and len(shared) > 1:
        result.collapsed.append('{}: trial{} {} moved {}{} (one trial may move {}{})'.format(
            _where(key), 's' * (len(far) > 1), ', '.join(str(t) for t, _ in far),
            ', '.join(_value(quantity, x, '+') for _, x in far), unit,
            _value(quantity, per_trial), unit))


def compare(table, recorded, points=None):
    """Compares every recorded cell with ``table``'s, trial by trial; returns a
    :class:`Comparison`."""
    now, spreads = cells_of(table), recorded_spreads(recorded)
    result = Comparison(basis=spread_basis(recorded))
    for key, old in sorted(cells_of(recorded).items(), key=lambda kv: _where(kv[0])):
        if old.get('mean') is None:
            continue
        new = now.get(key)
        if new is None or new.get('mean') is None:
            result.missing.append('{}: recorded {}, not measured now'.format(
                _where(key), _value(key[1], old['mean'])))
            continue
        spread = spreads.get(key) or default_spread(key[1], old)
        _compare_cell(result, key, new, old, spread, points)
    before = (recorded.get('provenance') or {}).get('platforms')
    after = (table.get('provenance') or {}).get('platforms')
    if not before or before != after:
        result.platform = (provenance.platform_differences(before[0], after[0])
                           if before and after and len(before) == len(after) == 1 else
                           ['recorded on {}, now on {}'.format(
                               json.dumps(before) if before else 'an unrecorded platform',
                               json.dumps(after))])
    return result


def check(table, path, points=None, role='--check file'):
    """``--check PATH`` of a table (and this module's command line): ``(ok, report lines)``;
    :class:`CheckFileError` if PATH is not a recording of the same table."""
    comparison = compare(table, load_check_file(path, table, role), points)
    return comparison.ok, comparison.report(path)


def main(argv=None):
    """The command line; returns the exit status (0 within tolerance, 1 moved, 2 bad input)."""
    p = argparse.ArgumentParser(prog='python -m reproduce.regression',
                                description='Compare a table JSON with a recorded one, trial by '
                                            'trial (README, "Regression checks").')
    p.add_argument('new', metavar='NEW.json', help='a table JSON written by a table script')
    p.add_argument('recorded', metavar='RECORDED.json', help='a recording of the same table')
    p.add_argument('--tolerance', type=float, default=None, metavar='P',
                   help='allowed mean paired difference of the accuracy cells, in points')
    args = p.parse_args(argv)
    if args.tolerance is not None and not args.tolerance > 0:
        p.error('--tolerance must be positive')
    try:
        table = load_table(args.new, 'NEW')
        ok, lines = check(table, args.recorded, args.tolerance, 'RECORDED')
    except CheckFileError as error:
        sys.stderr.write('error: {}\n'.format(error))
        return 2
    sys.stdout.write('\n'.join(lines) + '\n')
    return 0 if ok else 1


def spread_markdown(recorded):
    """The spread as a Markdown section (appended to the recorded table's Markdown)."""
    info = recorded['platform_spread']
    names = [s['name'] for s in info['settings']]
    lines = ['', '## Spread across CPU numerics settings', '',
             'The same configuration run once per setting (reproduce/platform_spread.py); the '
             'numbers above are those of `{}`. `--check` compares trial by trial; its '
             'tolerances rest on the {} distinct results of these {} settings: {:g} per-trial '
             'spreads (root mean square difference between two distinct settings) over the '
             'square root of the trials for the mean, {:g} for one trial (at least {:g} point for '
             'accuracies, {:g} % of the value for losses).'.format(
                 info['reference'], len(distinct_settings(info)), len(names), TOLERANCE_SIGMAS,
                 TRIAL_SIGMAS, ACCURACY_FLOOR, 100 * LOSS_FLOOR), '',
             '| part | quantity | rate | ' + ' | '.join(names) + ' | range |',
             '|---|---|---|' + '---|' * (len(names) + 1)]
    for cell in info['cells']:
        q = cell['quantity']
        lines.append('| {} | {} | {:g}% | {} | {} |'.format(
            cell['part'], q, 100 * cell['rate'], ' | '.join(
                _value(q, cell['values'][n]) if n in cell['values'] else '–' for n in names),
            _value(q, cell['max'] - cell['min'])))
    lines += ['', 'Settings: ' + '; '.join('`{}`: {}'.format(s['name'], ' '.join(
        '{}={}'.format(k, v) for k, v in s['environment'].items()) or 'the machine\'s own')
        for s in info['settings'])]
    return '\n'.join(lines) + '\n'

"""Regression checks: a table against a recorded one, cell by cell, with a tolerance that says
why it is what it is.

A *cell* is one number of a table for one (part, quantity, noise rate):

* the table's own cells: ``best`` and ``last`` test accuracy (%) of every computed method;
* the *signals* beside them, sharp where test accuracy is loose: ``final_loss``, the mean training
  loss of the last epoch of every part (step 1 included), and ``label_accuracy``, the share (%) of
  training labels equal to the clean one after a part that corrects labels (step 1, PENCIL).

A cell's tolerance is the largest of

* a floor: :data:`ACCURACY_FLOOR` percentage points for accuracies, :data:`LOSS_FLOOR` times the
  recorded value for losses;
* :data:`TOLERANCE_SIGMAS` standard errors of the difference of the two means, from each side's
  trial-to-trial sample standard deviation (a side with one trial adds nothing);
* :data:`PLATFORM_FACTOR` times the cell's range over the CPU numerics settings (OpenBLAS kernels,
  numpy SIMD paths) recorded beside it (``platform_spread``, :mod:`reproduce.platform_spread`),
  when the recording has one: the same code on another machine moves a cell that far.

``--tolerance P`` replaces the rule by P points for the accuracy cells. Every moved cell is
reported in its own units and in units of the recorded trial standard deviation (when the
recording has several trials). A cell that is bit-identical is counted as such, and when every
cell is identical and the recording was made on the same platform (library versions, BLAS kernel
and threads, numpy SIMD paths; on a GPU its CUDA stack) the check reports an exact match.
"""
import dataclasses
import json
import math
import os

import numpy

from reproduce import provenance

KINDS = ('best', 'last')
#: Quantities of the signals, and whether each is an accuracy in percent.
SIGNALS = ('final_loss', 'label_accuracy')
ACCURACIES = KINDS + ('label_accuracy',)
#: Tolerance floor of an accuracy cell, in percentage points ...
ACCURACY_FLOOR = 1.0
#: ... and of a loss cell, relative to the recorded value.
LOSS_FLOOR = 0.02
#: Standard errors of the difference of the two means that a cell may move by.
TOLERANCE_SIGMAS = 3.0
#: Multiple of the recorded range over CPU numerics settings that a cell may move by: the range
#: of a few settings underestimates that of every machine, hence more than 1.
PLATFORM_FACTOR = 1.5


class CheckFileError(ValueError):
    """A --check file that is not a table of the same kind."""


def load_check_file(path, table):
    """A recorded table to compare ``table`` with; :class:`CheckFileError` if it is not one.

    ``table`` needs ``table``, ``dataset``, ``noise`` and ``provenance.epochs_scale``."""
    if not os.path.isfile(path):
        raise CheckFileError('--check file {} does not exist'.format(path))
    try:
        with open(path) as f:
            recorded = json.load(f)
    except ValueError as error:
        raise CheckFileError('--check file {} is not JSON ({})'.format(path, error))
    expected = 'a table JSON written by reproduce/table{}.py'.format(table['table'])
    if not isinstance(recorded, dict) or not isinstance(recorded.get('rows'), list):
        raise CheckFileError('--check file {} is not {} (no "rows" list)'.format(path, expected))
    for key in ('table', 'dataset', 'noise'):
        if recorded.get(key) != table[key]:
            raise CheckFileError('--check file {} holds {} {!r}, this table {!r}: compare a table '
                                 'with a recording of the same table'.format(
                                     path, key, recorded.get(key), table[key]))
    scale = recorded.get('provenance', {}).get('epochs_scale')
    if scale != table['provenance']['epochs_scale']:
        raise CheckFileError('--check file {} was recorded with --epochs-scale {}, this table '
                             'uses {}: the numbers are not comparable'.format(
                                 path, scale, table['provenance']['epochs_scale']))
    for row in recorded['rows']:
        if not isinstance(row, dict) or 'method' not in row or any(
                not isinstance(row.get(kind), list) or any(
                    not isinstance(c, dict) or 'rate' not in c or 'mean' not in c
                    for c in row[kind]) for kind in KINDS):
            raise CheckFileError('--check file {} is not {} (a row lacks method, best or last '
                                 'cells with rate and mean)'.format(path, expected))
    return recorded


def cells_of(table):
    """``{(part, quantity, rate): cell}`` of every computed cell of ``table`` and its signals."""
    cells = {}
    for row in table['rows']:
        if row.get('status', 'computed') != 'computed':
            continue
        for kind in KINDS:
            for cell in row[kind]:
                cells[(row['method'], kind, cell['rate'])] = cell
    for signal in table.get('signals', []):
        for cell in signal['cells']:
            cells[(signal['part'], signal['quantity'], cell['rate'])] = cell
    return cells


def spread_of(recorded):
    """``{(part, quantity, rate): range}`` over the CPU numerics settings of the recording's
    ``platform_spread`` (empty without one)."""
    spread = (recorded.get('platform_spread') or {}).get('cells', [])
    return {(c['part'], c['quantity'], c['rate']): c['max'] - c['min'] for c in spread}


def sample_std(cell):
    """The trial-to-trial sample standard deviation (ddof 1) of a cell, or None (one trial)."""
    values = cell.get('values')
    if values is not None:
        return float(numpy.std(values, ddof=1)) if len(values) > 1 else None
    n, std = cell.get('n', 0), cell.get('std')      # a cell that kept only its summary
    return None if n < 2 or std is None else std * math.sqrt(n / (n - 1.0))


def tolerance_of(quantity, current, recorded, platform_range=None, points=None):
    """The allowed difference of a cell (its units: points, or loss units); see the module."""
    if points is not None and quantity in ACCURACIES:
        return points
    floor = ACCURACY_FLOOR if quantity in ACCURACIES else LOSS_FLOOR * abs(recorded['mean'])
    variance = 0.0
    for cell in (current, recorded):
        std = sample_std(cell)
        if std is not None:
            variance += std ** 2 / cell['n']
    trials = TOLERANCE_SIGMAS * math.sqrt(variance)
    platform = PLATFORM_FACTOR * platform_range if platform_range else 0.0
    return max(floor, trials, platform)


def _where(key):
    part, quantity, rate = key
    return '{} {} at {:g}%'.format(part, quantity, 100 * rate)


def _value(quantity, value):
    return '{:.2f}'.format(value) if quantity in ACCURACIES else '{:.4f}'.format(value)


@dataclasses.dataclass
class Comparison:
    """The outcome of :func:`compare`."""

    compared: int = 0          # recorded cells with a number now
    identical: int = 0         # of them, bit-identical
    moved: list = dataclasses.field(default_factory=list)      # lines, one per moved cell
    missing: list = dataclasses.field(default_factory=list)    # lines: recorded, not measured now
    platform: list = dataclasses.field(default_factory=list)   # how the platforms differ

    @property
    def ok(self):
        return not self.moved and not self.missing

    @property
    def exact(self):
        return self.ok and self.compared > 0 and self.identical == self.compared

    def problems(self):
        """The lines that fail the check."""
        return self.moved + self.missing

    def report(self, path):
        """Readable lines for the terminal."""
        lines = []
        if self.exact and not self.platform:
            lines.append('check against {}: exact match, all {} recorded cells bit-identical on '
                         'the same platform and settings'.format(path, self.compared))
        elif self.exact:
            lines.append('check against {}: exact match, all {} recorded cells bit-identical '
                         '(on another platform)'.format(path, self.compared))
        elif self.ok:
            lines.append('check against {}: every recorded cell within tolerance ({} compared, '
                         '{} bit-identical)'.format(path, self.compared, self.identical))
        else:
            lines.append('check against {}: {} cell(s) moved, {} not measured now ({} compared, '
                         '{} bit-identical):'.format(path, len(self.moved), len(self.missing),
                                                     self.compared, self.identical))
            lines += ['  ' + line for line in self.problems()]
        if self.platform:
            lines.append('  recorded on another platform (numbers may differ in their last bits, '
                         'and training amplifies that):')
            lines += ['    ' + line for line in self.platform]
        return lines


def compare(table, recorded, points=None):
    """Compares every recorded cell with ``table``'s; returns a :class:`Comparison`."""
    now, spread = cells_of(table), spread_of(recorded)
    result = Comparison()
    for key, old in sorted(cells_of(recorded).items(), key=lambda kv: _where(kv[0])):
        if old.get('mean') is None:
            continue
        quantity = key[1]
        new = now.get(key)
        if new is None or new.get('mean') is None:
            result.missing.append('{}: recorded {}, not measured now'.format(
                _where(key), _value(quantity, old['mean'])))
            continue
        result.compared += 1
        same = new.get('values', [new['mean']]) == old.get('values', [old['mean']])
        result.identical += bool(same)
        allowed = tolerance_of(quantity, new, old, spread.get(key), points)
        moved = new['mean'] - old['mean']
        if abs(moved) <= allowed:
            continue
        std = sample_std(old)
        in_std = ('{:+.1f} recorded trial std'.format(moved / std) if std else
                  'no trial std: {} recorded trial'.format(old.get('n', 1)))
        unit = ' points' if quantity in ACCURACIES else ''
        result.moved.append('{}: {} now, {} recorded ({}{}, {}; tolerance {}{})'.format(
            _where(key), _value(quantity, new['mean']), _value(quantity, old['mean']),
            ('{:+.2f}' if quantity in ACCURACIES else '{:+.4f}').format(moved), unit, in_std,
            _value(quantity, allowed), unit))
    before = (recorded.get('provenance') or {}).get('platforms')
    after = (table.get('provenance') or {}).get('platforms')
    if not before or before != after:
        result.platform = (provenance.platform_differences(before[0], after[0])
                           if before and after and len(before) == len(after) == 1 else
                           ['recorded on {}, now on {}'.format(
                               json.dumps(before) if before else 'an unrecorded platform',
                               json.dumps(after))])
    return result

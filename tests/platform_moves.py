"""What the regression check catches and what it lets through, simulated on the recorded tables
(moved here from reproduce/report/regression.py: the check needs none of it at run time): a
table with some cells replaced, a recording as measured under one of its recorded CPU numerics
settings, a table re-run with every trial moved as the recording moved between two settings, and
the share of such re-runs the check flags."""
import numpy

from reproduce.report import regression
from reproduce.report.regression import cells_of, kind_of, setting_values, trial_values


def smallest_detected_drop(recorded, method='ours'):
    """``{rate: points}``: a drop of ``method``'s best and last test accuracy by more than this on
    every recorded trial is flagged, one not more passes (the smaller of the two cells'
    tolerances of the mean; a uniform drop moves no trial further than the mean)."""
    spreads, cells = regression.recorded_spreads(recorded), cells_of(recorded)
    drops = {}
    for (part, quantity, rate), cell in cells.items():
        if part != method or quantity not in regression.KINDS or cell.get('mean') is None:
            continue
        spread = spreads.get((part, quantity, rate)) or regression.default_spread(quantity, cell)
        allowed = regression.tolerances(quantity, cell, len(trial_values(cell)), spread)[0]
        drops[rate] = min(drops.get(rate, allowed), allowed)
    return drops


def pooled_spread(recording):
    """``{kind: largest per-trial spread}`` over the cells of a recording's platform spread
    (losses relative to their value): what :data:`regression.DEFAULT_SPREAD` holds."""
    return {kind: max(v) for kind, v in
            regression.kind_spreads(recording['platform_spread'])[1].items()}


def with_values(table, values):
    """A light copy of ``table`` (rows, signals, provenance) whose cells hold ``values``:
    ``{(part, quantity, rate): {trial: value}}``; other cells are kept."""
    def cell(key, old):
        if key not in values:
            return old
        trials = sorted(values[key])
        numbers = [float(values[key][t]) for t in trials]
        return dict(old, values=numbers, trials=trials, n=len(numbers),
                    mean=sum(numbers) / len(numbers))
    rows = [dict(row, **{kind: [cell((row['method'], kind, c['rate']), c) for c in row[kind]]
                         for kind in regression.KINDS}) for row in table['rows']]
    signals = [dict(s, cells=[cell((s['part'], s['quantity'], c['rate']), c)
                              for c in s['cells']]) for s in table.get('signals', [])]
    return {'table': table.get('table'), 'dataset': table.get('dataset'),
            'noise': table.get('noise'), 'rows': rows, 'signals': signals,
            'provenance': table.get('provenance', {}),
            'platform_spread': table.get('platform_spread')}


def setting_table(recording, setting):
    """The recording's table as measured under one of its recorded settings."""
    return with_values(recording, {
        (c['part'], c['quantity'], c['rate']): setting_values(c)[setting]
        for c in recording['platform_spread']['cells'] if setting in setting_values(c)})


def setting_deviations(recording, before, after):
    """``{(part, quantity): difference}`` of the recording's single trial between two recorded
    settings (losses relative to the ``before`` value)."""
    deviations = {}
    for c in recording['platform_spread']['cells']:
        values = setting_values(c)
        (a,), (b,) = values[before].values(), values[after].values()
        deviations[(c['part'], c['quantity'])] = (b - a) / abs(a) if kind_of(
            c['quantity']) == 'loss' and a else b - a
    return deviations


def moved_by_platforms(recorded, recording, assignment, deviations=None):
    """``recorded`` with trial k moved as the one-trial ``recording`` moved between the two
    recorded settings ``assignment[k] = (before, after)`` (the cells of the same part and
    quantity; losses relatively): an unchanged table re-run on other platforms.
    ``deviations``: :func:`setting_deviations` of the pairs, when already computed."""
    deviations = deviations or {pair: setting_deviations(recording, *pair)
                                for pair in set(assignment.values())}
    values = {}
    for key, cell in cells_of(recorded).items():
        trials = trial_values(cell)
        if not trials:
            continue
        moved = {}
        for t, v in trials.items():
            delta = deviations[assignment[t]].get(key[:2], 0.0)
            moved[t] = v * (1 + delta) if kind_of(key[1]) == 'loss' else v + delta
        values[key] = moved
    return with_values(recorded, values)


def false_alarm_rate(recorded, recording, draws=1000, seed=0):
    """The share of ``draws`` re-runs of the unchanged ``recorded`` table flagged by the check:
    in each, every trial independently moves as the one-trial ``recording`` moved between two
    of its recorded settings drawn at random (the settings the recording was and is run on)."""
    settings = [s['name'] for s in recording['platform_spread']['settings']]
    trials = sorted({t for c in cells_of(recorded).values() for t in (trial_values(c) or {})})
    deviations = {(a, b): setting_deviations(recording, a, b)
                  for a in settings for b in settings}
    rng = numpy.random.RandomState(seed)
    flagged = 0
    for _ in range(draws):
        pick = rng.randint(len(settings), size=(len(trials), 2))
        assignment = {t: (settings[a], settings[b]) for t, (a, b) in zip(trials, pick)}
        flagged += not regression.compare(
            moved_by_platforms(recorded, recording, assignment, deviations), recorded).ok
    return flagged / float(draws)

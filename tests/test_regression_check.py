"""The regression check's rule, against plain-numpy computations written here: trials paired by
seed, the tolerance from the recording's platform spread only (distinct settings counted once),
a collapsed trial, unpaired cells, both units in the report, exact matches, platform differences,
and the command line `python -m reproduce.regression NEW RECORDED`."""
import copy
import itertools
import json
import math
import os
import subprocess
import sys

import numpy
import pytest

import platform_moves
from reproduce.report import regression
from reproduce.run import provenance

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cell(values, rate=0.5, trials=None):
    trials = list(range(len(values))) if trials is None else list(trials)
    return {'rate': rate, 'mean': float(numpy.mean(values)),
            'std': float(numpy.std(values, ddof=1)) if len(values) > 1 else 0.0,
            'n': len(values), 'values': [float(v) for v in values], 'trials': trials}


def table(best, last=None, loss=None, labels=None, platform='A', trials=None):
    rows = [{'method': 'ours', 'status': 'computed', 'best': [cell(best, trials=trials)],
             'last': [cell(last or best, trials=trials)]},
            {'method': 'cnn_crf', 'status': 'quoted', 'best': [cell([50.0])],
             'last': [cell([50.0])]}]
    signals = []
    if loss is not None:
        signals.append({'part': 'ours', 'quantity': 'final_loss',
                        'cells': [cell(loss, trials=trials)]})
    if labels is not None:
        signals.append({'part': 'step1', 'quantity': 'label_accuracy',
                        'cells': [cell(labels, trials=trials)]})
    return {'table': 2, 'dataset': 'digits', 'noise': 'symmetric', 'rows': rows,
            'signals': signals,
            'provenance': {'epochs_scale': 0.2, 'platforms': [{'blas': platform}]}}


def with_spread(recorded, per_setting):
    """Adds a one-trial platform spread: ``{(part, quantity): {setting: value}}``."""
    names = sorted({n for values in per_setting.values() for n in values})
    recorded['platform_spread'] = {
        'reference': names[0], 'settings': [{'name': n, 'environment': {}} for n in names],
        'cells': [{'part': part, 'quantity': quantity, 'rate': 0.5, 'values': values,
                   'min': min(values.values()), 'max': max(values.values())}
                  for (part, quantity), values in per_setting.items()]}
    return recorded


def rms_pairwise(values):
    """Root mean square of the differences between every two values (the numpy reference)."""
    d = [b - a for a, b in itertools.combinations(values, 2)]
    return math.sqrt(numpy.mean(numpy.square(d)))


def test_the_statistic_is_the_mean_of_the_paired_differences_not_of_the_means():
    # the seed-to-seed spread (88..96) is large, the paired move small and uniform: -0.8 on
    # every trial is within the default tolerance (3 x 1.14 / sqrt(5)), -1.8 is not; the
    # unpaired rule would have allowed 3 standard errors of the difference of the means
    recorded = table([88.0, 90.0, 92.0, 94.0, 96.0])
    allowed = 3 * regression.DEFAULT_SPREAD['test_accuracy'] / math.sqrt(5)
    unpaired = 3 * math.sqrt(2 * numpy.var([88.0, 90, 92, 94, 96], ddof=1) / 5)
    assert allowed < 1.8 < unpaired
    assert regression.compare(table([87.2, 89.2, 91.2, 93.2, 95.2]), recorded).ok
    moved = regression.compare(table([86.2, 88.2, 90.2, 92.2, 94.2]), recorded)
    assert [line.split(':')[0] for line in moved.moved] == ['ours best at 50%',
                                                           'ours last at 50%']
    assert 'mean paired difference -1.80 points' in moved.moved[0]
    assert 'tolerance {:.2f} points'.format(allowed) in moved.moved[0]
    # the new side's own spread does not widen anything: the same mean move with a scrambled
    # order of seeds is a different, larger, per-trial move
    scrambled = regression.compare(table([96.0, 94.0, 92.0, 90.0, 88.0]), recorded)
    assert not scrambled.moved and len(scrambled.collapsed) == 2


def test_trials_pair_by_seed_and_unpaired_cells_are_not_compared():
    recorded = table([90.0, 91.0, 92.0], trials=[0, 1, 2])
    shifted = table([91.0, 92.0, 90.0], trials=[1, 2, 0])     # the same numbers, listed otherwise
    assert regression.compare(shifted, recorded).exact
    partial = regression.compare(table([91.0, 92.0], trials=[1, 2]), recorded)
    assert partial.ok and not partial.exact and partial.compared == 2
    assert 'compared over trials 1, 2 only (trials 0 recorded' in '\n'.join(
        partial.report('r'))
    other = regression.compare(table([90.0, 91.0, 92.0], trials=[5, 6, 7]), recorded)
    assert not other.ok and other.compared == 0 and len(other.unpaired) == 2
    assert other.unpaired[0] == ('ours best at 50%: no trial in common (recorded trials 0-2, '
                                 'now 5-7): not compared')
    summary = copy.deepcopy(recorded)
    del summary['rows'][0]['best'][0]['values']
    assert 'keeps no per-trial values' in regression.compare(recorded, summary).unpaired[0]


def test_one_collapsed_trial_is_flagged_even_when_the_mean_stays_within_tolerance():
    recorded = table([95.0, 96.0, 97.0, 96.0, 95.0])
    per_trial = 5 * regression.DEFAULT_SPREAD['test_accuracy']
    mean = 3 * regression.DEFAULT_SPREAD['test_accuracy'] / math.sqrt(5)
    drop = per_trial + 0.3                  # one trial moves past its tolerance ...
    assert drop / 5 < mean                  # ... while the mean stays inside
    now = table([95.0, 96.0, 97.0 - drop, 96.0, 95.0])
    comparison = regression.compare(now, recorded)
    assert not comparison.ok and not comparison.moved
    assert comparison.collapsed[0] == 'ours best at 50%: trial 2 moved {:+.2f} points (one ' \
        'trial may move {:.2f} points)'.format(-drop, per_trial)


def test_a_platform_spread_sizes_each_cell_from_distinct_settings_only():
    settings = {'a': 90.0, 'b': 91.0, 'c': 91.0, 'd': 89.5}
    labels = {'a': 88.0, 'b': 88.4, 'c': 88.4, 'd': 87.9}
    recorded = with_spread(table([90.0], labels=[88.0]),
                           {('ours', 'best'): settings, ('ours', 'last'): settings,
                            ('step1', 'label_accuracy'): labels})
    # b and c give identical numbers in every cell: one result, counted once
    assert regression.distinct_settings(recorded['platform_spread']) == [['a'], ['b', 'c'],
                                                                          ['d']]
    distinct_best = rms_pairwise([90.0, 91.0, 89.5])
    distinct_labels = rms_pairwise([88.0, 88.4, 87.9])
    spreads = regression.recorded_spreads(recorded)
    # test accuracy: two cells of the kind with the same figure; label accuracy: the only one
    assert spreads[('ours', 'best', 0.5)].per_trial == pytest.approx(distinct_best)
    assert spreads[('step1', 'label_accuracy', 0.5)].per_trial == pytest.approx(distinct_labels)
    allowed = max(1.0, 3 * distinct_best)
    assert regression.compare(table([90.0 - allowed + 0.01], labels=[88.0]), recorded).ok
    moved = regression.compare(table([90.0 - allowed - 0.01], labels=[86.5]), recorded)
    assert [line.split(':')[0] for line in moved.problems()] == [
        'ours best at 50%', 'ours last at 50%', 'step1 label_accuracy at 50%']
    assert 'platform spread of 4 CPU numerics settings, 3 distinct results' in moved.basis
    # every recorded setting passes against every other
    for before, after in itertools.product(settings, repeat=2):
        base = platform_moves.setting_table(recorded, before)
        assert regression.compare(platform_moves.setting_table(recorded, after), base).ok


def test_a_cell_with_a_flat_spread_gets_the_typical_spread_of_its_kind():
    flat = {'a': 90.0, 'b': 90.0, 'c': 90.0}
    wide = {'a': 90.0, 'b': 92.0, 'c': 89.0}
    recorded = with_spread(table([90.0]), {('ours', 'best'): flat, ('ours', 'last'): wide})
    typical = math.sqrt((0.0 + rms_pairwise([90.0, 92.0, 89.0]) ** 2) / 2)
    spreads = regression.recorded_spreads(recorded)
    assert spreads[('ours', 'best', 0.5)].per_trial == pytest.approx(typical)
    assert spreads[('ours', 'last', 0.5)].per_trial == pytest.approx(
        rms_pairwise([90.0, 92.0, 89.0]))


def test_several_trials_per_setting_use_the_spread_of_the_paired_differences():
    recorded = table([90.0, 92.0])
    per_trial = {'a': {'trials': [0, 1], 'values': [90.0, 92.0]},
                 'b': {'trials': [0, 1], 'values': [91.0, 92.5]},
                 'c': {'trials': [0, 1], 'values': [89.0, 93.0]}}
    recorded['platform_spread'] = {'settings': [{'name': n} for n in 'abc'], 'cells': [
        {'part': 'ours', 'quantity': kind, 'rate': 0.5, 'per_trial': per_trial,
         'values': {n: numpy.mean(v['values']) for n, v in per_trial.items()}}
        for kind in ('best', 'last')]}
    pairs = [(numpy.array(per_trial[b]['values']) - per_trial[a]['values'])
             for a, b in itertools.combinations('abc', 2)]
    s_trial = math.sqrt(numpy.mean(numpy.square(pairs)))
    s_mean = math.sqrt(numpy.mean(numpy.square([p.mean() for p in pairs])))
    spread = regression.recorded_spreads(recorded)[('ours', 'best', 0.5)]
    assert (spread.per_trial, spread.mean) == pytest.approx((s_trial, s_mean))
    mean, trial = regression.tolerances('best', recorded['rows'][0]['best'][0], 2, spread)
    assert mean == pytest.approx(max(1.0, 3 * max(s_mean, s_trial / math.sqrt(2))))
    assert trial == pytest.approx(max(mean, 5 * s_trial))


def test_losses_use_a_relative_floor_and_a_relative_default_spread():
    recorded = table([90.0], loss=[2.0])
    spread = regression.default_spread('final_loss', recorded['signals'][0]['cells'][0])
    assert spread.per_trial == pytest.approx(2.0 * regression.DEFAULT_SPREAD['loss'])
    mean, _ = regression.tolerances('final_loss', recorded['signals'][0]['cells'][0], 1, spread)
    assert mean == pytest.approx(max(0.04, 3 * 2.0 * regression.DEFAULT_SPREAD['loss']))
    assert regression.compare(table([90.0], loss=[2.0 + 0.99 * mean]), recorded).ok
    moved = regression.compare(table([90.0], loss=[2.0 - 1.01 * mean]), recorded)
    assert moved.moved[0].startswith('ours final_loss at 50%') and '-0.1' in moved.moved[0]
    # --tolerance replaces the accuracies' tolerance of the mean, not the losses'
    assert regression.tolerances('final_loss', recorded['signals'][0]['cells'][0], 1, spread,
                                 points=0.25)[0] == pytest.approx(mean)
    assert regression.tolerances('best', recorded['rows'][0]['best'][0], 1, spread,
                                 points=0.25)[0] == 0.25


def test_a_number_that_is_not_finite_is_a_moved_cell():
    recorded = table([90.0, 91.0, 92.0])
    comparison = regression.compare(table([90.0, float('nan'), 92.0]), recorded)
    assert not comparison.ok
    assert comparison.moved[0] == 'ours best at 50%: trial 1 is nan now, 91.0 recorded: not a ' \
        'finite number'


def test_identical_numbers_on_the_same_platform_are_an_exact_match():
    recorded = table([90.0], loss=[1.5], labels=[88.0])
    comparison = regression.compare(copy.deepcopy(recorded), recorded)
    assert comparison.ok and comparison.exact and comparison.compared == 4
    assert 'exact match' in comparison.report('rec.json')[0]
    assert 'same platform' in comparison.report('rec.json')[0]


def test_moved_cells_are_reported_in_points_and_in_trial_std():
    recorded = table([88.0, 90.0, 92.0], loss=[1.5, 1.5, 1.5], labels=[88.0, 88.0, 88.0])
    now = table([80.0, 81.0, 82.0], loss=[1.0, 1.0, 1.0], labels=[55.0, 55.0, 55.0])
    comparison = regression.compare(now, recorded)
    assert not comparison.ok and not comparison.exact
    lines = comparison.moved
    assert len(lines) == 4     # best, last, loss, labels; the quoted row is not compared
    best = [line for line in lines if 'ours best' in line][0]
    assert '-9.00 points' in best and '-4.5 recorded trial std' in best
    assert 'over trials 0-2' in best
    assert 'step1 label_accuracy at 50%' in ' '.join(lines)
    loss = [line for line in lines if 'final_loss' in line][0]
    allowed = 3 * regression.DEFAULT_SPREAD['loss'] * 1.5 / math.sqrt(3)
    assert '-0.5000' in loss and 'tolerance {:.4f})'.format(allowed) in loss
    assert 'the recorded trials are all equal' in loss


def test_missing_cells_fail():
    recorded = table([90.0], loss=[1.5])
    assert regression.compare(table([90.9], loss=[1.52]), recorded).ok
    comparison = regression.compare(table([90.9]), recorded)
    assert not comparison.ok and comparison.missing == [
        'ours final_loss at 50%: recorded 1.5000, not measured now']


def test_another_platform_is_named_with_what_differs():
    recorded = table([90.0])
    now = table([90.0], platform='B')
    comparison = regression.compare(now, recorded)
    assert comparison.exact and comparison.platform == [
        'blas: "A" recorded, "B" now']
    assert 'another platform' in '\n'.join(comparison.report('rec.json'))
    del recorded['provenance']['platforms']
    assert 'unrecorded platform' in regression.compare(now, recorded).platform[0]


def test_numerics_key_keeps_what_decides_the_bits():
    record = provenance.provenance('@numpy')
    key = provenance.numerics_key(record)
    assert key['versions'] == record['versions']
    assert 'cpu' not in key and key['numpy_simd']['baseline']
    assert provenance.numerics_key({'versions': {}}) is None
    other = copy.deepcopy(key)
    other['numpy_simd']['dispatched'] = ['AVX2']
    assert [line.split(':')[0] for line in provenance.platform_differences(key, other)] == [
        'numpy_simd']


# The command line


def write(path, content):
    with open(str(path), 'w') as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_the_command_line_exits_0_1_or_2_with_the_same_verdict_as_check(tmp_path, capsys):
    recorded = write(tmp_path / 'rec.json', table([90.0, 91.0, 92.0], labels=[88.0] * 3))
    same = write(tmp_path / 'same.json', table([90.3, 91.0, 91.8], labels=[88.1] * 3))
    moved = write(tmp_path / 'moved.json', table([87.0, 88.0, 89.0], labels=[88.0] * 3))
    assert regression.main([same, recorded]) == 0
    assert 'every recorded cell within tolerance' in capsys.readouterr().out
    assert regression.main([moved, recorded]) == 1
    printed = capsys.readouterr().out
    assert '2 cell(s) moved' in printed and 'ours best at 50%' in printed
    assert regression.main([moved, recorded, '--tolerance', '5']) == 0
    capsys.readouterr()
    for path, status in ((same, 0), (moved, 1)):
        ok, lines = regression.check(json.load(open(path)), recorded)
        assert ok == (status == 0)
        assert regression.main([path, recorded]) == status
        assert capsys.readouterr().out.splitlines() == lines


@pytest.mark.parametrize('new, recorded, message', [
    (None, 'missing', 'RECORDED {rec} does not exist'),
    ('missing', None, 'NEW {new} does not exist'),
    (None, 'not json', 'RECORDED {rec} is not JSON'),
    (None, '[1, 2]', 'no "rows" list'),
    (None, dict(table([90.0]), table=3), 'RECORDED {rec} holds table 3, this table 2'),
    (None, dict(table([90.0]), dataset='cifar10'), "holds dataset 'cifar10'"),
    (None, dict(table([90.0]), noise='asymmetric'), "holds noise 'asymmetric'"),
    (None, dict(table([90.0]), provenance={'epochs_scale': 1.0}), 'not comparable'),
    (None, {'rows': [{'method': 'ours'}]}, 'a row lacks'),
])
def test_a_file_that_is_not_a_table_of_the_same_kind_gives_one_line_and_exit_2(
        tmp_path, capsys, new, recorded, message):
    good = table([90.0])
    new_path = str(tmp_path / 'new.json') if new == 'missing' else write(tmp_path / 'new.json',
                                                                         new or good)
    rec_path = str(tmp_path / 'rec.json') if recorded == 'missing' else write(
        tmp_path / 'rec.json', recorded or good)
    assert regression.main([new_path, rec_path]) == 2
    captured = capsys.readouterr()
    assert captured.out == '' and captured.err.count('\n') == 1
    assert captured.err.startswith('error: ')
    assert message.format(new=new_path, rec=rec_path) in captured.err


def test_python_dash_m_runs_it(tmp_path):
    recorded = write(tmp_path / 'rec.json', table([90.0, 91.0, 92.0]))
    moved = write(tmp_path / 'moved.json', table([80.0, 81.0, 82.0]))
    done = subprocess.run([sys.executable, '-m', 'reproduce.regression', moved, recorded],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1 and 'ours best at 50%' in done.stdout and not done.stderr


def test_platform_spread_records_every_trial_of_every_setting_for_the_check():
    from reproduce.tools import platform_spread
    tables = {'a': table([90.0, 92.0], loss=[1.0, 1.2]),
              'b': table([91.0, 92.5], loss=[1.0, 1.2]),
              'c': table([89.0, 93.0], loss=[1.1, 1.2])}
    recorded = dict(tables['a'], platform_spread={
        'settings': [{'name': n} for n in tables], 'cells': platform_spread.spread(tables)})
    (best,) = [c for c in recorded['platform_spread']['cells'] if c['quantity'] == 'best']
    assert best['per_trial']['c'] == {'trials': [0, 1], 'values': [89.0, 93.0]}
    assert (best['min'], best['max']) == (91.0, 91.75)
    pairs = numpy.array([[1.0, 0.5], [-1.0, 1.0], [-2.0, 0.5]])      # b-a, c-a, c-b
    spread = regression.recorded_spreads(recorded)[('ours', 'best', 0.5)]
    assert spread.per_trial == pytest.approx(math.sqrt(numpy.mean(pairs ** 2)))
    assert spread.mean == pytest.approx(math.sqrt(numpy.mean(pairs.mean(axis=1) ** 2)))
    assert 'of 3 CPU numerics settings, 3 distinct results' in regression.spread_basis(recorded)

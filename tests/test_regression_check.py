"""The regression check's rule, against hand computations: tolerance per cell (floor, trial
spread, platform spread), both units in the report, exact matches, platform differences."""
import copy
import math

import numpy
import pytest

from reproduce import provenance, regression


def cell(values, rate=0.5):
    return {'rate': rate, 'mean': float(numpy.mean(values)), 'std': float(numpy.std(values)),
            'n': len(values), 'values': list(values)}


def table(best, last=None, loss=None, labels=None, platform='A'):
    rows = [{'method': 'ours', 'status': 'computed', 'best': [cell(best)],
             'last': [cell(last or best)]},
            {'method': 'cnn_crf', 'status': 'quoted', 'best': [cell([50.0])],
             'last': [cell([50.0])]}]
    signals = []
    if loss is not None:
        signals.append({'part': 'ours', 'quantity': 'final_loss', 'cells': [cell(loss)]})
    if labels is not None:
        signals.append({'part': 'step1', 'quantity': 'label_accuracy', 'cells': [cell(labels)]})
    return {'table': 2, 'dataset': 'digits', 'noise': 'symmetric', 'rows': rows,
            'signals': signals,
            'provenance': {'epochs_scale': 0.2, 'platforms': [{'blas': platform}]}}


def test_tolerance_is_the_largest_of_floor_trial_spread_and_platform_spread():
    one = cell([90.0])
    assert regression.tolerance_of('best', one, one) == regression.ACCURACY_FLOOR
    wide = cell([88.0, 90.0, 92.0, 94.0])            # sample std sqrt(20/3)
    expected = 3 * math.sqrt(2 * (20 / 3) / 4)
    assert regression.tolerance_of('best', wide, copy.deepcopy(wide)) == pytest.approx(expected)
    assert regression.tolerance_of('best', one, one, platform_range=2.0) == pytest.approx(3.0)
    assert regression.tolerance_of('best', wide, wide, points=0.25) == 0.25
    loss = cell([2.0])
    assert regression.tolerance_of('final_loss', loss, loss) == pytest.approx(0.04)
    assert regression.tolerance_of('final_loss', loss, loss, points=0.25) == pytest.approx(0.04)
    # a recording that kept only mean, population std and n: widened to the sample std
    summary = {'mean': 90.0, 'std': 2.0, 'n': 5}
    assert regression.sample_std(summary) == pytest.approx(2.0 * math.sqrt(5 / 4))


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
    lines = comparison.problems()
    assert len(lines) == 4     # best, last, loss, labels; the quoted row is not compared
    best = [line for line in lines if 'ours best' in line][0]
    assert '-9.00 points' in best and '-4.5 recorded trial std' in best
    assert 'step1 label_accuracy at 50%' in ' '.join(lines)
    loss = [line for line in lines if 'final_loss' in line][0]
    assert '-0.5000' in loss and 'tolerance 0.0300' in loss


def test_small_moves_pass_and_missing_cells_fail():
    recorded = table([90.0], loss=[1.5])
    assert regression.compare(table([90.9], loss=[1.52]), recorded).ok
    comparison = regression.compare(table([90.9]), recorded)
    assert not comparison.ok and comparison.missing == [
        'ours final_loss at 50%: recorded 1.5000, not measured now']


def test_the_platform_spread_widens_each_cell_by_its_own_range():
    recorded = table([90.0], labels=[88.0])
    recorded['platform_spread'] = {'cells': [
        {'part': 'ours', 'quantity': 'best', 'rate': 0.5, 'min': 88.0, 'max': 91.0},
        {'part': 'step1', 'quantity': 'label_accuracy', 'rate': 0.5, 'min': 87.9, 'max': 88.1}]}
    assert regression.compare(table([85.6], [90.0], labels=[88.0]), recorded).ok   # 4.4 < 4.5
    comparison = regression.compare(table([90.0], labels=[86.5]), recorded)
    assert [line.split(':')[0] for line in comparison.problems()] == [
        'step1 label_accuracy at 50%']                                        # 1.5 > floor 1


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

"""Shortened schedules follow one rule and stay runnable; settings that cannot run as meant are
refused before anything starts; the method row says when its mix-up weight is not the paper's."""
import math

import pytest

from reproduce import experiment
from reproduce.batch import tables
from reproduce.run import hparams


def test_every_epoch_count_is_scaled_by_one_rule():
    for scale in (0.01, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0, 1.5):
        for epochs in (0, 1, 2, 3, 5, 10, 15, 25, 40, 70, 120, 130, 200):
            want = 0 if epochs == 0 else max(1, int(math.floor(epochs * scale + 0.5)))
            assert hparams.scale_epochs(epochs, scale) == want
    assert hparams.scale_epochs(15, 0.5) == 8           # 7.5 rounds half up (round() gives 8)
    assert hparams.scale_epochs(25, 0.1) == 3           # 2.5: half up, where round() gives 2
    step = hparams.scaled(dict(epochs=200, begin=70, window=10, milestones=(40, 80),
                               stages=(70, 130, 120)), 0.1)
    assert step == dict(epochs=20, begin=7, window=1, milestones=(4, 8), stages=(7, 13, 12))


@pytest.mark.parametrize('dataset', ['digits', 'cifar10'])
@pytest.mark.parametrize('scale', [0.01, 0.02, 0.05, 0.1, 0.2, 0.33, 0.5, 0.8, 1.0])
def test_scaled_schedules_keep_the_label_update_inside_and_a_full_window(dataset, scale):
    settings = experiment.RunConfig(dataset=dataset, epochs_scale=scale).settings()
    step1 = settings['step1']
    assert 1 <= step1['begin'] <= step1['epochs']
    assert 1 <= step1['window'] <= step1['begin']
    for part in ('step2',):
        assert all(1 <= m <= settings[part]['epochs'] for m in settings[part]['milestones'])
    assert settings['pencil']['epochs'] == sum(settings['pencil']['stages']) >= 3


def test_the_paper_schedule_is_unchanged_at_scale_one():
    settings = experiment.RunConfig(dataset='cifar10').settings()
    assert (settings['step1']['epochs'], settings['step1']['begin'],
            settings['step1']['window']) == (200, 70, 10)
    assert settings['step2']['milestones'] == (40, 80)
    assert settings['pencil']['stages'] == (70, 130, 120)


@pytest.mark.parametrize('overrides, message', [
    (dict(overrides={'step1': {'begin': 0}}), r'--set step1.begin must be in \[1, \.\.\.'),
    (dict(overrides={'step1': {'begin': 41}}), r'\[1, epochs = 40\]'),
    (dict(overrides={'step1': {'window': 16}}), r'window .* \[1, begin = 15\]'),
    (dict(overrides={'step1': {'epochs': -5}}), r'--set step1.epochs must be in \[1'),
    (dict(overrides={'step2': {'milestones': [31]}}), 'milestones must lie in'),
    (dict(overrides={'pencil': {'stages': [0, 0, 0]}}), 'at least one epoch'),
])
def test_settings_that_cannot_run_as_meant_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        experiment.RunConfig(dataset='digits', **overrides)


def test_mixup_weight_zero_is_refused_and_another_weight_is_named_in_the_row():
    with pytest.raises(ValueError, match='exactly Tanaka et al.'):
        experiment.RunConfig(mixup_weight=0)
    with pytest.raises(ValueError, match='must be positive'):
        experiment.RunConfig(mixup_weight=-1)
    assert tables.row_label_suffix('ours', experiment.RunConfig()) == ''
    assert tables.row_label_suffix('ours', experiment.RunConfig(mixup_weight=0.5)) == \
        ' (Lmix weight 0.5)'
    assert tables.row_label_suffix('forward_t', experiment.RunConfig()) == ' (true T)'


@pytest.mark.parametrize('scale', [0.1, 0.5, 1.0])
def test_a_shortened_pencil_schedule_keeps_its_stage3_decay(scale):
    """--epochs-scale shortens PENCIL's stages and leaves the word settings as given."""
    config = experiment.RunConfig(dataset='cifar10', epochs_scale=scale,
                                  overrides={'pencil': {'stage3_decay': 'official'}})
    pencil = config.settings()['pencil']
    assert pencil['stage3_decay'] == 'official' and pencil['losses'] == 'official'
    assert pencil['stages'] == tuple(hparams.scale_epochs(s, scale) for s in (70, 130, 120))
    assert experiment.RunConfig(dataset='cifar10', epochs_scale=scale).settings()['pencil'][
        'stage3_decay'] == 'divided'

"""The protocol ledger (results/PROTOCOL.md) names real tests, and the settings of its schedule
rows are the ones it cites (restated here from the paper and the official code)."""
import os
import re

from reproduce import hparams

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEDGER = os.path.join(ROOT, 'results', 'PROTOCOL.md')


def test_every_test_the_ledger_names_exists():
    with open(LEDGER) as f:
        text = f.read()
    named = re.findall(r'(test_\w+\.py)::(test_\w+)', text)
    assert len(named) >= 30
    for filename, function in named:
        path = os.path.join(ROOT, 'tests', filename)
        assert os.path.exists(path), filename
        with open(path) as f:
            assert re.search(r'^def {}\('.format(function), f.read(), re.M), \
                '{}::{}'.format(filename, function)


def test_every_row_has_six_cells():
    with open(LEDGER) as f:
        rows = [line for line in f if line.startswith('| ') and not line.startswith('| step')
                and not line.startswith('| id') and not line.startswith('| ---')]
    for row in rows:
        cells = row.strip().strip('|').split(' | ')
        assert len(cells) in (3, 6), row      # the sources table has 3 columns


def test_step1_settings_are_the_papers():
    """Paper 4.2; TAN first_step_train.py:172-197, 224-241: 200 epochs, labels from epoch 70,
    mean of the last 10 epochs, batch 128, MomentumSGD 0.9, weight decay 1e-4, no lr shift."""
    assert hparams.CIFAR10_STEP1 == dict(epochs=200, begin=70, window=10, batch_size=128,
                                         momentum=0.9, weight_decay=1e-4)


def test_step2_settings_are_the_papers():
    """Paper 4.2; TAN second_step_train.py:76-83, 118-129."""
    assert hparams.CIFAR10_STEP2 == dict(epochs=120, lr=0.2, milestones=(40, 80), lr_decay=0.1,
                                         batch_size=128, momentum=0.9, weight_decay=1e-4)


def test_table1_is_the_papers():
    """Table 1 of the paper, typed again: alpha, beta, step-1 lr, mix-up a per rate."""
    symmetric = {0.1: (1.2, 0.8, 0.02, 0.5), 0.3: (1.2, 0.8, 0.03, 0.9),
                 0.5: (1.2, 0.8, 0.04, 2.0), 0.7: (1.2, 0.8, 0.08, 4.0),
                 0.9: (0.8, 0.4, 0.12, 8.0)}
    asymmetric = {0.1: 0.05, 0.2: 0.6, 0.3: 0.6, 0.4: 0.8, 0.5: 16.0}
    expected = {('symmetric', r): v for r, v in symmetric.items()}
    expected.update({('asymmetric', r): (0.8, 0.4, 0.03, a) for r, a in asymmetric.items()})
    assert {k: (v['alpha'], v['beta'], v['lr'], v['mixup_alpha'])
            for k, v in hparams.TABLE1.items()} == expected


def test_pencil_settings_are_the_official_codes():
    """PEN PENCIL.py:39-64, 339-342 (stage 2 runs to epoch 200: 70 + 130)."""
    assert hparams.PENCIL_CIFAR10 == dict(
        stages=(70, 130, 120), lr=0.06, lr3=0.2, alpha=0.4, beta=0.1, label_lr=600.0, k=10.0,
        batch_size=128, momentum=0.9, weight_decay=1e-4, losses='official')


def test_clothing1m_settings_are_the_papers():
    """Paper 4.2 (Clothing1M): step 1 10 epochs, labels from the 1st epoch as the mean of all
    past epochs, lr 8e-4, alpha 2.4, beta 0.8; step 2 10 epochs, lr 5e-4 /10 after 5, a 0.8;
    SGD momentum 0.9, weight decay 1e-3, batch 32."""
    assert hparams.CLOTHING1M_STEP1 == dict(epochs=10, lr=8e-4, alpha=2.4, beta=0.8, begin=1,
                                            window=None, batch_size=32, momentum=0.9,
                                            weight_decay=1e-3)
    assert hparams.CLOTHING1M_STEP2 == dict(epochs=10, lr=5e-4, milestones=(5,), lr_decay=0.1,
                                            mixup_alpha=0.8, batch_size=32, momentum=0.9,
                                            weight_decay=1e-3)

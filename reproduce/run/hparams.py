"""The paper's hyper-parameters as data: the one place they live, and the rules that shorten and
check a schedule. The schedules are the anchors' (results/PROTOCOL.md); the ``DIGITS`` ones are
this package's own, not the paper's."""
import json
import math

#: Table 1 of the paper: (kind, rate) -> alpha, beta, step-1 lr, mix-up a.
TABLE1 = {
    ('symmetric', 0.1): dict(alpha=1.2, beta=0.8, lr=0.02, mixup_alpha=0.5),
    ('symmetric', 0.3): dict(alpha=1.2, beta=0.8, lr=0.03, mixup_alpha=0.9),
    ('symmetric', 0.5): dict(alpha=1.2, beta=0.8, lr=0.04, mixup_alpha=2.0),
    ('symmetric', 0.7): dict(alpha=1.2, beta=0.8, lr=0.08, mixup_alpha=4.0),
    ('symmetric', 0.9): dict(alpha=0.8, beta=0.4, lr=0.12, mixup_alpha=8.0),
    ('asymmetric', 0.1): dict(alpha=0.8, beta=0.4, lr=0.03, mixup_alpha=0.05),
    ('asymmetric', 0.2): dict(alpha=0.8, beta=0.4, lr=0.03, mixup_alpha=0.6),
    ('asymmetric', 0.3): dict(alpha=0.8, beta=0.4, lr=0.03, mixup_alpha=0.6),
    ('asymmetric', 0.4): dict(alpha=0.8, beta=0.4, lr=0.03, mixup_alpha=0.8),
    ('asymmetric', 0.5): dict(alpha=0.8, beta=0.4, lr=0.03, mixup_alpha=16.0),
}

#: Step 1 on CIFAR-10 (Tanaka et al.'s first step): fixed learning rate, labels from epoch 70
#: on as the mean of the last 10 epochs' outputs.
CIFAR10_STEP1 = dict(epochs=200, begin=70, window=10, batch_size=128, momentum=0.9,
                     weight_decay=1e-4)

#: Step 2 on CIFAR-10, and the cross-entropy baseline (interpretation choice 4).
CIFAR10_STEP2 = dict(epochs=120, lr=0.2, milestones=(40, 80), lr_decay=0.1, batch_size=128,
                     momentum=0.9, weight_decay=1e-4)

#: Clothing1M (ResNet-50 pre-trained on ImageNet).
CLOTHING1M_STEP1 = dict(epochs=10, lr=8e-4, alpha=2.4, beta=0.8, begin=1, window=None,
                        batch_size=32, momentum=0.9, weight_decay=1e-3)
CLOTHING1M_STEP2 = dict(epochs=10, lr=5e-4, milestones=(5,), lr_decay=0.1, mixup_alpha=0.8,
                        batch_size=32, momentum=0.9, weight_decay=1e-3)

#: This package's settings for scikit-learn's digits (not the paper's): a small PreAct ResNet,
#: short schedules; alpha/beta/a follow Table 1's symmetric 50 % / asymmetric rows.
DIGITS_MODEL = dict(n_blocks=1, widths=(16, 32, 64))
DIGITS_STEP1 = dict(epochs=40, begin=15, window=5, batch_size=32, momentum=0.9, weight_decay=1e-4)
DIGITS_STEP2 = dict(epochs=30, lr=0.05, milestones=(15, 25), lr_decay=0.1, batch_size=32,
                    momentum=0.9, weight_decay=1e-4)
DIGITS_TABLE = {'symmetric': dict(alpha=1.2, beta=0.8, lr=0.02, mixup_alpha=2.0),
                'asymmetric': dict(alpha=0.8, beta=0.4, lr=0.02, mixup_alpha=0.6)}


#: PENCIL (Yi & Wu, CVPR 2019) on CIFAR-10, the official code's settings (yikun2019/PENCIL,
#: PENCIL.py:39-64, 339-342 at 8a89ed50; results/PROTOCOL.md); label logits start at 10 x
#: one-hot (k). Two word settings (updaters/pencil.py): ``losses`` 'official' (the official
#: code's shapes and scaling) or 'paper' (the paper's formulas), interpretation choice 8;
#: ``stage3_decay`` 'divided' (stage 3's rate / 10 after a third and two thirds: 0.2, 0.02,
#: 0.002) or 'official' (``lr2//10``, ``lr2//100``: 0.2, 0.0, 0.0), interpretation choice 9.
PENCIL_CIFAR10 = dict(stages=(70, 130, 120), lr=0.06, lr3=0.2, alpha=0.4, beta=0.1,
                      label_lr=600.0, k=10.0, batch_size=128, momentum=0.9, weight_decay=1e-4,
                      losses='official', stage3_decay='divided')
#: PENCIL on digits (this package's): stages in proportion to the digits schedules, and the label
#: learning rate scaled with the batch (600 x 32 / 128: a sample's label step as at batch 128).
PENCIL_DIGITS = dict(stages=(10, 20, 20), lr=0.02, lr3=0.05, alpha=0.4, beta=0.1,
                     label_lr=150.0, k=10.0, batch_size=32, momentum=0.9, weight_decay=1e-4,
                     losses='official', stage3_decay='divided')

#: PENCIL on Clothing1M (ResNet-50 pre-trained on ImageNet); weight decay 1e-4 is the official
#: code's default (PENCIL.py:63-64).
#: UNVERIFIED: these values are RECALLED, NOT CHECKED. They are meant to be the PENCIL paper's
#: Clothing1M settings, but the paper's text (Yi & Wu, CVPR 2019, arXiv 1903.07788) could not be
#: found to check them against, and the official repository has no Clothing1M script
#: (results/PROTOCOL.md). The only written source found is a third-party re-implementation's
#: example command (github.com/AlexandrosPetropoulos/PENCIL, README.md at 2ca009b1: ``--stage1 5
#: --stage2 15 --epochs 25 --batch-size 32 --wd 0.001 --lr 1.6e-3 --lr2 5e-4 --alpha 0.08
#: --beta 0.8 --lambda1 3000``, with ResNet-34): it agrees on the stages, batch, lr, alpha, beta
#: and label learning rate, and differs on the stage-3 rate (5e-4) and the weight decay (1e-3);
#: it is not the paper, so nothing here was changed after it. Table 4's header says so whenever
#: PENCIL's row is computed (:data:`PENCIL_CLOTHING1M_UNVERIFIED`). Every entry can be changed
#: with ``--set pencil.<key>=<value>``.
PENCIL_CLOTHING1M = dict(stages=(5, 10, 10), lr=1.6e-3, lr3=1.6e-4, alpha=0.08, beta=0.8,
                         label_lr=3000.0, k=10.0, batch_size=32, momentum=0.9,
                         weight_decay=1e-4, losses='official', stage3_decay='divided')
#: The line Table 4's header carries when its PENCIL row was computed on Clothing1M.
PENCIL_CLOTHING1M_UNVERIFIED = (
    "UNVERIFIED: PENCIL's Clothing1M settings (reproduce/run/hparams.py, PENCIL_CLOTHING1M) are "
    "recalled, not checked against the PENCIL paper")


def table1(kind, rate):
    """Table 1's row for CIFAR-10 ``kind`` noise at ``rate``; a clear error for other rates."""
    key = (kind, round(float(rate), 4))
    if key not in TABLE1:
        known = sorted(r for k, r in TABLE1 if k == kind)
        if not known:
            raise ValueError("unknown noise kind {!r}: use 'symmetric' or 'asymmetric'".format(kind))
        raise ValueError('the paper gives no hyper-parameters for {} noise at rate {}; Table 1 has '
                         'the rates {}'.format(kind, rate, ', '.join(map(str, known))))
    return dict(TABLE1[key])


# ----- shortened schedules (--epochs-scale) and their checks -----
#: The entries of a step's settings that count epochs (PENCIL's ``stages`` too).
EPOCH_COUNTS = ('epochs', 'begin', 'window')
EPOCH_LISTS = ('milestones', 'stages')


def scale_epochs(epochs, scale):
    """The one rule that shortens every epoch count of a schedule: ``epochs x scale`` rounded half
    up, at least 1; a count of 0 stays 0."""
    return 0 if epochs == 0 else max(1, int(math.floor(epochs * scale + 0.5)))


def scaled(step, scale):
    """A copy of the settings ``step`` with every epoch count shortened by :func:`scale_epochs`,
    keeping ``begin <= epochs`` and ``window <= begin`` (a full first window, as at scale 1)."""
    step = dict(step)
    if scale == 1:
        return step
    for key in EPOCH_COUNTS:
        if step.get(key) is not None:
            step[key] = scale_epochs(step[key], scale)
    for key in EPOCH_LISTS:
        if key in step:
            step[key] = tuple(scale_epochs(e, scale) for e in step[key])
    if 'begin' in step and 'epochs' in step:
        step['begin'] = min(step['begin'], step['epochs'])
        if step.get('window') is not None:
            step['window'] = min(step['window'], step['begin'])
    return step


def check_schedule(part, step):
    """Refuses, with one line naming ``part`` and the entry, a schedule that cannot run as meant."""
    def fail(message):
        raise ValueError('{} settings: {}'.format(part, message))

    if 'stages' in step:
        stages = step['stages']
        if len(stages) != 3 or min(stages) < 0 or sum(stages) < 1:
            fail('stages must be three epoch counts >= 0 with at least one epoch in all, got '
                 '{}'.format(list(stages)))
    epochs = step.get('epochs')
    if epochs is not None and epochs < 1:
        fail('epochs must be at least 1, got {}'.format(epochs))
    if 'begin' in step:
        if not 1 <= step['begin'] <= epochs:
            fail('begin (the 1-based epoch of the first label update) must be in [1, epochs = '
                 '{}], got {}'.format(epochs, step['begin']))
        window = step.get('window')
        if window is not None and not 1 <= window <= step['begin']:
            fail('window (epochs averaged) must be in [1, begin = {}] or None (all epochs), '
                 'got {}'.format(step['begin'], window))
    for milestone in step.get('milestones', ()):
        if not 1 <= milestone <= epochs:
            fail('milestones must lie in [1, epochs = {}], got {}'.format(
                epochs, list(step['milestones'])))


# ----- what one changed setting (--set PART.KEY=VALUE) may be -----
#: key -> (lowest, highest, lowest included, highest included); None for an open end.
RANGES = {
    'epochs': (1, None, True, None), 'begin': (1, None, True, None),
    'window': (1, None, True, None), 'batch_size': (1, None, True, None),
    'lr': (0, None, False, None), 'lr3': (0, None, False, None),
    'momentum': (0, 1, True, False), 'weight_decay': (0, None, True, None),
    'lr_decay': (0, 1, False, True), 'alpha': (0, None, True, None),
    'beta': (0, None, True, None), 'mixup_alpha': (0, None, False, None),
    'label_lr': (0, None, False, None), 'k': (0, None, False, None),
}
#: Settings that take one of a few words.
WORDS = {'losses': ('official', 'paper'), 'stage3_decay': ('divided', 'official')}


def _integer(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _kind(default):
    """What a setting whose default is ``default`` takes: (its name, value -> whether it is)."""
    if isinstance(default, tuple):
        return 'a list of integers', lambda v: isinstance(v, (list, tuple)) and all(
            map(_integer, v))
    if isinstance(default, str):
        return 'a word', lambda v: isinstance(v, str)
    if default is None:
        return 'an integer or null', lambda v: v is None or _integer(v)
    if _integer(default):
        return 'an integer', _integer
    return 'a number', lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)


def check_setting(key, value, default):
    """Why ``value`` cannot replace setting ``key`` (whose default is ``default``), or None:
    its kind must be the default's, its range :data:`RANGES`' and its word :data:`WORDS`'."""
    if key == 'window' and value is None:       # None: the mean of every epoch so far
        return None
    kind, is_kind = _kind(default)
    if not is_kind(value):
        return 'takes {}, got {}'.format(kind, json.dumps(value))
    if key in WORDS and value not in WORDS[key]:
        return 'must be one of {}, got {!r}'.format(', '.join(WORDS[key]), value)
    if key in RANGES and value is not None:
        low, high, low_in, high_in = RANGES[key]
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if (low is not None and (v < low or (v == low and not low_in))) or (
                    high is not None and (v > high or (v == high and not high_in))):
                return 'must be in {}{}, {}{}, got {}'.format(
                    '[' if low_in else '(', low, '...' if high is None else high,
                    ']' if high_in else ')', json.dumps(value))
    return None

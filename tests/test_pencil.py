"""PENCIL: its three stage losses, the label-logit step, stages by epoch, resume, the lr schedule,
against plain-numpy references on a tiny linear model."""
import chainer
import numpy
import pytest
from numpy_reference import linear_setting, log_softmax, numeric_grad, observe
from chainer import training

from updaters.extensions import LabelAccuracyReport
from updaters.pencil import (PencilLabels, PencilLearningRate, PencilUpdater, pencil_loss,
                             pencil_lr_schedule, pencil_terms)

N, C, D = 12, 4, 6
ALPHA, BETA, LABEL_LR, K = 0.4, 0.1, 600., 10.


# ---- plain numpy references (float64) ----
# The official code (yikun2019/PENCIL, PENCIL.py, train()), restated in numpy:
#   lc = torch.mean(softmax(output) * (logsoftmax(output) - torch.log(softmax(yy))))
#   lo = CrossEntropyLoss()(softmax(yy), target)            # softmax(yy) used as logits
#   le = -torch.mean(softmax(output) * logsoftmax(output))
#   loss = lc + alpha * lo + beta * le;  yy -= lambda1 * d loss / d yy
# and the PENCIL paper's per-sample forms ('paper').


def stage1_loss(z, noisy):
    return -log_softmax(z)[numpy.arange(len(z)), noisy].mean()


def softmax(z):
    return numpy.exp(log_softmax(z))


def lc_ref(z, label_logits, variant='official'):
    logf = log_softmax(z)
    terms = numpy.exp(logf) * (logf - numpy.log(softmax(label_logits)))
    return terms.mean() if variant == 'official' else terms.sum(axis=1).mean()


def lo_ref(label_logits, noisy, variant='official'):
    given = softmax(label_logits) if variant == 'official' else label_logits
    return -log_softmax(given)[numpy.arange(len(noisy)), noisy].mean()


def le_ref(z, variant='official'):
    logf = log_softmax(z)
    terms = -numpy.exp(logf) * logf
    return terms.mean() if variant == 'official' else terms.sum(axis=1).mean()


def stage2_loss(z, label_logits, noisy, alpha=ALPHA, beta=BETA, variant='official'):
    return (lc_ref(z, label_logits, variant) + alpha * lo_ref(label_logits, noisy, variant)
            + beta * le_ref(z, variant))


# ---- a tiny setting: images whose pixels are the features, a linear model ----
def setting(stages, batch=N, seed=0, losses='official'):
    model, optimizer, feed, iterator, features = linear_setting(N, D, C, seed=seed, batch=batch)
    noisy = numpy.random.RandomState(seed + 1).randint(0, C, size=N).astype(numpy.int32)
    updater = PencilUpdater(iterator, optimizer, feed, noisy, C, stages, alpha=ALPHA, beta=BETA,
                            label_lr=LABEL_LR, k=K, losses=losses)
    return updater, model, noisy, features


def params(model):
    return model.W.array.astype(numpy.float64), model.b.array.astype(numpy.float64)


def perturb_labels(updater, seed=3):
    """Label logits away from K * one-hot, so that every term of the gradient matters."""
    updater.labels.logits[...] += numpy.random.RandomState(seed).normal(
        size=(N, C)).astype(numpy.float32) * 2


# ---- tests ----
def test_initial_label_logits_are_k_times_one_hot():
    updater, _, noisy, _ = setting((1, 1, 1))
    numpy.testing.assert_array_equal(updater.labels.logits, K * numpy.eye(C)[noisy])
    assert updater.labels.logits.dtype == numpy.float32
    numpy.testing.assert_array_equal(updater.hard, noisy)
    assert updater.hard.dtype == numpy.int32
    d = numpy.exp(log_softmax(K * numpy.eye(C)[noisy]))
    numpy.testing.assert_allclose(updater.label_distribution, d, rtol=1e-6)
    labels = PencilLabels(noisy, C, k=3.)
    numpy.testing.assert_array_equal(labels.logits, 3 * numpy.eye(C)[noisy])


def test_stages_by_epoch():
    updater, _, _, _ = setting((2, 3, 1), batch=6)  # 2 iterations per epoch
    assert [updater.stage_of(e) for e in range(8)] == [1, 1, 2, 2, 2, 3, 3, 3]
    seen = []
    for _ in range(14):
        seen.append((updater.epoch, updater.stage, sorted(observe(updater))))
    stage2_keys = ['main/lc', 'main/le', 'main/lo', 'main/loss']
    for epoch, stage, keys in seen:
        assert stage == updater.stage_of(epoch)
        assert keys == (stage2_keys if stage == 2 else ['main/loss'])
    assert [s for _, s, _ in seen] == [1] * 4 + [2] * 6 + [3] * 4
    with pytest.raises(ValueError):
        setting((1, 2))
    with pytest.raises(ValueError):
        setting((1, -1, 2))


def test_stage1_is_cross_entropy_on_the_noisy_labels_and_keeps_the_labels():
    updater, model, noisy, x = setting((1, 1, 1))
    before = updater.labels.logits.copy()
    W0, b0 = params(model)
    values = observe(updater)
    assert values['main/loss'] == pytest.approx(stage1_loss(x @ W0.T + b0, noisy), rel=1e-5)
    grad_W = numeric_grad(lambda W: stage1_loss(x @ W.T + b0, noisy), W0)
    numpy.testing.assert_allclose(model.W.array, W0 - 0.1 * grad_W, rtol=1e-4, atol=1e-6)
    numpy.testing.assert_array_equal(updater.labels.logits, before)


@pytest.mark.parametrize('variant', ['official', 'paper'])
def test_stage2_losses_network_step_and_label_step(variant):
    updater, model, noisy, x = setting((0, 1, 1), losses=variant)
    perturb_labels(updater)
    y0 = updater.labels.logits.astype(numpy.float64)
    W0, b0 = params(model)
    values = observe(updater)
    z0 = x @ W0.T + b0
    assert values['main/lc'] == pytest.approx(lc_ref(z0, y0, variant), rel=1e-5)
    # lo is small here: float32's log-sum-exp resolves it to ~1e-7 absolute
    assert values['main/lo'] == pytest.approx(lo_ref(y0, noisy, variant), rel=1e-5, abs=1e-6)
    assert values['main/le'] == pytest.approx(le_ref(z0, variant), rel=1e-5)
    loss = stage2_loss(z0, y0, noisy, variant=variant)
    assert values['main/loss'] == pytest.approx(loss, rel=1e-5)
    # the network: SGD on L with the label logits held fixed
    grad_W = numeric_grad(lambda W: stage2_loss(x @ W.T + b0, y0, noisy, variant=variant), W0)
    grad_b = numeric_grad(lambda b: stage2_loss(x @ W0.T + b, y0, noisy, variant=variant), b0)
    numpy.testing.assert_allclose(model.W.array, W0 - 0.1 * grad_W, rtol=1e-4, atol=1e-6)
    numpy.testing.assert_allclose(model.b.array, b0 - 0.1 * grad_b, rtol=1e-4, atol=1e-6)
    # the labels: y~ - 600 dL/dy~, dL/dy~ by central differences of the numpy reference
    numeric = numeric_grad(lambda y: stage2_loss(z0, y, noisy, variant=variant), y0)
    numpy.testing.assert_allclose(updater.labels.logits, y0 - LABEL_LR * numeric,
                                  rtol=1e-5, atol=1e-3)
    assert not numpy.allclose(updater.labels.logits, y0)


def test_the_official_losses_are_scaled_and_shaped_unlike_the_papers():
    """Lc and Le: the paper's divided by c; Lo: a softmax of the softmax (here smaller)."""
    rs = numpy.random.RandomState(5)
    z, y = rs.normal(size=(N, C)) * 2, rs.normal(size=(N, C)) * 3
    noisy = rs.randint(0, C, size=N)
    assert lc_ref(z, y) == pytest.approx(lc_ref(z, y, 'paper') / C)
    assert le_ref(z) == pytest.approx(le_ref(z, 'paper') / C)
    assert lo_ref(y, noisy) != pytest.approx(lo_ref(y, noisy, 'paper'), rel=1e-2)
    # a softmax fed to a softmax: the log-probabilities lie within log(c) - 1 of log(1/c)
    assert abs(lo_ref(y, noisy) - numpy.log(C)) <= 1.0


@pytest.mark.parametrize('variant', ['official', 'paper'])
@pytest.mark.parametrize('stage', [1, 2, 3])
def test_pencil_loss_values_and_gradients_of_both_inputs(variant, stage):
    """pencil_loss against the numpy reference: value, d/dlogits and d/dlabel_logits (Chainer's
    back-propagation against central differences)."""
    rs = numpy.random.RandomState(4)
    B = 7
    logits = rs.normal(size=(B, C)) * 3
    label_logits = rs.normal(size=(B, C)) * 4
    noisy = rs.randint(0, C, size=B).astype(numpy.int32)
    z = chainer.Variable(logits.astype(numpy.float32))
    y = chainer.Variable(label_logits.astype(numpy.float32))
    loss = pencil_loss(z, y, noisy, stage, ALPHA, BETA, variant)
    loss.backward()

    def reference(zz, yy):
        if stage == 1:
            return stage1_loss(zz, noisy)
        if stage == 3:
            return lc_ref(zz, yy, variant)
        return stage2_loss(zz, yy, noisy, variant=variant)

    assert float(loss.array) == pytest.approx(reference(logits, label_logits), rel=1e-5)
    numpy.testing.assert_allclose(
        z.grad, numeric_grad(lambda zz: reference(zz, label_logits), logits),
        rtol=1e-4, atol=1e-6)
    label_grad = numeric_grad(lambda yy: reference(logits, yy), label_logits)
    if stage == 1:
        assert y.grad is None and not label_grad.any()
    else:
        numpy.testing.assert_allclose(y.grad, label_grad, rtol=1e-4, atol=1e-6)
    lc, lo, le = pencil_terms(z, y, noisy, variant)
    assert float(lo.array) == pytest.approx(lo_ref(label_logits, noisy, variant), rel=1e-5)
    with pytest.raises(ValueError, match='variant'):
        pencil_terms(z, y, noisy, 'torch')


def test_label_step_touches_only_the_batch():
    updater, _, _, _ = setting((0, 2, 1), batch=5)  # batches 0-4, 5-9, 10-11
    before = updater.labels.logits.copy()
    observe(updater)
    after = updater.labels.logits
    numpy.testing.assert_array_equal(after[5:], before[5:])
    assert (numpy.abs(after[:5] - before[:5]).max(axis=1) > 0).all()


def test_stage3_is_kl_to_the_frozen_label_distribution():
    updater, model, noisy, x = setting((0, 0, 1))
    perturb_labels(updater)
    y0 = updater.labels.logits.copy()
    W0, b0 = params(model)
    values = observe(updater)
    assert sorted(values) == ['main/loss']
    assert values['main/loss'] == pytest.approx(lc_ref(x @ W0.T + b0, y0.astype(numpy.float64)),
                                                rel=1e-5)
    grad_b = numeric_grad(lambda b: lc_ref(x @ W0.T + b, y0.astype(numpy.float64)), b0)
    numpy.testing.assert_allclose(model.b.array, b0 - 0.1 * grad_b, rtol=1e-4, atol=1e-6)
    numpy.testing.assert_array_equal(updater.labels.logits, y0)


def test_serialize_round_trip_resumes_identically(tmp_path):
    stages = (1, 2, 2)
    a, _, _, _ = setting(stages, batch=5)  # 3 iterations per epoch
    for _ in range(5):  # into stage 2, mid-epoch
        observe(a)
    path = str(tmp_path / 'snapshot.npz')
    chainer.serializers.save_npz(path, a)
    b, _, _, _ = setting(stages, batch=5, seed=0)
    b.labels.logits[...] = 0
    chainer.serializers.load_npz(path, b)
    numpy.testing.assert_array_equal(b.labels.logits, a.labels.logits)
    assert (b.iteration, b.epoch, b.stage) == (a.iteration, a.epoch, a.stage)
    for _ in range(9):  # through the rest of stage 2 into stage 3
        assert observe(a) == observe(b)
    assert a.stage == b.stage == 3
    numpy.testing.assert_array_equal(b.labels.logits, a.labels.logits)
    numpy.testing.assert_array_equal(b.model.W.array, a.model.W.array)


def test_save_writes_soft_hard_and_logits(tmp_path):
    updater, _, noisy, _ = setting((0, 1, 1))
    perturb_labels(updater)
    path = str(tmp_path / 'labels.npz')
    updater.save(path, noisy=noisy)
    with numpy.load(path) as saved:
        numpy.testing.assert_array_equal(saved['logits'], updater.labels.logits)
        numpy.testing.assert_allclose(saved['soft'], updater.label_distribution)
        numpy.testing.assert_array_equal(saved['hard'], updater.hard)
        numpy.testing.assert_array_equal(saved['noisy'], noisy)


def test_label_accuracy_report_reads_the_updaters_labels():
    updater, _, noisy, _ = setting((0, 1, 1))
    clean = noisy.copy()
    clean[:3] = (clean[:3] + 1) % C
    for report in (LabelAccuracyReport(updater.labels, noisy, clean),
                   LabelAccuracyReport(updater, noisy, clean)):
        accuracy, fixed, broken = report.measure()
        assert accuracy == pytest.approx(9 / 12) and fixed == 0 and broken == 0


def test_lr_schedule():
    schedule = pencil_lr_schedule((2, 3, 6), lr=0.06, lr3=0.2)
    expected = [0.06] * 5 + [0.2] * 2 + [0.02] * 2 + [0.002] * 2
    assert [schedule(e) for e in range(11)] == pytest.approx(expected)
    assert schedule(20) == pytest.approx(0.002)
    cifar = pencil_lr_schedule((70, 130, 120), lr=0.06, lr3=0.2)
    assert [cifar(e) for e in (0, 199, 200, 239, 240, 279, 280, 319)] == pytest.approx(
        [0.06, 0.06, 0.2, 0.2, 0.02, 0.02, 0.002, 0.002])


# Plain-Python restatements of the two stage-3 schedules. 'official' is the official code's
# adjust_learning_rate (yikun2019/PENCIL, PENCIL.py:470-481 at 8a89ed50), with its arguments:
# stage2 = the epoch stage 2 ends (s1 + s2), epochs = s1 + s2 + s3, lr2 = lr3.
def official_reference(epoch, lr, lr2, stage2, epochs):
    if epoch < stage2:
        return lr
    elif epoch < (epochs - stage2) // 3 + stage2:
        return lr2
    elif epoch < 2 * (epochs - stage2) // 3 + stage2:
        return lr2 // 10
    else:
        return lr2 // 100


def divided_reference(epoch, lr, lr3, s1, s2, s3):
    """This package's default: the same drops as true divisions, after a third and two thirds
    of stage 3 (epoch - s1 - s2 >= s3 / 3, >= 2 s3 / 3)."""
    if epoch < s1 + s2:
        return lr
    into = epoch - s1 - s2
    if into < s3 / 3:
        return lr3
    if into < 2 * s3 / 3:
        return lr3 / 10
    return lr3 / 100


#: (stages, lr, lr3): the package's CIFAR-10, digits and Clothing1M settings, a stage 3 that is
#: not a multiple of 3, a shortened one, and an lr3 large enough for floor division to leave
#: something.
SCHEDULES = [((70, 130, 120), 0.06, 0.2), ((10, 20, 20), 0.02, 0.05),
             ((5, 10, 10), 1.6e-3, 1.6e-4), ((2, 3, 7), 0.5, 0.3), ((1, 2, 2), 0.02, 0.05),
             ((0, 0, 5), 1.0, 250.0)]


@pytest.mark.parametrize('stages, lr, lr3', SCHEDULES)
def test_both_stage3_schedules_match_their_plain_python_references(stages, lr, lr3):
    s1, s2, s3 = stages
    epochs = s1 + s2 + s3
    official = pencil_lr_schedule(stages, lr, lr3, 'official')
    divided = pencil_lr_schedule(stages, lr, lr3, 'divided')
    assert pencil_lr_schedule(stages, lr, lr3)(epochs - 1) == divided(epochs - 1)   # the default
    for epoch in range(epochs + 3):
        assert official(epoch) == official_reference(epoch, lr, lr3, s1 + s2, epochs), epoch
        assert divided(epoch) == pytest.approx(divided_reference(epoch, lr, lr3, *stages)), epoch


def test_the_official_stage3_schedule_floors_the_packages_rates_to_zero():
    """``lr2 // 10`` and ``lr2 // 100`` are floor divisions: every lr3 of the package (below 10)
    gives lr3 for the first third of stage 3 (s3 // 3 epochs), then 0.0 to the end."""
    for stages, lr, lr3 in SCHEDULES[:3]:
        s1, s2, s3 = stages
        start, epochs = s1 + s2, s1 + s2 + s3
        schedule = pencil_lr_schedule(stages, lr, lr3, 'official')
        assert [schedule(e) for e in range(start, epochs)] == \
            [lr3] * (s3 // 3) + [0.0] * (s3 - s3 // 3)
    cifar = pencil_lr_schedule((70, 130, 120), 0.06, 0.2, 'official')
    assert [cifar(e) for e in (199, 200, 239, 240, 279, 280, 319)] == \
        [0.06, 0.2, 0.2, 0.0, 0.0, 0.0, 0.0]
    assert pencil_lr_schedule((0, 0, 3), 1, 250.0, 'official')(2) == 2.0      # 250 // 100
    with pytest.raises(ValueError, match="stage3_decay must be one of divided, official, got "
                                         "'floor'"):
        pencil_lr_schedule((1, 1, 1), 0.1, 0.1, 'floor')


def test_stage3_decay_reaches_the_run_settings_and_a_bad_value_is_refused_in_one_line(
        tmp_path, capsys):
    from reproduce import experiment
    from reproduce.run import hparams
    from updaters.pencil import STAGE3_DECAYS
    assert hparams.WORDS['stage3_decay'] == STAGE3_DECAYS
    for name in ('PENCIL_CIFAR10', 'PENCIL_DIGITS', 'PENCIL_CLOTHING1M'):
        assert getattr(hparams, name)['stage3_decay'] == 'divided'         # the default
    config, _, _ = experiment.parse(['--dataset', 'digits', '--out', 'x', '--set',
                                     'pencil.stage3_decay=official'])
    assert config.settings()['pencil']['stage3_decay'] == 'official'
    assert config.identity()['pencil'] == {'stage3_decay': 'official'}
    from reproduce.run import config as config_lib, rundir
    rundir.claim(str(tmp_path / 'from-file'), config.identity(), {}, config.launch())
    assert config_lib.from_file(str(tmp_path / 'from-file' / rundir.CONFIG)) == config
    assert experiment.RunConfig(dataset='digits').settings()['pencil']['stage3_decay'] == \
        'divided'
    out = str(tmp_path / 'run')
    with pytest.raises(SystemExit) as exit_info:
        experiment.main(['--dataset', 'digits', '--out', out, '--set',
                         'pencil.stage3_decay=floor'])
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].endswith(
        "--set pencil.stage3_decay must be one of divided, official, got 'floor'"), err
    assert not (tmp_path / 'run').exists()


def test_a_pencil_run_trains_with_the_official_stage3_schedule(tmp_path):
    """``--set pencil.stage3_decay=official`` reaches the learning rate the run trains with."""
    import json
    from reproduce import experiment
    out = str(tmp_path / 'run')
    assert experiment.main(['--dataset', 'digits', '--methods', 'pencil', '--epochs-scale',
                            '0.2', '--iterations-per-epoch', '1', '--device', '@numpy',
                            '--quiet', '--out', out, '--set',
                            'pencil.stage3_decay=official']) in (0, None)
    with open(str(tmp_path / 'run' / 'pencil' / 'log.json')) as f:
        used = [entry['lr'] for entry in json.load(f)]
    # digits stages x0.2: 2 / 4 / 4; the official stage 3: 0.05 for 4 // 3 = 1 epoch, then 0.0
    assert used == pytest.approx([0.02] * 6 + [0.05] + [0.0] * 3)


def test_learning_rate_extension_sets_the_optimizer_lr_each_epoch(tmp_path):
    stages = (1, 1, 3)
    updater, _, _, _ = setting(stages, batch=6)
    schedule = pencil_lr_schedule(stages, lr=0.5, lr3=0.3)
    used = []
    forward = updater.model.forward
    updater.model.forward = lambda h: used.append(updater.get_optimizer('main').lr) or forward(h)
    trainer = training.Trainer(updater, (5, 'epoch'), out=str(tmp_path))
    trainer.extend(PencilLearningRate(schedule))
    trainer.run()
    # two iterations per epoch, each with its epoch's rate
    assert used == [schedule(e) for e in range(5) for _ in range(2)]
    assert used[::2] == pytest.approx([0.5, 0.5, 0.3, 0.03, 0.003])
    # a fresh trainer resumed at epoch 3 starts with that epoch's rate
    updater2, _, _, _ = setting(stages, batch=6)
    updater2.get_iterator('main').epoch = 3
    trainer2 = training.Trainer(updater2, (5, 'epoch'), out=str(tmp_path))
    extension = PencilLearningRate(schedule)
    extension.initialize(trainer2)
    assert updater2.get_optimizer('main').lr == pytest.approx(0.03)

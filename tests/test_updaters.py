"""One iteration of each updater against plain-numpy references of its loss and SGD step."""
import chainer
import numpy
import pytest
from numpy_reference import linear_setting, log_softmax, numeric_grad, observe

from updaters.baselines import CrossEntropyUpdater
from updaters.feed import DeviceImageFeed, IndexIterator
from updaters.counter_rng import CounterRandom, STREAM_MIXUP
from updaters.joint import JointOptimizationUpdater
from updaters.labels import LabelTable
from updaters.mixup import MixupUpdater

N, C, D = 12, 4, 6


# ---- plain numpy references (float64) ----


def joint_loss(z, y, alpha, beta):
    logp = log_softmax(z)
    p = numpy.exp(logp)
    with numpy.errstate(divide='ignore', invalid='ignore'):
        ylogy = numpy.where(y > 0, y * numpy.log(y), 0.0)
    lc = (ylogy - y * logp).sum(axis=1).mean()
    prior = numpy.full(z.shape[1], 1.0 / z.shape[1])
    lp = (prior * numpy.log(prior / p.mean(axis=0))).sum()
    le = -(p * logp).sum(axis=1).mean()
    return lc + alpha * lp + beta * le


def kl(z, y):
    with numpy.errstate(divide='ignore', invalid='ignore'):
        ylogy = numpy.where(y > 0, y * numpy.log(y), 0.0)
    return (ylogy - y * log_softmax(z)).sum(axis=1).mean()


# ---- a tiny setting: images whose pixels are the features, a linear model ----
def setting(seed=0, batch=N):
    return linear_setting(N, D, C, seed=seed, batch=batch)


def test_joint_step_matches_numpy_loss_and_gradient():
    model, optimizer, feed, iterator, x = setting()
    rs = numpy.random.RandomState(1)
    noisy = rs.randint(0, C, size=N).astype(numpy.int32)
    table = LabelTable(noisy, C, window=2, begin=1)
    # soft labels with exact zeros
    table.soft[...] = numpy.eye(C, dtype=numpy.float32)[noisy] * 0.7 + 0.3 * numpy.eye(
        C, dtype=numpy.float32)[(noisy + 1) % C]
    y = table.soft.astype(numpy.float64).copy()
    W0, b0 = model.W.array.astype(numpy.float64), model.b.array.astype(numpy.float64)
    alpha, beta = 1.2, 0.8
    updater = JointOptimizationUpdater(iterator, optimizer, feed, table, alpha, beta)
    values = observe(updater)

    expected = joint_loss(x @ W0.T + b0, y, alpha, beta)
    assert values['main/loss'] == pytest.approx(expected, rel=1e-5)
    grad_W = numeric_grad(lambda W: joint_loss(x @ W.T + b0, y, alpha, beta), W0)
    grad_b = numeric_grad(lambda b: joint_loss(x @ W0.T + b, y, alpha, beta), b0)
    numpy.testing.assert_allclose(model.W.array, W0 - 0.1 * grad_W, rtol=1e-4, atol=1e-6)
    numpy.testing.assert_allclose(model.b.array, b0 - 0.1 * grad_b, rtol=1e-4, atol=1e-6)
    # the whole set was one batch: the epoch closed and (begin=1) Y became this epoch's softmax
    probs = numpy.exp(log_softmax(x @ W0.T + b0))
    numpy.testing.assert_allclose(table.soft, probs, rtol=1e-5, atol=1e-6)
    assert table.epoch == 1


def test_joint_hard_label_kind_trains_on_one_hot_argmax():
    model, optimizer, feed, iterator, x = setting()
    noisy = numpy.arange(N, dtype=numpy.int32) % C
    table = LabelTable(noisy, C, window=1, begin=5)
    table.soft[...] = numpy.full((N, C), 0.1, dtype=numpy.float32)
    table.soft[numpy.arange(N), (noisy + 2) % C] = 0.7
    W0, b0 = model.W.array.astype(numpy.float64), model.b.array.astype(numpy.float64)
    updater = JointOptimizationUpdater(iterator, optimizer, feed, table, 0.5, 0.5,
                                       label_kind='hard')
    values = observe(updater)
    one_hot = numpy.eye(C)[(noisy + 2) % C]
    assert values['main/loss'] == pytest.approx(joint_loss(x @ W0.T + b0, one_hot, 0.5, 0.5),
                                                rel=1e-5)
    with pytest.raises(ValueError):
        JointOptimizationUpdater(iterator, optimizer, feed, table, 0.5, 0.5, label_kind='x')


@pytest.mark.parametrize('lc_on', ['clean', 'mixed'])
def test_mixup_step_matches_numpy(lc_on):
    model, optimizer, feed, iterator, x = setting(batch=8)
    rs = numpy.random.RandomState(2)
    targets = rs.dirichlet(numpy.ones(C), size=N).astype(numpy.float32)
    W0, b0 = model.W.array.astype(numpy.float64), model.b.array.astype(numpy.float64)
    updater = MixupUpdater(iterator, optimizer, feed, targets, mixup_alpha=2.0, mixup_weight=0.7,
                           lc_on=lc_on, seed=5)
    values = observe(updater)
    # the same draws, taken independently of the updater
    rng = CounterRandom(numpy, 5, STREAM_MIXUP, 0)
    lam = rng.host_beta(2.0, 2.0)
    partner = rng.small_permutation(8)
    xb, yb = x[:8], targets[:8].astype(numpy.float64)
    x_mix = lam * xb + (1 - lam) * xb[partner]

    def loss(W, b):
        logp = log_softmax(x_mix @ W.T + b)
        lmix = -(lam * (yb * logp).sum(1) + (1 - lam) * (yb[partner] * logp).sum(1)).mean()
        lc = kl((xb if lc_on == 'clean' else x_mix) @ W.T + b, yb)
        return lc + 0.7 * lmix

    assert values['main/loss'] == pytest.approx(loss(W0, b0), rel=1e-5)
    grad_W = numeric_grad(lambda W: loss(W, b0), W0)
    numpy.testing.assert_allclose(model.W.array, W0 - 0.1 * grad_W, rtol=1e-4, atol=1e-6)


def test_mixup_weight_zero_is_tanakas_second_step():
    model, optimizer, feed, iterator, x = setting(batch=8)
    targets = numpy.eye(C, dtype=numpy.float32)[numpy.arange(N) % C]
    calls = []
    forward = model.forward
    model.forward = lambda h: calls.append(len(h)) or forward(h)
    W0, b0 = model.W.array.astype(numpy.float64), model.b.array.astype(numpy.float64)
    updater = MixupUpdater(iterator, optimizer, feed, targets, mixup_alpha=1.0, mixup_weight=0)
    values = observe(updater)
    assert calls == [8]  # one forward pass, no mixed batch
    assert values['main/loss'] == pytest.approx(kl(x[:8] @ W0.T + b0, targets[:8]), rel=1e-5)


def test_mixup_rejects_bad_arguments():
    model, optimizer, feed, iterator, _ = setting()
    targets = numpy.zeros((N, C), dtype=numpy.float32)
    with pytest.raises(ValueError):
        MixupUpdater(iterator, optimizer, feed, targets, 1.0, 1.0, lc_on='both')
    with pytest.raises(ValueError):
        MixupUpdater(iterator, optimizer, feed, targets, 0.0, 1.0)


def test_cross_entropy_step_matches_numpy():
    model, optimizer, feed, iterator, x = setting()
    labels = numpy.random.RandomState(3).randint(0, C, size=N).astype(numpy.int32)
    W0, b0 = model.W.array.astype(numpy.float64), model.b.array.astype(numpy.float64)
    updater = CrossEntropyUpdater(iterator, optimizer, feed, labels)
    values = observe(updater)
    one_hot = numpy.eye(C)[labels]
    assert values['main/loss'] == pytest.approx(kl(x @ W0.T + b0, one_hot), rel=1e-5)
    grad_b = numeric_grad(lambda b: kl(x @ W0.T + b, one_hot), b0)
    numpy.testing.assert_allclose(model.b.array, b0 - 0.1 * grad_b, rtol=1e-4, atol=1e-6)


def test_nonfinite_loss_is_recorded_on_the_device_with_its_iteration():
    model, optimizer, feed, iterator, _ = setting(batch=4)  # 3 iterations per epoch
    labels = numpy.zeros(N, dtype=numpy.int32)
    updater = CrossEntropyUpdater(iterator, optimizer, feed, labels)
    for _ in range(4):
        observe(updater)
    assert updater.first_nonfinite() is None
    model.b.array[0] = numpy.nan
    observe(updater)  # iteration 5, in epoch 2
    observe(updater)
    assert updater.first_nonfinite() == (5, 2)


# ---- Forward T ----
def forward_reference(z, labels, t):
    """-mean_i log (softmax(z_i) T)[y_i], float64."""
    p = numpy.exp(log_softmax(z))
    return -numpy.log((p @ t)[numpy.arange(len(labels)), labels]).mean()


def test_forward_loss_matches_numpy_and_is_cross_entropy_for_identity():
    from updaters.baselines import forward_loss
    rs = numpy.random.RandomState(4)
    z = rs.normal(size=(N, C)) * 3
    labels = rs.randint(0, C, size=N).astype(numpy.int32)
    t = numpy.eye(C) * 0.6 + 0.4 * numpy.eye(C)[[1, 2, 0, 3]]   # zeros off two diagonals
    loss = forward_loss(chainer.Variable(z.astype(numpy.float32)), labels, t.astype(numpy.float32))
    assert float(loss.array) == pytest.approx(forward_reference(z, labels, t), rel=1e-5)
    identity = forward_loss(z.astype(numpy.float32), labels, numpy.eye(C, dtype=numpy.float32))
    assert float(identity.array) == pytest.approx(kl(z, numpy.eye(C)[labels]), rel=1e-5)
    # saturated outputs with zeros in T stay finite, and so does the gradient
    z_big = chainer.Variable((z * 1e4).astype(numpy.float32))
    big = forward_loss(z_big, labels, t.astype(numpy.float32))
    big.backward()
    assert numpy.isfinite(big.array) and numpy.isfinite(z_big.grad).all()


def test_forward_t_step_matches_numpy():
    model, optimizer, feed, iterator, x = setting()
    labels = numpy.random.RandomState(5).randint(0, C, size=N).astype(numpy.int32)
    t = numpy.full((C, C), 0.1) + numpy.eye(C) * 0.6
    W0, b0 = model.W.array.astype(numpy.float64), model.b.array.astype(numpy.float64)
    updater = CrossEntropyUpdater(iterator, optimizer, feed, labels,
                                  transition=t.astype(numpy.float32))
    assert updater.step_name == 'forward_t'
    values = observe(updater)
    assert values['main/loss'] == pytest.approx(forward_reference(x @ W0.T + b0, labels, t),
                                                rel=1e-5)
    grad_W = numeric_grad(lambda W: forward_reference(x @ W.T + b0, labels, t), W0)
    numpy.testing.assert_allclose(model.W.array, W0 - 0.1 * grad_W, rtol=1e-4, atol=1e-6)


def test_every_updater_tells_the_optimizer_about_new_epochs():
    """As StandardUpdater does: optimizer.epoch follows the iterator's epochs."""
    from updaters.pencil import PencilUpdater
    noisy = numpy.arange(N, dtype=numpy.int32) % C

    def build(kind, optimizer, feed, iterator):
        if kind == 'joint':
            return JointOptimizationUpdater(iterator, optimizer, feed,
                                            LabelTable(noisy, C, window=1, begin=1), 0.5, 0.5)
        if kind == 'mixup':
            return MixupUpdater(iterator, optimizer, feed, numpy.eye(C, dtype=numpy.float32)[noisy],
                                mixup_alpha=1.0, mixup_weight=1.0)
        if kind == 'pencil':
            return PencilUpdater(iterator, optimizer, feed, noisy, C, (1, 1, 1), alpha=0.4,
                                 beta=0.1, label_lr=600.0, k=10.0)
        return CrossEntropyUpdater(iterator, optimizer, feed, noisy)

    for kind in ('joint', 'mixup', 'pencil', 'cross_entropy'):
        model, optimizer, feed, iterator, _ = setting(batch=5)    # 3 iterations per epoch
        updater = build(kind, optimizer, feed, iterator)
        epochs = []
        for _ in range(7):
            updater.update()
            epochs.append((updater.epoch, optimizer.epoch))
        assert epochs == [(0, 0), (0, 0), (1, 1), (1, 1), (1, 1), (2, 2), (2, 2)], kind


def test_step2_in_one_pass_is_the_two_passes():
    """The mixed and the clean batch through a PreAct ResNet as one batch (batch statistics per
    half): the losses, the updated parameters and the BN running averages of two passes."""
    from models import PreActResNet
    rs = numpy.random.RandomState(0)
    images = rs.randint(0, 256, size=(16, 1, 8, 8)).astype(numpy.uint8)
    targets = rs.dirichlet(numpy.ones(C), size=16).astype(numpy.float32)
    runs = []
    for single_pass in (True, False):
        numpy.random.seed(1)
        model = PreActResNet(1, (4, 8), C, in_channels=1)
        optimizer = chainer.optimizers.MomentumSGD(lr=0.1)
        optimizer.setup(model)
        feed = DeviceImageFeed(images, lambda x, rng: x.astype(numpy.float32) / 255, seed=0)
        updater = MixupUpdater(IndexIterator(16, 8, seed=3), optimizer, feed, targets,
                               mixup_alpha=1.0, mixup_weight=1.0, seed=4,
                               single_pass=single_pass)
        values = [observe(updater) for _ in range(3)]
        runs.append((values, {n: p.array.copy() for n, p in model.namedparams()},
                     model.blocks[0].bn1.avg_mean.copy(), model.bn.avg_var.copy()))
    (v1, p1, m1, s1), (v2, p2, m2, s2) = runs
    for a, b in zip(v1, v2):
        assert a.keys() == b.keys() == {'main/loss', 'main/loss_c', 'main/loss_mix'}
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-5)
    for name in p1:
        numpy.testing.assert_allclose(p1[name], p2[name], rtol=1e-4, atol=1e-6, err_msg=name)
    numpy.testing.assert_allclose(m1, m2, rtol=1e-5, atol=1e-7)
    numpy.testing.assert_allclose(s1, s2, rtol=1e-5, atol=1e-7)

"""FusedMomentumSGD against Chainer's MomentumSGD + WeightDecay on numpy: 20 steps, snapshots in
both directions, the fallback, and the count of update operations."""
import chainer
import numpy
import pytest

from models import PreActResNet
from updaters.fused_sgd import FusedMomentumSGD

LR, MOMENTUM, DECAY = 0.05, 0.9, 1e-3


def network(seed=0):
    numpy.random.seed(seed)
    model = PreActResNet(1, (4, 8), 3, in_channels=1)
    model(numpy.zeros((2, 1, 8, 8), numpy.float32))       # every parameter initialised
    return model


def chainer_sgd(model):
    optimizer = chainer.optimizers.MomentumSGD(lr=LR, momentum=MOMENTUM)
    optimizer.setup(model)
    optimizer.add_hook(chainer.optimizer_hooks.WeightDecay(DECAY))
    return optimizer


def fused_sgd(model):
    return FusedMomentumSGD(lr=LR, momentum=MOMENTUM, weight_decay=DECAY).setup(model)


def step(model, optimizer, seed):
    rs = numpy.random.RandomState(seed)
    x = rs.normal(size=(6, 1, 8, 8)).astype(numpy.float32)
    t = rs.randint(0, 3, size=6).astype(numpy.int32)
    loss = chainer.functions.softmax_cross_entropy(model(x), t)
    model.cleargrads()
    loss.backward()
    optimizer.update()


def params(model):
    return {name: p.array.copy() for name, p in sorted(model.namedparams())}


def test_twenty_steps_equal_chainers_momentum_sgd_with_weight_decay():
    reference, fused = network(), network()
    ref_opt, fused_opt = chainer_sgd(reference), fused_sgd(fused)
    for k in range(20):
        if k == 10:          # an ExponentialShift-like change of the rate takes effect
            ref_opt.lr = fused_opt.lr = LR / 10
        step(reference, ref_opt, k)
        step(fused, fused_opt, k)
    want, got = params(reference), params(fused)
    assert want.keys() == got.keys()
    for name in want:
        numpy.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-7, err_msg=name)
    assert fused_opt.t == ref_opt.t == 20
    assert fused_opt.operations == 2 * 20               # concatenation + update, per iteration


def test_parameters_are_views_of_one_buffer():
    model = network()
    optimizer = fused_sgd(model)
    for _, param in model.namedparams():
        assert param.array.base is optimizer._data
        assert param.update_rule.state['v'].base is optimizer._velocity


@pytest.mark.parametrize('save_with, load_with', [(fused_sgd, chainer_sgd),
                                                  (chainer_sgd, fused_sgd)])
def test_a_snapshot_of_either_optimizer_resumes_the_other(tmp_path, save_with, load_with):
    model = network()
    optimizer = save_with(model)
    for k in range(3):
        step(model, optimizer, k)
    path = str(tmp_path / 'snapshot.npz')
    chainer.serializers.save_npz(path, model)
    chainer.serializers.save_npz(str(tmp_path / 'optimizer.npz'), optimizer)
    resumed = network(seed=1)
    resumed_opt = load_with(resumed)
    chainer.serializers.load_npz(path, resumed)
    chainer.serializers.load_npz(str(tmp_path / 'optimizer.npz'), resumed_opt)
    assert resumed_opt.t == 3
    for k in range(3, 6):
        step(model, optimizer, k)
        step(resumed, resumed_opt, k)
    want, got = params(model), params(resumed)
    for name in want:
        numpy.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-7, err_msg=name)


def test_a_parameter_without_gradient_is_updated_as_chainer_does():
    reference, fused = network(), network()
    ref_opt, fused_opt = chainer_sgd(reference), fused_sgd(fused)
    for model, optimizer in ((reference, ref_opt), (fused, fused_opt)):
        step(model, optimizer, 0)
        model.cleargrads()
        loss = chainer.functions.sum(model.fc(numpy.ones((2, 8), numpy.float32)))
        loss.backward()                                 # only fc gets gradients
        optimizer.update()
    want, got = params(reference), params(fused)
    for name in want:
        numpy.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-7, err_msg=name)
    assert fused_opt.operations == 2 + 2


def test_hooks_or_replaced_parameters_take_chainers_per_parameter_path():
    reference, fused = network(), network()
    ref_opt, fused_opt = chainer_sgd(reference), fused_sgd(fused)
    for optimizer in (ref_opt, fused_opt):
        optimizer.add_hook(chainer.optimizer_hooks.GradientClipping(0.01))
    for k in range(3):
        step(reference, ref_opt, k)
        step(fused, fused_opt, k)
    want, got = params(reference), params(fused)
    for name in want:
        numpy.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-7, err_msg=name)
    assert fused_opt.operations == 3 * 2 * len(want)

import os

import chainer_compat  # noqa: F401  (must precede the first chainer import)
import chainer
import chainer.functions as F
import numpy as np

from models import PreActResNet, preact_resnet32


def expected_param_count(n_blocks, widths, n_classes, in_channels):
    """Parameters of PreActResNet counted by hand: conv weights, BN gamma+beta, linear W+b."""
    def block(cin, cout, projection):
        bn = 2 * cin + 2 * cout
        convs = 9 * cin * cout + 9 * cout * cout
        return bn + convs + (cin * cout if projection else 0)

    total = 9 * in_channels * widths[0]                      # stem conv
    previous = widths[0]
    for width in widths:
        total += block(previous, width, True)                 # first block: projection
        total += (n_blocks - 1) * block(width, width, False)  # identity blocks
        previous = width
    total += 2 * widths[-1]                                   # final BN
    total += widths[-1] * n_classes + n_classes               # linear with bias
    return total


def n_params(model):
    return sum(p.size for p in model.params())


def test_param_count_matches_the_formula_and_the_known_total():
    model = preact_resnet32(10)
    assert expected_param_count(5, (32, 64, 128), 10, 3) == 1861162
    assert n_params(model) == 1861162
    tiny = PreActResNet(2, (4, 8), 3, in_channels=1)
    assert n_params(tiny) == expected_param_count(2, (4, 8), 3, 1)


def test_structure_projections_strides_and_init():
    model = preact_resnet32(10)
    blocks = list(model.blocks)
    assert len(blocks) == 15
    firsts = [blocks[i] for i in (0, 5, 10)]
    assert all(b.projection for b in firsts)
    assert not any(b.projection for i, b in enumerate(blocks) if i not in (0, 5, 10))
    assert [b.conv1.stride for b in firsts] == [(1, 1), (2, 2), (2, 2)]
    assert [b.shortcut.stride for b in firsts] == [(1, 1), (2, 2), (2, 2)]
    convs = [link for link in model.links() if isinstance(link, chainer.links.Convolution2D)]
    assert all(c.b is None for c in convs)
    # He-normal: std sqrt(2 / fan_in); check on the biggest conv.
    w = model.blocks[14].conv2.W.array
    assert abs(w.std() - np.sqrt(2.0 / (128 * 9))) < 0.05 * np.sqrt(2.0 / (128 * 9))
    assert model.fc.b is not None


def test_full_net_output_shape():
    model = preact_resnet32(10)
    x = np.random.RandomState(0).randn(2, 3, 32, 32).astype(np.float32)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        y = model(x)
    assert y.shape == (2, 10)
    assert y.dtype == np.float32
    assert np.all(np.isfinite(y.array))


def test_tiny_net_learns_a_fixed_batch():
    np.random.seed(0)
    model = PreActResNet(1, (4, 8, 16), 10, in_channels=1)
    rng = np.random.RandomState(1)
    x = rng.randn(16, 1, 8, 8).astype(np.float32)
    t = rng.randint(0, 10, size=16).astype(np.int32)
    opt = chainer.optimizers.MomentumSGD(lr=0.05, momentum=0.9)
    opt.setup(model)
    losses = []
    for _ in range(40):
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        assert all(p.grad is not None and np.all(np.isfinite(p.grad)) for p in model.params())
        opt.update()
        losses.append(float(loss.array))
    assert losses[-1] < 0.3 * losses[0], losses


def test_train_and_test_mode_batch_norm_differ():
    np.random.seed(0)
    model = PreActResNet(1, (4, 8, 16), 10, in_channels=1)
    x = (3 + 2 * np.random.RandomState(2).randn(8, 1, 8, 8)).astype(np.float32)
    mean_before = model.bn.avg_mean.copy()
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        y_test = model(x).array
    np.testing.assert_array_equal(model.bn.avg_mean, mean_before)   # test mode: stats frozen
    with chainer.no_backprop_mode():
        y_train = model(x).array
    assert not np.allclose(model.bn.avg_mean, mean_before)           # train mode: stats move
    assert not np.allclose(y_train, y_test, atol=1e-3)


def test_the_cifar10_runs_build_the_tested_network():
    """What a CIFAR-10 run builds is preact_resnet32 itself, with the parameter count above."""
    import types
    from unittest import mock

    import models
    from reproduce.run import training
    from reproduce.run.config import RunConfig
    config = RunConfig(dataset='cifar10', rate=0.5)
    data = types.SimpleNamespace(n_classes=10, train_x=np.zeros((1, 3, 32, 32), np.uint8))
    with mock.patch.object(models, 'preact_resnet32', wraps=models.preact_resnet32) as built:
        model = training.build_model(config, data, config.settings())
    built.assert_called_once_with(n_classes=10, in_channels=3)
    assert n_params(model) == 1861162


def _reference_forward(model, x):
    """The same network computed with Chainer's own convolution, mean and linear functions."""
    def conv(link, h):
        return F.convolution_2d(h, link.W, link.b, link.stride, link.pad)

    h = conv(model.conv, x)
    for block in model.blocks:
        a = F.relu(block.bn1(h))
        skip = conv(block.shortcut, a) if block.projection else h
        a = conv(block.conv1, a)
        h = conv(block.conv2, F.relu(block.bn2(a))) + skip
    h = F.mean(F.relu(model.bn(h)), axis=(2, 3))
    return model.fc(h)


def test_contiguous_convolutions_and_the_fused_head_compute_chainers_numbers():
    """Forward, every parameter gradient and the BN running averages are Chainer's own, up to
    summation order (batch normalisation sums a contiguous copy instead of a strided view)."""
    import copy
    np.random.seed(0)
    model = PreActResNet(2, (4, 8), 5, in_channels=3)
    x = np.random.RandomState(1).normal(size=(6, 3, 8, 8)).astype(np.float32)
    t = np.random.RandomState(2).randint(0, 5, size=6).astype(np.int32)
    reference = copy.deepcopy(model)
    for net, forward in ((model, model.forward), (reference, lambda h: _reference_forward(
            reference, h))):
        net.cleargrads()
        F.softmax_cross_entropy(forward(x), t).backward()
    np.testing.assert_allclose(model(x).array, _reference_forward(reference, x).array,
                               rtol=1e-5, atol=1e-6)
    for (name, p), (_, q) in zip(sorted(model.namedparams()), sorted(reference.namedparams())):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(model.bn.avg_mean, reference.bn.avg_mean, rtol=1e-5, atol=1e-7)


def test_batch_normalisation_receives_c_contiguous_inputs():
    """What every batch normalisation gets is C-contiguous (Chainer's im2col convolution returns
    a transposed view; batch normalisation copies its incoming gradient itself)."""
    from chainer import function_hook

    class Layouts(function_hook.FunctionHook):
        name = 'layouts'

        def __init__(self):
            self.seen = []

        def forward_preprocess(self, function, in_data):
            if function.label == 'BatchNormalization':
                self.seen.append(in_data[0].flags.c_contiguous)

    model = PreActResNet(2, (4, 8), 5, in_channels=3)
    x = np.random.RandomState(1).normal(size=(6, 3, 8, 8)).astype(np.float32)
    hook = Layouts()
    with hook:
        F.sum(model(x)).backward()
    assert len(hook.seen) == 1 + 2 * 4                 # final BN + 2 per block
    assert all(hook.seen), hook.seen
    plain = F.convolution_2d(x, model.conv.W, pad=1)
    assert not plain.array.flags.c_contiguous          # what the layer avoids


def test_pool_linear_is_mean_then_linear_to_the_bit():
    from models.preact_resnet import pool_linear
    rs = np.random.RandomState(3)
    h = rs.normal(size=(4, 6, 5, 5)).astype(np.float32)
    W = rs.normal(size=(3, 6)).astype(np.float32)
    b = rs.normal(size=(3,)).astype(np.float32)
    gy = rs.normal(size=(4, 3)).astype(np.float32)
    outputs = []
    for f in (lambda h, W, b: pool_linear(h, W, b),
              lambda h, W, b: F.linear(F.mean(h, axis=(2, 3)), W, b)):
        hv, Wv, bv = chainer.Variable(h), chainer.Variable(W), chainer.Variable(b)
        y = f(hv, Wv, bv)
        y.grad = gy
        y.backward()
        outputs.append((y.array, hv.grad, Wv.grad, bv.grad))
    for got, want in zip(*outputs):
        np.testing.assert_array_equal(got, want)


def test_the_gpu_check_estimate_starts_from_the_networks_counts():
    """reproduce/README.md's GPU-check estimate starts from this count: the convolutions of
    PreAct ResNet-32 on one 32x32 image, 2 x in x out x k x k x output pixels each."""
    model = preact_resnet32(n_classes=10, in_channels=3)
    x = np.zeros((1, 3, 32, 32), np.float32)
    flops = []

    class Count(chainer.FunctionHook):
        name = 'count'

        def forward_preprocess(self, function, in_data):
            if function.label == 'Convolution2DFunction':
                h, W = in_data[0], in_data[1]
                out, inp, kh, kw = W.shape
                side = (h.shape[2] + 2 * function.ph - kh) // function.sy + 1
                flops.append(2 * inp * out * kh * kw * side * side)

    with chainer.using_config('train', False), Count():
        model(x)
    assert len(flops) == 34 and round(sum(flops) / 1e9, 2) == 0.55
    readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               'reproduce', 'README.md')).read()
    words = ' '.join(readme.split())
    assert 'convolutions are 0.55 GFLOP per image forward' in words
    # ... and the host's share from the recorded CPU benchmark's count of Chainer functions
    import json
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           'results', 'benchmarks', 'cpu_x86_64_2cores_resnet32.json')) as f:
        parts = json.load(f)['parts']
    applied = [parts[p]['operations']['function_applications'] for p in ('step1', 'step2')]
    assert 'applies {} Chainer functions in step 1 and {} in step 2'.format(*applied) in words
    assert '2 x {} parameter-update kernels'.format(len(list(model.params()))) in words


def test_on_a_gpu_every_node_is_chainers_own(monkeypatch):
    """Where ``chainers_own`` holds (a GPU), the convolutions are Chainer's own node and the head
    is F.mean + F.linear, with the same numbers as this package's CPU nodes."""
    from chainer import function_hook
    from models import preact_resnet

    class Kinds(function_hook.FunctionHook):
        name = 'kinds'

        def __init__(self):
            self.seen = set()

        def forward_preprocess(self, function, in_data):
            self.seen.add(type(function).__name__)

    np.random.seed(0)
    model = PreActResNet(1, (4, 8), 5, in_channels=3)
    x = np.random.RandomState(1).normal(size=(4, 3, 8, 8)).astype(np.float32)
    ours, theirs = Kinds(), Kinds()
    with ours:
        y_ours = model(x).array
    monkeypatch.setattr(preact_resnet, 'chainers_own', lambda link: True)
    with theirs:
        y_theirs = model(x).array
    assert {'_ContiguousConvolution2D', 'PoolLinear'} <= ours.seen
    assert not {'_ContiguousConvolution2D', 'PoolLinear'} & theirs.seen
    assert {'Convolution2DFunction', 'Mean', 'LinearFunction'} <= theirs.seen
    np.testing.assert_allclose(y_theirs, y_ours, rtol=1e-5, atol=1e-6)

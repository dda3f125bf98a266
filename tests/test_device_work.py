"""Device work counted on the CPU (reproduce.tools.device_work.count_array_operations): the
counter against hand counts, and the batch-normalisation choice it supports: the default path
(Chainer's own batch normalisation, cuDNN on a GPU) asks no more of the device than a plain
Chainer network does, and less than the fused node."""
import copy

import chainer
import chainer.functions as F
import chainer.links as L
import numpy
import pytest

from models import PreActResNet, preact_resnet32
from reproduce.tools import benchmark, device_work
from updaters.fused_sgd import FusedMomentumSGD


class _Holder(object):
    def __init__(self, **arrays):
        self.__dict__.update(arrays)


def _count(update, *roots):
    return device_work.count_array_operations(update, *roots)


def test_operations_views_and_reads_are_counted_as_a_gpu_would_run_them():
    holder = _Holder(a=numpy.arange(12, dtype=numpy.float32).reshape(3, 4),
                     b=numpy.ones((3, 4), numpy.float32), index=numpy.array([2, 0]))

    def work():
        h = holder
        c = h.a * h.b + 1.0                     # 2 elementwise
        c.sum(axis=0)                           # 1 reduction
        h.a.reshape(4, 3).T[1:]                 # views: nothing
        h.a[h.index]                            # 1 gather
        h.b += c                                # 1, in place
        h.a.astype(numpy.float32, copy=False)   # same dtype, no copy: nothing
        h.a.astype(numpy.float64)               # 1 copy
        numpy.zeros(5, numpy.float32)           # 1 (a memset)
        numpy.empty(5, numpy.float32)           # allocation only
        numpy.concatenate([h.a, h.b])           # 1
        float(h.a[0, 0])                        # one element read on the host
    b_before = holder.b
    counts = _count(work, holder)
    assert counts['array_operations'] == {'ours': 8, 'chainer': 0}
    assert counts['host_reads'] == 1 and counts['library_calls'] == 0
    assert holder.b is not b_before and isinstance(holder.b, device_work.CountingArray)
    numpy.testing.assert_array_equal(holder.b.view(numpy.ndarray),
                                     1 + numpy.arange(12).reshape(3, 4) + 1)


def test_library_calls_hide_their_work_and_chainers_own_operations_are_told_apart():
    rs = numpy.random.RandomState(0)
    conv = L.Convolution2D(2, 3, 3, pad=1, nobias=True)
    holder = _Holder(x=rs.normal(size=(2, 2, 5, 5)).astype(numpy.float32))

    def work():
        y = F.relu(conv(chainer.Variable(holder.x)))   # library calls: conv, ReLU
        loss = F.sum(y * 2.0)                   # Chainer's operations
        loss.backward()                         # conv's two gradients, ReLU's gradient
    counts = _count(work, holder, conv)
    assert counts['library_calls_by_function'] == {
        'Convolution2DFunction': 1, 'ReLU': 1, 'ReLUGrad2': 1, 'Deconvolution2DFunction': 1,
        'Convolution2DGradW': 1}
    assert counts['array_operations']['chainer'] > 0
    assert counts['array_operations']['ours'] == 0
    assert counts['device_calls'] == 5 + counts['array_operations']['chainer']


def test_a_step1_iteration_of_the_papers_network_uses_chainers_batch_normalisation():
    """Each of PreAct ResNet-32's 31 batch normalisations is Chainer's own function."""
    from reproduce.run import data as data_sets
    from reproduce.run.config import RunConfig
    config = RunConfig(dataset='cifar10', rate=0.5, device='@numpy', progress=False,
                       overrides={'step1': {'batch_size': 8}})
    data = benchmark.random_image_data(16, 8, 8)
    part = benchmark.TimedPart('step1', config, config.settings(), data,
                               data_sets.noisy_labels(config, data), chainer.get_device('@numpy'))
    counted = device_work.count_iteration(lambda: part.iterate(1),
                                          part.updater.get_optimizer('main'))
    assert counted['by_function']['BatchNormalization'] == 31
    assert counted['by_function']['BatchNormalizationGrad'] == 31
    assert 'BatchNormReLU' not in counted['by_function']


def _plain_forward(model, x):
    """The network with Chainer's own functions only (no contiguous copies, no fused head)."""
    def conv(link, h):
        return F.convolution_2d(h, link.W, None, link.stride, link.pad)
    h = conv(model.conv, x)
    for block in model.blocks:
        a = F.relu(block.bn1(h))
        skip = conv(block.shortcut, a) if block.projection else h
        h = conv(block.conv2, F.relu(block.bn2(conv(block.conv1, a)))) + skip
    return model.fc(F.mean(F.relu(model.bn(h)), axis=(2, 3)))


def _device_calls(model, optimizer, forward, x, t):
    holder = _Holder(x=x, t=t)

    def step():
        loss = F.softmax_cross_entropy(forward(holder.x), holder.t)
        model.cleargrads()
        loss.backward()
        optimizer.update()
    step()                                   # first-step allocations out of the count
    return _count(step, holder, model, optimizer)['device_calls']


@pytest.mark.parametrize('two_halves', [False, True], ids=['one batch', 'step 2 halves'])
def test_the_default_path_asks_no_more_of_the_device_than_plain_chainer(two_halves):
    """One training step of PreAct ResNet-32: the package's default network (Chainer's batch
    normalisation, split per half in step 2) and fused optimizer against Chainer's own network
    (two passes for two halves) and optimizer; the fused batch normalisation costs more."""
    rs = numpy.random.RandomState(0)
    batch = 4                   # the counts depend on the code, not on the batch
    x = rs.normal(size=(batch, 3, 32, 32)).astype(numpy.float32)
    t = rs.randint(0, 10, size=batch).astype(numpy.int32)
    numpy.random.seed(0)
    template = preact_resnet32()
    calls = {}
    for path in ('default', 'fused', 'plain'):
        model = copy.deepcopy(template)
        if path == 'fused':
            model = preact_resnet32(batch_norm='fused')
            model.copyparams(template)
        if path == 'plain':
            optimizer = chainer.optimizers.MomentumSGD(lr=0.1, momentum=0.9)
            optimizer.setup(model)
            optimizer.add_hook(chainer.optimizer_hooks.WeightDecay(1e-4))
            half = batch // 2
            forward = ((lambda h: F.concat([_plain_forward(model, h[:half]),
                                            _plain_forward(model, h[half:])], axis=0))
                       if two_halves else (lambda h: _plain_forward(model, h)))
        else:
            optimizer = FusedMomentumSGD(lr=0.1, momentum=0.9, weight_decay=1e-4).setup(model)
            forward = ((lambda h, m=model: m(h, groups=2)) if two_halves else model)
        calls[path] = _device_calls(model, optimizer, forward, x, t)
    assert calls['default'] <= calls['plain'], calls
    assert calls['default'] < calls['fused'], calls


def test_the_split_halves_compute_what_two_passes_compute():
    """Step 2's per-half statistics through F.split_axis / F.concat: outputs, gradients and
    running averages of two separate passes (the mixed half first)."""
    numpy.random.seed(1)
    model = PreActResNet(1, (4, 8), 5)
    reference = copy.deepcopy(model)
    rs = numpy.random.RandomState(2)
    x = rs.normal(size=(6, 3, 8, 8)).astype(numpy.float32)
    x[3:] = x[3:] * 0.5 - 1
    gy = rs.normal(size=(6, 5)).astype(numpy.float32)
    y = model(x, groups=2)
    y.grad = gy
    y.backward()
    halves = [reference(x[:3]), reference(x[3:])]
    both = F.concat(halves, axis=0)
    both.grad = gy
    both.backward()
    # equal up to float32 rounding: a matrix product over 6 rows and over 3 rows may sum in
    # another order (OpenBLAS's kernels for AVX-512 and for SSE3 do, Haswell's not)
    numpy.testing.assert_allclose(y.array, both.array, rtol=1e-6, atol=1e-7)
    for (name, p), (_, q) in zip(sorted(model.namedparams()), sorted(reference.namedparams())):
        numpy.testing.assert_allclose(p.grad, q.grad, rtol=1e-6, atol=1e-7, err_msg=name)
    # the running averages too (updated in the other order, they would differ by about a tenth
    # of the halves' difference, far above the rounding)
    numpy.testing.assert_allclose(model.bn.avg_mean, reference.bn.avg_mean, rtol=1e-6, atol=1e-7)
    numpy.testing.assert_allclose(model.bn.avg_var, reference.bn.avg_var, rtol=1e-6, atol=1e-7)

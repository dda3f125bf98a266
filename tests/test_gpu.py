"""The same computations on numpy and on cupy (a GPU) must agree.

Every check is a helper ``_check_*(a, b)`` that takes two :class:`Backend` objects, builds the same
inputs on both (host arrays copied to each backend's device), runs the code under test on each and
compares the results on the host. Each test gets the pair (numpy, cupy) through the ``backends``
fixture, marked ``gpu``: it is skipped, with the reason, when CuPy is not installed or no CUDA
device can be used, and fails where CuPy and a GPU are present but Chainer cannot use CuPy (a
broken installation, not a missing GPU). (A numpy-vs-numpy half used to run everywhere; it
compared a computation with itself, so it could not fail, and is gone. What these tests check on
the CPU is checked against numpy references in the other test modules; the GPU acceptance check,
``make gpu-check``, runs this module first.)

All data are float32 (labels int32, images uint8). Tolerances are stated in each docstring; integer
results (random draws, indices, hard labels, counts) must be identical.
"""
import math
import os

import chainer
import chainer.links as L

import numpy
import pytest
from numpy_reference import observe

from datasets import augment
from models import PreActResNet
from updaters import losses
from reproduce.run.training import optimizer as momentum_sgd
from updaters.baselines import CrossEntropyUpdater
from updaters.counter_rng import (CounterRandom, STREAM_AUGMENT, STREAM_MIXUP, STREAM_ORDER,
                                  random_bits, uniform)
from updaters.extensions import LabelAccuracyReport, accuracy
from updaters.feed import DeviceImageFeed, IndexIterator
from updaters.joint import JointOptimizationUpdater
from updaters.labels import LabelTable
from updaters.mixup import MixupUpdater


# ---------------------------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------------------------
def _require_gpu():
    """Skip (with the reason) unless CuPy is importable and sees at least one CUDA device."""
    try:
        import cupy
    except Exception as e:  # ImportError, or a CuPy that fails to load its CUDA libraries
        pytest.skip('numpy-vs-cupy half skipped: CuPy is not importable ({}: {})'.format(
            type(e).__name__, e))
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver, no device, or a driver too old for this CuPy
        pytest.skip('numpy-vs-cupy half skipped: CuPy cannot query CUDA devices ({}: {})'.format(
            type(e).__name__, e))
    if count < 1:
        pytest.skip('numpy-vs-cupy half skipped: CuPy sees no CUDA device')
    from chainer.backends import cuda
    assert cuda.available, (
        'CuPy {} imports and sees {} GPU(s), but Chainer cannot use it; Chainer says: {}'.format(
            cupy.__version__, count, getattr(cuda, '_resolution_error', None)))
    return cupy


class Backend(object):
    """One side of a comparison: a Chainer device and its array module."""

    def __init__(self, name):
        if name == 'cupy':
            _require_gpu()
        self.name = name
        self.device = chainer.get_device('@numpy' if name == 'numpy' else '@cupy:0')
        self.xp = self.device.xp

    def send(self, a):
        """A fresh copy of host array ``a`` on this backend (never shared with the caller)."""
        return self.device.send(numpy.array(a, copy=True))

    def __repr__(self):
        return 'Backend({!r})'.format(self.name)


def host(a):
    """A numpy copy of an array, Variable or scalar from either backend."""
    a = getattr(a, 'array', a)
    if isinstance(a, (int, float, bool, numpy.number, numpy.bool_)):
        return numpy.asarray(a)
    return numpy.array(chainer.backend.CpuDevice().send(a), copy=True)


PAIRS = [pytest.param('cupy', id='numpy-cupy', marks=pytest.mark.gpu)]


@pytest.fixture(params=PAIRS)
def backends(request):
    """(reference backend numpy, backend under test)."""
    return Backend('numpy'), Backend(request.param)


def _assert_same_array_kind(backend, a):
    """``a`` is an array of ``backend`` (a cupy array for cupy, a numpy one for numpy)."""
    assert chainer.backend.get_array_module(a) is backend.xp, (backend, type(a))


# ---------------------------------------------------------------------------------------------
# 1. the losses
# ---------------------------------------------------------------------------------------------
N, C = 16, 10


def _loss_inputs(seed=0):
    rs = numpy.random.RandomState(seed)
    logits = (rs.normal(size=(N, C)) * 3).astype(numpy.float32)
    logits[0] = numpy.where(numpy.arange(C) == 2, 1e4, -1e4)   # a saturated row
    logits[1, :3] = [-1e4, 5e3, 0]
    y = rs.dirichlet(numpy.ones(C), size=N)
    y[rs.rand(N, C) < 0.4] = 0                                    # exact zeros in the labels
    y[numpy.arange(N), rs.randint(0, C, size=N)] += 0.5          # no all-zero row
    y = (y / y.sum(axis=1, keepdims=True)).astype(numpy.float32)
    y_b = y[rs.permutation(N)]
    uniform_prior = numpy.full(C, 1.0 / C, dtype=numpy.float32)
    skewed_prior = rs.dirichlet(numpy.ones(C)).astype(numpy.float32)
    return logits, y, y_b, uniform_prior, skewed_prior


def _value_and_grad(backend, logits, fn):
    """The loss value and d loss / d logits of ``fn(Variable(logits))`` on ``backend``."""
    z = chainer.Variable(backend.send(logits))
    loss = fn(z)
    assert loss.shape == () and loss.dtype == numpy.float32
    _assert_same_array_kind(backend, loss.array)
    loss.backward()
    return host(loss), host(z.grad)


def _check_losses(a, b):
    logits, y, y_b, uniform_prior, skewed_prior = _loss_inputs()

    def cases(be):
        lam_device = be.send(numpy.asarray(0.3))   # a 0-d array on the backend's device
        return {
            'soft_cross_entropy': lambda z: losses.soft_cross_entropy(be.send(y), z),
            'kl_loss': lambda z: losses.kl_loss(be.send(y), z),
            'prior_loss/uniform': lambda z: losses.prior_loss(z, be.send(uniform_prior)),
            'prior_loss/skewed': lambda z: losses.prior_loss(z, be.send(skewed_prior)),
            'entropy_loss': lambda z: losses.entropy_loss(z),
            'mixup_loss/float': lambda z: losses.mixup_loss(be.send(y), be.send(y_b), 0.3, z),
            'mixup_loss/numpy0d': lambda z: losses.mixup_loss(
                be.send(y), be.send(y_b), numpy.asarray(0.3), z),
            'mixup_loss/device0d': lambda z: losses.mixup_loss(
                be.send(y), be.send(y_b), lam_device, z),
            'joint': lambda z: (losses.kl_loss(be.send(y), z)
                                + 1.2 * losses.prior_loss(z, be.send(uniform_prior))
                                + 0.8 * losses.entropy_loss(z)),
        }

    cases_a, cases_b = cases(a), cases(b)
    for name in cases_a:
        value_a, grad_a = _value_and_grad(a, logits, cases_a[name])
        value_b, grad_b = _value_and_grad(b, logits, cases_b[name])
        assert numpy.isfinite(value_a) and numpy.isfinite(grad_a).all(), name
        assert numpy.isfinite(value_b) and numpy.isfinite(grad_b).all(), name
        numpy.testing.assert_allclose(value_b, value_a, rtol=1e-5, atol=1e-6, err_msg=name)
        numpy.testing.assert_allclose(grad_b, grad_a, rtol=1e-5, atol=1e-6, err_msg=name)
        assert grad_b.dtype == grad_a.dtype == numpy.float32, name


def test_losses_agree(backends):
    """kl_loss, prior_loss, entropy_loss, mixup_loss, soft_cross_entropy and the step-1 sum:
    values and gradients w.r.t. the logits agree with rtol 1e-5, atol 1e-6 (float32; random
    logits with saturated +-1e4 entries, soft labels with exact zeros, uniform and skewed priors,
    mix-up lambda as a float, a numpy 0-d array and a 0-d array on the device)."""
    _check_losses(*backends)


# ---------------------------------------------------------------------------------------------
# 2. counter-based random numbers; 3. augmentation, iterator and feed
# ---------------------------------------------------------------------------------------------
KEYS = [(0, STREAM_ORDER, 0), (1, STREAM_AUGMENT, 7), (12345, STREAM_MIXUP, 999),
        (2 ** 40 + 3, 17, 2 ** 33), (7, STREAM_AUGMENT, 0)]


def _draws(backend, seed, stream, counter):
    rng = CounterRandom(backend.xp, seed, stream, counter)
    out = [
        ('random_sample((3, 5))', rng.random_sample((3, 5))),
        ('random_sample(17)', rng.random_sample(17)),
        ('randint(0, 9, (7, 2))', rng.randint(0, 9, size=(7, 2))),
        ('randint(5)', rng.randint(5)),
        ('randint(-3, 1000003, 40)', rng.randint(-3, 1000003, size=40)),
        ('permutation(1)', rng.permutation(1)),
        ('permutation(100)', rng.permutation(100)),
        ('permutation(5000)', rng.permutation(5000)),
        ('host_beta(2, 2)', rng.host_beta(2.0, 2.0)),
        ('host_beta(0.05, 0.05)', rng.host_beta(0.05, 0.05)),
        ('random_sample(0)', rng.random_sample(0)),
        ('random_bits', random_bits(backend.xp, 2 ** 63 + seed, 33)),
        ('uniform', uniform(backend.xp, counter, 33)),
    ]
    for name, value in out:
        if not isinstance(value, float):
            _assert_same_array_kind(backend, value)
    return out


def _check_counter_random(a, b):
    for key in KEYS:
        for (name, x), (name_b, y) in zip(_draws(a, *key), _draws(b, *key)):
            x, y = host(x), host(y)
            assert x.dtype == y.dtype and x.shape == y.shape, (key, name)
            numpy.testing.assert_array_equal(y, x, err_msg='{} {}'.format(key, name))
        perm = host(CounterRandom(b.xp, *key).permutation(257))
        numpy.testing.assert_array_equal(numpy.sort(perm), numpy.arange(257))


def _check_functions(a, b):
    from models.preact_resnet import batch_norm_relu, pool_linear
    rs = numpy.random.RandomState(11)
    x = rs.normal(size=(8, 3, 5, 5)).astype(numpy.float32)
    gy = rs.normal(size=x.shape).astype(numpy.float32)
    logits = (rs.normal(size=(8, C)) * 2).astype(numpy.float32)
    y = rs.dirichlet(numpy.ones(C), size=8).astype(numpy.float32)
    weights = rs.normal(size=(C, 3)).astype(numpy.float32)
    results = []
    for be in (a, b):
        out = {}
        for groups in (1, 2):
            bn = L.BatchNormalization(3)
            bn.to_device(be.device)
            xv = chainer.Variable(be.send(x))
            h = batch_norm_relu(bn, xv, groups)
            h.grad = be.send(gy)
            h.backward()
            out['bn {}'.format(groups)] = [
                host(h), host(xv.grad), host(bn.gamma.grad), host(bn.avg_mean), host(bn.avg_var)]
        W = chainer.Variable(be.send(weights))
        bias = chainer.Variable(be.send(numpy.zeros(C, numpy.float32)))
        xv = chainer.Variable(be.send(x))
        z = pool_linear(xv, W, bias)
        chainer.functions.sum(z * z).backward()
        out['pool'] = [host(z), host(xv.grad), host(W.grad)]
        zv = chainer.Variable(be.send(logits))
        prior = be.send(numpy.full(C, 1.0 / C, numpy.float32))
        total = losses.joint_loss(zv, be.send(y), prior, 1.2, 0.8)[0]
        total.backward()
        out['joint'] = [host(total), host(zv.grad)]
        zv = chainer.Variable(be.send(numpy.concatenate([logits, logits[::-1]])))
        total = losses.mixup_kl_loss(zv, be.send(y), be.send(y[::-1]), 0.3, 1.0,
                                     stacked=True)[0]
        total.backward()
        out['mixup'] = [host(total), host(zv.grad)]
        results.append(out)
    for key in results[0]:
        for k, (got, want) in enumerate(zip(results[1][key], results[0][key])):
            numpy.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6,
                                          err_msg='{} [{}]'.format(key, k))


def test_functions_agree(backends):
    """The nodes the runs use (batch normalisation + ReLU with one and two groups,
    pooling + linear, step 1's and step 2's losses): values, gradients and running averages
    rtol 1e-5 atol 1e-6."""
    _check_functions(*backends)


def test_counter_random_draws_are_identical(backends):
    """random_sample, randint, permutation, host_beta (and random_bits, uniform) of CounterRandom
    give bit-identical results (exact equality, same dtype and shape) for several
    (seed, stream, counter), including seeds and counters beyond 32 bits."""
    _check_counter_random(*backends)


def _images(n, seed, size=8):
    rs = numpy.random.RandomState(seed)
    x = rs.randint(0, 256, size=(n, 3, size, size)).astype(numpy.uint8)
    mean = (x.astype(numpy.float32) / 255).mean(axis=0)
    return x, mean


def _check_random_crop_flip(a, b):
    x, mean = _images(16, seed=3, size=8)
    for pad, flip in ((4, True), (2, True), (0, True), (4, False)):
        for counter in (0, 1, 123456):
            outs, draws = [], []
            for be in (a, b):
                rng = CounterRandom(be.xp, 11, STREAM_AUGMENT, counter)
                out = augment.random_crop_flip(be.send(x), be.send(mean), rng, pad=pad, flip=flip)
                _assert_same_array_kind(be, out)
                assert out.dtype == numpy.float32 and out.shape == x.shape
                outs.append(host(out))
                again = CounterRandom(be.xp, 11, STREAM_AUGMENT, counter)
                draws.append((host(again.randint(0, 2 * pad + 1, size=(16, 2))),
                               host(again.random_sample(16) < 0.5)))
            numpy.testing.assert_array_equal(draws[1][0], draws[0][0])
            numpy.testing.assert_array_equal(draws[1][1], draws[0][1])
            numpy.testing.assert_allclose(outs[1], outs[0], rtol=0, atol=1e-6,
                                          err_msg='pad {} flip {} counter {}'.format(
                                              pad, flip, counter))


def test_random_crop_flip_is_identical(backends):
    """augment.random_crop_flip with the same CounterRandom key: the crop offsets and flips are
    identical (exact) and the float32 batches agree to atol 1e-6 (x / 255 - mean may round
    differently by an ulp; a different crop or flip would differ by about 1e-2 or more)."""
    _check_random_crop_flip(*backends)


def _check_iterator_and_feed(a, b):
    x, mean = _images(20, seed=4, size=8)
    iterators, feeds = [], []
    for be in (a, b):
        iterators.append(IndexIterator(20, 8, seed=9, xp=be.xp))
        mean_be = be.send(mean)
        feeds.append(DeviceImageFeed(
            be.send(x), lambda images, rng, m=mean_be: augment.random_crop_flip(
                images, m, rng, pad=2), seed=5))
    for iteration in range(8):   # three epochs of 8 + 8 + 4
        batches = [next(it) for it in iterators]
        for be, batch in zip((a, b), batches):
            _assert_same_array_kind(be, batch)
        numpy.testing.assert_array_equal(host(batches[1]), host(batches[0]))
        assert host(batches[1]).dtype == numpy.int32
        assert iterators[1].is_new_epoch == iterators[0].is_new_epoch
        assert iterators[1].epoch == iterators[0].epoch
        images = [feed(batch, iteration) for feed, batch in zip(feeds, batches)]
        numpy.testing.assert_allclose(host(images[1]), host(images[0]), rtol=0, atol=1e-6)


def test_index_iterator_and_device_feed_are_identical(backends):
    """IndexIterator's batches (exact, int32, epoch boundaries included) and DeviceImageFeed's
    augmented batches (atol 1e-6) are the same on both backends."""
    _check_iterator_and_feed(*backends)


# ---------------------------------------------------------------------------------------------
# 4-5. one iteration of each updater on a tiny PreAct ResNet
# ---------------------------------------------------------------------------------------------
def _tiny_model(seed=0, n_classes=C):
    """PreActResNet(1, (4, 8, 8)) with deterministic weights (He-normal scale) and non-trivial
    BN parameters and running statistics, on the host."""
    model = PreActResNet(1, (4, 8, 8), n_classes)
    rs = numpy.random.RandomState(seed)
    for name, param in sorted(model.namedparams()):
        shape = param.shape
        if param.ndim >= 2:
            fan_in = int(numpy.prod(shape[1:]))
            param.array[...] = rs.normal(0, math.sqrt(2.0 / fan_in), size=shape)
        elif name.endswith('gamma'):
            param.array[...] = 1 + 0.1 * rs.normal(size=shape)
        else:  # BN beta, linear bias
            param.array[...] = 0.1 * rs.normal(size=shape)
    for link in model.links():
        if isinstance(link, L.BatchNormalization):
            link.avg_mean[...] = 0.1 * rs.normal(size=link.avg_mean.shape)
            link.avg_var[...] = 1 + 0.2 * numpy.abs(rs.normal(size=link.avg_var.shape))
    return model


def _state(model):
    """Every parameter and persistent value of ``model`` as host arrays (copies)."""
    target = {}
    chainer.serializers.DictionarySerializer(target).save(model)
    return {k: numpy.array(v, copy=True) for k, v in target.items()}


def _clone_to(model, backend, seed=0):
    """A new tiny model with ``model``'s state, on ``backend``."""
    clone = _tiny_model(seed + 1)   # weights overwritten below
    chainer.serializers.NpzDeserializer(_state(model)).load(clone)
    clone.to_device(backend.device)
    return clone


def _optimizer(model, lr=0.05):
    """The runs' optimizer: Chainer's momentum SGD with its weight-decay hook."""
    return momentum_sgd(model, {'lr': lr, 'momentum': 0.9, 'weight_decay': 1e-4})


def _grads(model):
    return {name: host(p.grad) for name, p in model.namedparams()}


def _compare_models(model_a, model_b, before):
    """Parameters and persistents (rtol 1e-4, atol 1e-5), gradients (rtol 1e-3, atol 1e-4 of the
    largest entry); and the step really changed the weights."""
    state_a, state_b = _state(model_a), _state(model_b)
    assert sorted(state_a) == sorted(state_b)
    for key in state_a:
        numpy.testing.assert_allclose(state_b[key], state_a[key], rtol=1e-4, atol=1e-5,
                                      err_msg=key)
    moved = [k for k in state_a if state_a[k].dtype.kind == 'f'
             and not numpy.array_equal(state_a[k], before[k])]
    assert len(moved) > len(state_a) // 2, 'the step left most of the model unchanged'
    grads_a, grads_b = _grads(model_a), _grads(model_b)
    for key in grads_a:
        scale = float(numpy.abs(grads_a[key]).max())
        numpy.testing.assert_allclose(grads_b[key], grads_a[key], rtol=1e-3,
                                      atol=1e-4 * scale + 1e-8, err_msg='grad ' + key)


def _compare_observations(obs_a, obs_b, expected_keys):
    assert sorted(obs_a) == sorted(obs_b) == sorted('main/' + k for k in expected_keys)
    for key in obs_a:
        assert math.isfinite(obs_a[key]), key
        numpy.testing.assert_allclose(obs_b[key], obs_a[key], rtol=1e-5, atol=1e-6, err_msg=key)


def _training_setting(backend, model0, n=16, size=8, pad=2, batch=16):
    """Model (copy of model0), optimizer, feed and iterator on ``backend``."""
    x, mean = _images(n, seed=6, size=size)
    mean_be = backend.send(mean)
    feed = DeviceImageFeed(backend.send(x), lambda images, rng: augment.random_crop_flip(
        images, mean_be, rng, pad=pad), seed=7)
    iterator = IndexIterator(n, batch, seed=8, xp=backend.xp)
    model = _clone_to(model0, backend)
    return model, _optimizer(model), feed, iterator


def _check_joint_step(a, b):
    model0 = _tiny_model(0)
    before = _state(model0)
    noisy = numpy.random.RandomState(1).randint(0, C, size=16).astype(numpy.int32)
    runs = []
    for be in (a, b):
        model, optimizer, feed, iterator = _training_setting(be, model0)
        table = LabelTable(be.send(noisy), C, window=2, begin=1, device=be.device)
        updater = JointOptimizationUpdater(iterator, optimizer, feed, table, alpha=1.2, beta=0.8,
                                           device=be.device)
        observation = observe(updater)
        _assert_same_array_kind(be, table.soft)
        _assert_same_array_kind(be, model.fc.W.array)
        runs.append((model, table, updater, observation))
    (model_a, table_a, upd_a, obs_a), (model_b, table_b, upd_b, obs_b) = runs
    _compare_observations(obs_a, obs_b, ['loss', 'loss_c', 'loss_p', 'loss_e'])
    _compare_models(model_a, model_b, before)
    # the one batch was the whole (shuffled) set: every row stored, the epoch closed, and with
    # begin=1: Y became the stored softmax outputs
    assert table_a.epoch == table_b.epoch == 1
    numpy.testing.assert_array_equal(host(table_b._seen), host(table_a._seen))
    probs_a, probs_b = host(table_a._probs), host(table_b._probs)
    assert host(table_a._seen)[0].all()
    numpy.testing.assert_allclose(probs_a[0].sum(axis=1), 1, rtol=1e-5)
    numpy.testing.assert_allclose(probs_b, probs_a, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(host(table_b.soft), host(table_a.soft), rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(host(table_a.soft), probs_a[0], rtol=1e-6, atol=1e-7)
    assert upd_a.first_nonfinite() is None and upd_b.first_nonfinite() is None
    assert upd_a.iteration == upd_b.iteration == 1


def test_joint_optimization_step_agrees(backends):
    """One step-1 iteration (JointOptimizationUpdater, PreActResNet(1, (4, 8, 8)), 10 classes,
    8x8 input, batch 16 = the whole set, MomentumSGD + weight decay, LabelTable window 2 begin 0):
    reported losses rtol 1e-5 atol 1e-6; weights and BN statistics after the update rtol 1e-4
    atol 1e-5; gradients rtol 1e-3 atol 1e-4 x their largest entry; the table's stored
    predictions and the updated Y rtol 1e-5 atol 1e-6; the seen mask exact."""
    _check_joint_step(*backends)


def test_joint_optimization_step_without_cudnn(backends):
    """The step-1 iteration of :func:`test_joint_optimization_step_agrees`, with the same
    tolerances, run with ``use_cudnn='never'`` (cupy then convolves by im2col + GEMM and uses
    its own batch normalisation and softmax kernels)."""
    with chainer.using_config('use_cudnn', 'never'):
        assert not chainer.should_use_cudnn('>=auto')
        _check_joint_step(*backends)


def _check_mixup_step(a, b, mixup_weight, lc_on):
    model0 = _tiny_model(2)
    before = _state(model0)
    targets = numpy.random.RandomState(3).dirichlet(numpy.ones(C), size=16).astype(numpy.float32)
    runs = []
    for be in (a, b):
        model, optimizer, feed, iterator = _training_setting(be, model0)
        updater = MixupUpdater(iterator, optimizer, feed, be.send(targets), mixup_alpha=2.0,
                               mixup_weight=mixup_weight, lc_on=lc_on, seed=5, device=be.device)
        runs.append((model, updater, observe(updater)))
    (model_a, upd_a, obs_a), (model_b, upd_b, obs_b) = runs
    keys = ['loss', 'loss_c'] + (['loss_mix'] if mixup_weight else [])
    _compare_observations(obs_a, obs_b, keys)
    _compare_models(model_a, model_b, before)
    assert upd_a.first_nonfinite() is None and upd_b.first_nonfinite() is None


@pytest.mark.parametrize('mixup_weight, lc_on', [(1.0, 'clean'), (1.0, 'mixed'), (0.0, 'clean')])
def test_mixup_step_agrees(backends, mixup_weight, lc_on):
    """One step-2 iteration (MixupUpdater, Beta(2, 2), mix-up weight 1 with Lc on the clean or
    the mixed batch, and weight 0 = Tanaka's second step), same model and batch as the step-1
    test: reported losses rtol 1e-5 atol 1e-6; weights and BN statistics rtol 1e-4 atol 1e-5;
    gradients rtol 1e-3 atol 1e-4 x their largest entry."""
    _check_mixup_step(*backends, mixup_weight=mixup_weight, lc_on=lc_on)


def _check_cross_entropy_step(a, b, transition=None):
    model0 = _tiny_model(4)
    before = _state(model0)
    labels = numpy.random.RandomState(5).randint(0, C, size=16).astype(numpy.int32)
    runs = []
    for be in (a, b):
        model, optimizer, feed, iterator = _training_setting(be, model0)
        updater = CrossEntropyUpdater(
            iterator, optimizer, feed, be.send(labels),
            transition=None if transition is None else be.send(transition), device=be.device)
        runs.append((model, observe(updater)))
    (model_a, obs_a), (model_b, obs_b) = runs
    _compare_observations(obs_a, obs_b, ['loss'])
    _compare_models(model_a, model_b, before)


def test_cross_entropy_step_agrees(backends):
    """One CrossEntropyUpdater iteration on the tiny model: loss rtol 1e-5 atol 1e-6; weights
    and BN statistics rtol 1e-4 atol 1e-5; gradients rtol 1e-3 atol 1e-4 x their largest
    entry."""
    _check_cross_entropy_step(*backends)


def test_forward_t_step_agrees(backends):
    """One Forward T iteration (CrossEntropyUpdater with a 40 % asymmetric-like transition
    matrix), same model and tolerances as the cross-entropy test."""
    transition = numpy.eye(C, dtype=numpy.float32) * 0.6
    transition[numpy.arange(C), (numpy.arange(C) + 1) % C] = 0.4
    _check_cross_entropy_step(*backends, transition=transition)


def _check_pencil_step(a, b, stage, pencil_losses):
    from updaters.pencil import PencilUpdater
    model0 = _tiny_model(6)
    before = _state(model0)
    labels = numpy.random.RandomState(7).randint(0, C, size=16).astype(numpy.int32)
    stages = {1: (1, 1, 1), 2: (0, 1, 1), 3: (0, 0, 1)}[stage]
    runs = []
    for be in (a, b):
        model, optimizer, feed, iterator = _training_setting(be, model0)
        updater = PencilUpdater(iterator, optimizer, feed, be.send(labels), C, stages, alpha=0.4,
                                beta=0.1, label_lr=600, k=10, losses=pencil_losses,
                                device=be.device)
        if stage == 3:      # stage 3 trains on label logits that stage 2 has moved
            rs = numpy.random.RandomState(8)
            updater.labels.logits[...] = be.send(
                (rs.normal(size=(16, C)) * 3).astype(numpy.float32))
        runs.append((model, updater, observe(updater)))
    (model_a, upd_a, obs_a), (model_b, upd_b, obs_b) = runs
    keys = ['loss'] + (['lc', 'lo', 'le'] if stage == 2 else [])
    _compare_observations(obs_a, obs_b, keys)
    _compare_models(model_a, model_b, before)
    numpy.testing.assert_allclose(host(upd_b.labels.logits), host(upd_a.labels.logits),
                                  rtol=1e-4, atol=1e-4)
    numpy.testing.assert_array_equal(host(upd_b.hard), host(upd_a.hard))


@pytest.mark.parametrize('pencil_losses', ['official', 'paper'])
@pytest.mark.parametrize('stage', [1, 2, 3])
def test_pencil_step_agrees(backends, stage, pencil_losses):
    """One PencilUpdater iteration in each stage, with the official code's and the paper's
    losses: reported losses rtol 1e-5 atol 1e-6; weights, BN statistics and gradients as the
    cross-entropy test; the label logits after stage 2's step rtol 1e-4 atol 1e-4 (label lr
    600 scales their gradient); hard labels identical."""
    _check_pencil_step(*backends, stage, pencil_losses)


# ---------------------------------------------------------------------------------------------
# 6. the label table and the label-accuracy report
# ---------------------------------------------------------------------------------------------
NT = 50


def _table_data(seed=0):
    rs = numpy.random.RandomState(seed)
    clean = rs.randint(0, C, size=NT).astype(numpy.int32)
    noisy = clean.copy()
    flip = rs.rand(NT) < 0.4
    noisy[flip] = rs.randint(0, C, size=int(flip.sum()))
    clean_known = clean.copy()
    clean_known[rs.rand(NT) < 0.2] = -1        # unknown clean labels are left out
    epochs = []
    for _ in range(6):
        p = rs.rand(NT, C).astype(numpy.float32) ** 3 + 1e-3
        p /= p.sum(axis=1, keepdims=True)
        seen = rs.rand(NT) < 0.8                 # some samples are not seen in some epochs
        order = rs.permutation(numpy.flatnonzero(seen)).astype(numpy.int32)
        epochs.append((p, order))
    return clean_known, noisy, epochs


def _check_label_table(a, b, window, tmp_dir):
    clean, noisy, epochs = _table_data()
    tables, reports = [], []
    for be in (a, b):
        table = LabelTable(be.send(noisy), C, window=window, begin=3, device=be.device)
        tables.append(table)
        reports.append(LabelAccuracyReport(table, be.send(noisy), be.send(clean)))
    some_rows = numpy.array([3, 0, 49, 17, 17, 8], dtype=numpy.int32)
    for epoch, (p, order) in enumerate(epochs, 1):
        updated = []
        for be, table in zip((a, b), tables):
            for start in range(0, len(order), 8):
                rows = order[start:start + 8]
                table.store(be.send(rows), be.send(p[rows]))
            updated.append(table.end_epoch(epoch))
        assert updated[0] == updated[1] == (epoch >= 3)
        table_a, table_b = tables
        _assert_same_array_kind(b, table_b.soft)
        soft_a, soft_b = host(table_a.soft), host(table_b.soft)
        assert soft_b.dtype == numpy.float32
        numpy.testing.assert_allclose(soft_b, soft_a, rtol=1e-6, atol=1e-12,
                                      err_msg='epoch {}'.format(epoch))
        hard_a, hard_b = host(table_a.hard), host(table_b.hard)
        assert hard_a.dtype == hard_b.dtype == numpy.int32
        numpy.testing.assert_array_equal(hard_b, hard_a)
        numpy.testing.assert_array_equal(
            host(table_b.targets('hard', b.send(some_rows))),
            host(table_a.targets('hard', a.send(some_rows))))
        numpy.testing.assert_allclose(host(table_b.targets('soft', b.send(some_rows))),
                                      soft_a[some_rows], rtol=1e-6, atol=1e-12)
        measured = [report.measure() for report in reports]
        assert measured[0] == measured[1], 'epoch {}: {}'.format(epoch, measured)
    # the labels did change, and the report counted something
    assert not numpy.array_equal(hard_a, noisy)
    assert 0 < measured[0][0] < 1
    _check_table_persistence(a, b, tables, noisy, window, tmp_dir)


def _check_table_persistence(a, b, tables, noisy, window, tmp_dir):
    """save() writes host copies; a table serialized on one backend loads into the other."""
    table_a, table_b = tables
    path = os.path.join(tmp_dir, 'labels.npz')
    table_b.save(path, noisy=b.send(noisy))
    with numpy.load(path) as f:
        numpy.testing.assert_array_equal(f['soft'], host(table_b.soft))
        numpy.testing.assert_array_equal(f['hard'], host(table_b.hard))
        numpy.testing.assert_array_equal(f['noisy'], noisy)
    names = ['_y', '_probs', '_seen'] + (['_sum', '_count'] if window is None else [])
    for source, target in ((table_b, a), (table_a, b)):
        state = {}
        source.serialize(chainer.serializers.DictionarySerializer(state))
        fresh = LabelTable(target.send(noisy), C, window=window, begin=3, device=target.device)
        fresh.serialize(chainer.serializers.NpzDeserializer(state))
        assert (fresh.epoch, fresh._position) == (source.epoch, source._position)
        for name in names:
            _assert_same_array_kind(target, getattr(fresh, name))
            numpy.testing.assert_array_equal(host(getattr(fresh, name)),
                                             host(getattr(source, name)), err_msg=name)


@pytest.mark.parametrize('window', [3, None])
def test_label_table_update_and_report_agree(backends, window, tmp_path):
    """LabelTable fed shuffled mini-batches for 6 epochs (some samples unseen in some epochs),
    window 3 or all epochs, begin 3: Y after every epoch rtol 1e-6 (atol 1e-12); hard labels,
    the 'hard' targets of some rows and the end_epoch results exact; LabelAccuracyReport.measure
    (accuracy, fixed, broken; some clean labels unknown = -1) exactly equal. Then save() writes
    exactly the device table, and a table serialized on either backend and loaded into a fresh
    table on the other (a snapshot resumed on the other device) holds exactly the same arrays."""
    _check_label_table(*backends, window=window, tmp_dir=str(tmp_path))


def _check_label_table_ties(a, b):
    rows = numpy.zeros((6, C), dtype=numpy.float32)
    rows[0, [2, 5]] = 0.5                       # exact ties: argmax takes the first
    rows[1, [7, 3, 1]] = 1.0 / 3
    rows[2, :] = 0.1
    rows[3, [9, 0]] = 0.5
    rows[4, 4] = 1
    rows[5, [6, 8]] = [0.25, 0.75]
    hards = []
    for be in (a, b):
        table = LabelTable(be.send(numpy.arange(6) % C), C, window=1, begin=1, device=be.device)
        table.soft[...] = be.send(rows)
        hards.append((host(table.hard), host(table.targets('hard'))))
    numpy.testing.assert_array_equal(hards[0][0], [2, 1, 0, 0, 4, 8])
    numpy.testing.assert_array_equal(hards[1][0], hards[0][0])
    numpy.testing.assert_array_equal(hards[1][1], hards[0][1])


def test_label_table_hard_labels_break_ties_alike(backends):
    """Hard labels of rows with exactly tied maxima: the first maximal class on both backends
    (exact)."""
    _check_label_table_ties(*backends)


# ---------------------------------------------------------------------------------------------
# 7. evaluation accuracy
# ---------------------------------------------------------------------------------------------
def _check_accuracy(a, b):
    x, mean = _images(40, seed=10, size=8)
    labels = numpy.random.RandomState(11).randint(0, C, size=40).astype(numpy.int32)
    model0 = _tiny_model(6)
    values, logits = [], []
    for be in (a, b):
        model = _clone_to(model0, be)
        mean_be = be.send(mean)
        preprocess = lambda images, m=mean_be: augment.normalize(images, m)  # noqa: E731
        values.append(accuracy(model, be.send(x), be.send(labels), preprocess, batch_size=16))
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            logits.append(host(model(preprocess(be.send(x)))))
    numpy.testing.assert_allclose(logits[1], logits[0], rtol=1e-4, atol=1e-5)
    # the value itself: the share of argmax == label, with the host logits as reference
    assert values[0] == pytest.approx(float((logits[0].argmax(axis=1) == labels).mean()))
    # a sample may only count differently if its two top logits are within float32 noise
    top2 = numpy.sort(logits[0], axis=1)[:, -2:]
    near_ties = int((top2[:, 1] - top2[:, 0] < 1e-4).sum())
    assert abs(values[1] - values[0]) * 40 <= near_ties + 1e-9, (values, near_ties)
    assert isinstance(values[1], float) and 0 < values[0] < 1


def test_evaluation_accuracy_agrees(backends):
    """updaters.extensions.accuracy (test mode, batches of 16 over 40 images, last batch short):
    the logits agree to rtol 1e-4 atol 1e-5 and the accuracy is the same value (exactly; only
    a sample whose two top logits are within 1e-4 could be allowed to count differently)."""
    _check_accuracy(*backends)

"""Both batch normalisation + ReLU variants against Chainer's own two functions applied by hand:
values, gradients and running averages; slices with their own statistics against separate
passes."""
import copy

import chainer
import chainer.functions as F
import chainer.links as L
import numpy
import pytest

from models.batch_norm_relu import VARIANTS, batch_norm_relu

C = 5


def data(n, seed=0, shape=(6, 6)):
    rs = numpy.random.RandomState(seed)
    x = (rs.normal(size=(n, C) + shape) * 2 + 0.5).astype(numpy.float32)
    gy = rs.normal(size=x.shape).astype(numpy.float32)
    return x, gy


def link(seed=1):
    bn = L.BatchNormalization(C)
    rs = numpy.random.RandomState(seed)
    bn.gamma.array[...] = rs.uniform(0.5, 1.5, size=C)
    bn.beta.array[...] = rs.normal(size=C) * 0.3
    bn.avg_mean[...] = rs.normal(size=C)
    bn.avg_var[...] = rs.uniform(0.5, 2, size=C)
    return bn


def run(bn, x, gy, variant, groups=1):
    """(y, gx, ggamma, gbeta) of ``variant``, or of F.relu(bn(x)) by hand for None."""
    xv = chainer.Variable(x.copy())
    bn.cleargrads()
    y = batch_norm_relu(bn, xv, groups, variant) if variant else F.relu(bn(xv))
    y.grad = gy
    y.backward()
    return y.array, xv.grad, bn.gamma.grad, bn.beta.grad


@pytest.mark.parametrize('variant', VARIANTS)
@pytest.mark.parametrize('shape', [(6, 6), (1, 1), ()])
def test_one_group_is_chainers_batch_normalization_then_relu(shape, variant):
    x, gy = data(8, shape=shape)
    fused, reference = link(), link()
    got = run(fused, x, gy, variant)
    want = run(reference, x, gy, None)
    for name, a, b in zip(('y', 'gx', 'ggamma', 'gbeta'), got, want):
        numpy.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=name)
    numpy.testing.assert_allclose(fused.avg_mean, reference.avg_mean, rtol=1e-6, atol=1e-7)
    numpy.testing.assert_allclose(fused.avg_var, reference.avg_var, rtol=1e-6, atol=1e-7)
    assert (got[0] == 0).any() and (got[0] > 0).any()        # the ReLU cut something


@pytest.mark.parametrize('variant', VARIANTS)
def test_groups_are_separate_passes_one_after_the_other(variant):
    """Two slices in one pass: each slice's output and the gradients are those of its own pass,
    the gradients of gamma and beta their sum, and the running averages as after two passes."""
    x, gy = data(12, seed=3)
    x[6:] = x[6:] * 0.5 - 1.0                               # slices with other statistics
    fused, reference = link(), link()
    got = run(fused, x, gy, variant, groups=2)
    halves = [run(reference, x[s], gy[s], None) for s in (slice(0, 6), slice(6, 12))]
    numpy.testing.assert_allclose(got[0], numpy.concatenate([h[0] for h in halves]),
                                  rtol=1e-6, atol=1e-7)
    numpy.testing.assert_allclose(got[1], numpy.concatenate([h[1] for h in halves]),
                                  rtol=1e-5, atol=1e-7)
    for k in (2, 3):
        numpy.testing.assert_allclose(got[k], halves[0][k] + halves[1][k], rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(fused.avg_mean, reference.avg_mean, rtol=1e-6, atol=1e-7)
    numpy.testing.assert_allclose(fused.avg_var, reference.avg_var, rtol=1e-6, atol=1e-7)
    whole = link()
    run(whole, x, gy, variant, groups=1)
    assert not numpy.allclose(whole.avg_mean, fused.avg_mean)   # one group would differ


@pytest.mark.parametrize('variant', VARIANTS)
def test_gradients_against_finite_differences(variant):
    x, gy = data(4, seed=5, shape=(3, 3))
    bn = link()
    x64 = x.astype(numpy.float64)
    bn.to_device('@numpy')
    bn64 = copy.deepcopy(bn)
    for p in bn64.params():
        p.array = p.array.astype(numpy.float64)
    bn64.avg_mean, bn64.avg_var = bn64.avg_mean.astype(numpy.float64), bn64.avg_var.astype(
        numpy.float64)
    _, gx, ggamma, _ = run(bn64, x64, gy.astype(numpy.float64), variant, groups=2)

    def objective(xx, gamma):
        probe = copy.deepcopy(bn64)
        probe.gamma.array[...] = gamma
        return float((batch_norm_relu(probe, xx, 2, variant).array * gy).sum())

    eps = 1e-6
    for index in [(0, 1, 0, 0), (3, 4, 2, 1), (2, 0, 1, 2)]:
        up, down = x64.copy(), x64.copy()
        up[index] += eps
        down[index] -= eps
        numeric = (objective(up, bn64.gamma.array) - objective(down, bn64.gamma.array)) / (2 * eps)
        assert gx[index] == pytest.approx(numeric, rel=1e-5, abs=1e-8)
    gamma = bn64.gamma.array.copy()
    up, down = gamma.copy(), gamma.copy()
    up[2] += eps
    down[2] -= eps
    assert ggamma[2] == pytest.approx((objective(x64, up) - objective(x64, down)) / (2 * eps),
                                      rel=1e-5, abs=1e-8)


@pytest.mark.parametrize('variant', VARIANTS)
def test_test_mode_is_chainers_fixed_batch_normalization(variant):
    x, _ = data(4)
    bn = link()
    with chainer.using_config('train', False):
        numpy.testing.assert_array_equal(batch_norm_relu(bn, x, variant=variant).array,
                                         F.relu(bn(x)).array)
        with pytest.raises(ValueError, match='training-mode'):
            batch_norm_relu(bn, x, groups=2, variant=variant)


@pytest.mark.parametrize('variant', VARIANTS)
def test_a_batch_that_does_not_split_is_refused(variant):
    x, _ = data(5)
    with pytest.raises(ValueError, match='equal groups'):
        batch_norm_relu(link(), x, groups=2, variant=variant)


def test_an_unknown_variant_is_refused():
    with pytest.raises(ValueError, match='the variants are chainer, fused'):
        batch_norm_relu(link(), data(4)[0], variant='cudnn')


def test_the_variants_give_the_same_bits_on_the_cpu():
    """Same outputs, gradients and running averages to the bit: a run's numbers do not depend on
    the variant on the CPU (the recorded results stay valid)."""
    x, gy = data(12, seed=7)
    for groups in (1, 2):
        links = [link(), link()]
        got = [run(bn, x, gy, variant, groups) for bn, variant in zip(links, VARIANTS)]
        for a, b in zip(*got):
            numpy.testing.assert_array_equal(a, b)
        numpy.testing.assert_array_equal(links[0].avg_mean, links[1].avg_mean)
        numpy.testing.assert_array_equal(links[0].avg_var, links[1].avg_var)

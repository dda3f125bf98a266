import chainer_compat  # noqa: F401  (must precede the first chainer import)
import chainer
import numpy as np
import numpy
import pytest
from chainer import gradient_check

from updaters import losses
from updaters.losses import (entropy_loss, kl_loss, mixup_loss, prior_loss,
                             soft_cross_entropy)

# float32 losses against float64 numpy references: relative tolerance 1e-5, absolute 1e-5 for
# moderate logits; for logits of +-1e4 float32 itself resolves only ~1e-3 (its spacing at 1e4 is
# 2**-10), so there the absolute tolerance is 2e-3.
RTOL = 1e-5
ATOL = {0: 1e-5, 1: 2e-3}


# ----- plain numpy references (float64) -----
def ref_log_softmax(x):
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def ref_xlogy(x, y):
    """x log y with 0 log anything = 0."""
    return np.where(x > 0, x * np.log(np.where(x > 0, y, 1.0)), 0.0)


def ref_kl(y, x):
    lp = ref_log_softmax(x)
    return np.mean((ref_xlogy(y, y) - y * lp).sum(axis=1))


def ref_soft_ce(y, x):
    return -np.mean((y * ref_log_softmax(x)).sum(axis=1))


def ref_prior(x, p):
    lp = ref_log_softmax(x)
    m = lp.max(axis=0)
    log_sbar = m + np.log(np.exp(lp - m).sum(axis=0)) - np.log(len(x))
    return (ref_xlogy(p, p) - p * log_sbar).sum()


def ref_entropy(x):
    lp = ref_log_softmax(x)
    return -np.mean((np.exp(lp) * lp).sum(axis=1))


def ref_mixup(ya, yb, lam, x):
    lp = ref_log_softmax(x)
    return -np.mean(lam * (ya * lp).sum(axis=1) + (1 - lam) * (yb * lp).sum(axis=1))


# ----- data -----
def soft_labels(rng, n, c, zeros=True):
    y = rng.rand(n, c)
    if zeros:
        y[rng.rand(n, c) < 0.4] = 0.0
        y[np.arange(n), rng.randint(0, c, n)] += 0.5   # every row keeps some mass
    y[0] = np.eye(c)[1]                                # an exact one-hot row
    return y / y.sum(axis=1, keepdims=True)


def cases():
    rng = np.random.RandomState(0)
    n, c = 6, 5
    moderate = rng.randn(n, c) * 3
    saturated = rng.choice([-1e4, 1e4], size=(n, c))
    saturated[:, 0] = 1e4                              # ties at the top too
    return [(soft_labels(rng, n, c), moderate), (soft_labels(rng, n, c), saturated)]


PRIOR = np.array([0.1, 0.2, 0.3, 0.4, 0.0])


def run(fn, *args):
    v = fn(*args)
    assert isinstance(v, chainer.Variable) and v.shape == ()
    return v


@pytest.mark.parametrize('case', [0, 1])
def test_values_match_numpy_and_stay_finite(case):
    y, x = cases()[case]
    y_b = soft_labels(np.random.RandomState(5), *y.shape)
    f32 = np.float32
    checks = [
        (run(kl_loss, y.astype(f32), x.astype(f32)), ref_kl(y, x)),
        (run(soft_cross_entropy, y.astype(f32), x.astype(f32)), ref_soft_ce(y, x)),
        (run(prior_loss, x.astype(f32), PRIOR.astype(f32)), ref_prior(x, PRIOR)),
        (run(entropy_loss, x.astype(f32)), ref_entropy(x)),
        (run(mixup_loss, y.astype(f32), y_b.astype(f32), 0.3, x.astype(f32)),
         ref_mixup(y, y_b, 0.3, x)),
    ]
    for got, want in checks:
        assert np.isfinite(want)
        assert got.dtype == np.float32
        np.testing.assert_allclose(float(got.array), want, rtol=RTOL, atol=ATOL[case])


@pytest.mark.parametrize('case', [0, 1])
def test_gradients_are_finite_in_float32(case):
    y, x = (a.astype(np.float32) for a in cases()[case])
    for fn in (lambda v: kl_loss(y, v), lambda v: soft_cross_entropy(y, v),
               lambda v: prior_loss(v, PRIOR.astype(np.float32)), entropy_loss,
               lambda v: mixup_loss(y, y[::-1], 0.7, v)):
        v = chainer.Variable(x.copy())
        loss = fn(v)
        loss.backward()
        assert np.all(np.isfinite(loss.array)) and np.all(np.isfinite(v.grad))


@pytest.mark.parametrize('name', ['kl', 'ce', 'prior', 'entropy', 'mixup'])
def test_check_backward_float64(name):
    y, x = cases()[0]
    y_b = soft_labels(np.random.RandomState(3), *y.shape)
    fn = {
        'kl': lambda v: kl_loss(y, v),
        'ce': lambda v: soft_cross_entropy(y, v),
        'prior': lambda v: prior_loss(v, PRIOR),
        'entropy': entropy_loss,
        'mixup': lambda v: mixup_loss(y, y_b, np.array(0.35), v),
    }[name]
    gradient_check.check_backward(fn, x, None, eps=1e-4, atol=1e-6, rtol=1e-5)


def grad_of(fn, x):
    v = chainer.Variable(x.copy())
    fn(v).backward()
    return v.grad


def test_kl_and_cross_entropy_share_their_gradient():
    for y, x in cases():
        g_kl = grad_of(lambda v: kl_loss(y, v), x)
        g_ce = grad_of(lambda v: soft_cross_entropy(y, v), x)
        np.testing.assert_allclose(g_kl, g_ce, rtol=0, atol=1e-12)
        # and the values differ by the labels' mean entropy
        diff = float(kl_loss(y, x).array - soft_cross_entropy(y, x).array)
        np.testing.assert_allclose(diff, np.mean(ref_xlogy(y, y).sum(axis=1)), atol=1e-12)


def test_mixup_with_lambda_one_is_cross_entropy_on_y_a():
    y, x = cases()[0]
    other = soft_labels(np.random.RandomState(9), *y.shape)
    for lam in (1.0, np.array(1.0)):
        np.testing.assert_allclose(float(mixup_loss(y, other, lam, x).array),
                                   float(soft_cross_entropy(y, x).array), rtol=0, atol=1e-12)
        np.testing.assert_allclose(grad_of(lambda v: mixup_loss(y, other, lam, v), x),
                                   grad_of(lambda v: soft_cross_entropy(y, v), x),
                                   rtol=0, atol=1e-12)


def test_kl_of_matching_labels_is_zero_and_uniform_prior_loss_of_balanced_batch_is_zero():
    x = np.random.RandomState(1).randn(4, 3)
    y = np.exp(ref_log_softmax(x))
    assert abs(float(kl_loss(y, x).array)) < 1e-12
    balanced = np.array([[2., 0, 0], [0, 2., 0], [0, 0, 2.]])
    assert abs(float(prior_loss(balanced, np.full(3, 1 / 3.)).array)) < 1e-12


@pytest.mark.parametrize('alpha, beta', [(1.2, 0.8), (0.0, 0.0), (0.8, 0.4)])
def test_joint_loss_is_the_three_losses_in_one_node(alpha, beta):
    """Values and gradients of the fused step-1 loss against the compositions above (float32)
    and against central differences (float64); the stored outputs are the softmax."""
    rs = numpy.random.RandomState(7)
    z = (rs.normal(size=(9, 5)) * 3).astype(numpy.float32)
    y = rs.dirichlet(numpy.ones(5) * 0.3, size=9).astype(numpy.float32)
    y[0] = numpy.eye(5)[2]                                  # exact zeros
    prior = numpy.full(5, 0.2, dtype=numpy.float32)
    zv = chainer.Variable(z)
    total, lc, lp, le, p = losses.joint_loss(zv, y, prior, alpha, beta)
    total.backward()
    zr = chainer.Variable(z)
    terms = (losses.kl_loss(y, zr), losses.prior_loss(zr, prior), losses.entropy_loss(zr))
    reference = terms[0] + alpha * terms[1] + beta * terms[2]
    reference.backward()
    for got, want in zip((total, lc, lp, le), (reference,) + terms):
        assert float(got.array) == pytest.approx(float(want.array), rel=1e-5, abs=1e-6)
    numpy.testing.assert_allclose(zv.grad, zr.grad, rtol=1e-4, atol=1e-7)
    numpy.testing.assert_allclose(p.array, chainer.functions.softmax(z).array, rtol=1e-6)
    z64, y64, p64 = z.astype(numpy.float64), y.astype(numpy.float64), prior.astype(numpy.float64)

    def total64(zz):
        return float(losses.joint_loss(zz, y64, p64, alpha, beta)[0].array)

    numpy.testing.assert_allclose(
        losses.joint_loss(chainer.Variable(z64), y64, p64, alpha, beta)[0].array, total64(z64))
    zv64 = chainer.Variable(z64)
    losses.joint_loss(zv64, y64, p64, alpha, beta)[0].backward()
    eps, numeric = 1e-6, numpy.zeros_like(z64)
    for i in numpy.ndindex(z64.shape):
        up, down = z64.copy(), z64.copy()
        up[i] += eps
        down[i] -= eps
        numeric[i] = (total64(up) - total64(down)) / (2 * eps)
    numpy.testing.assert_allclose(zv64.grad, numeric, rtol=1e-6, atol=1e-9)


def test_each_term_of_the_joint_loss_back_propagates_on_its_own():
    rs = numpy.random.RandomState(8)
    z = rs.normal(size=(4, 3))
    y = rs.dirichlet(numpy.ones(3), size=4)
    prior = numpy.full(3, 1 / 3.)
    for k, reference in ((1, lambda v: losses.kl_loss(y, v)),
                         (2, lambda v: losses.prior_loss(v, prior)),
                         (3, losses.entropy_loss)):
        zv, zr = chainer.Variable(z.copy()), chainer.Variable(z.copy())
        losses.joint_loss(zv, y, prior, 0.5, 0.5)[k].backward()
        reference(zr).backward()
        numpy.testing.assert_allclose(zv.grad, zr.grad, rtol=1e-10, atol=1e-12)

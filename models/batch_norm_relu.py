"""Batch normalisation followed by ReLU, in two implementations (``VARIANTS``).

* ``'chainer'`` (the default): ``F.relu(L.BatchNormalization(x))``, Chainer's own functions,
  which are one cuDNN call each on a GPU where cuDNN is installed. Independent slices of the
  batch (``groups`` > 1, step 2's mixed and clean halves) go through ``F.split_axis``, the link
  once per slice (each slice's statistics, running averages updated slice by slice) and
  ``F.concat``: the convolutions still see the whole batch.
* ``'fused'`` (opt-in, ``--batch-norm fused``): :class:`BatchNormReLU`, one function node built
  from array operations with Chainer's non-cuDNN arithmetic. Fewer Chainer nodes, but about 20
  array operations (kernel launches on a GPU) per layer against 4 cuDNN calls, so it stays
  opt-in until a GPU measurement shows it faster (``make gpu-check`` times both).

On the CPU both give the same numbers (tests/test_batch_norm_relu.py); in test mode both are
Chainer's ``relu(link(x))`` with the running averages.
"""
import chainer
import chainer.functions as F
import numpy
from chainer import function_node


def _check_groups(n, groups):
    if n % groups:
        raise ValueError('a batch of {} does not split into {} equal groups'.format(n, groups))


def _split(x, groups):
    """``x`` (N, C, ...) as (G, N / G, C, ...)."""
    _check_groups(x.shape[0], groups)
    return x.reshape((groups, x.shape[0] // groups) + x.shape[1:])


class BatchNormReLU(function_node.FunctionNode):
    """relu(batch normalisation of x) with the statistics of each of ``groups`` slices.

    Args:
        eps (float): added to the variance.
        decay (float): running averages: r <- decay r + (1 - decay) statistic.
        running_mean, running_var: (C,) arrays updated in place (or None).
        groups (int): independent slices of the batch.
    """

    def __init__(self, eps, decay, running_mean=None, running_var=None, groups=1):
        self.eps, self.decay, self.groups = eps, decay, int(groups)
        self.running_mean, self.running_var = running_mean, running_var

    def forward(self, inputs):
        x, gamma, beta = inputs
        xp = chainer.backend.get_array_module(x)
        self.retain_inputs((0, 1))
        xg = _split(x, self.groups)
        axes = (1,) + tuple(range(3, xg.ndim))                 # batch and spatial axes
        expand = (slice(None), None, slice(None)) + (None,) * (xg.ndim - 3)
        interm = numpy.promote_types(x.dtype, gamma.dtype)
        mean = xg.mean(axis=axes, dtype=interm)                # (G, C)
        var = xg.var(axis=axes, dtype=interm)
        inv_std = xp.reciprocal(xp.sqrt(var + self.eps, dtype=interm))
        x_hat = xg - mean[expand]
        x_hat *= inv_std[expand]
        y = x_hat * gamma.astype(interm, copy=False)[expand[1:]]
        y += beta.astype(interm, copy=False)[expand[1:]]
        y = xp.maximum(y, 0).astype(x.dtype, copy=False)
        if self.running_mean is not None:
            m = xg[0].size // gamma.size
            adjust = m / max(m - 1., 1.)                       # unbiased estimation
            for g in range(self.groups):                       # one update per slice, in order
                self.running_mean *= self.decay
                self.running_mean += (1 - self.decay) * mean[g]
                self.running_var *= self.decay
                self.running_var += (1 - self.decay) * adjust * var[g]
        self._stats = mean, inv_std
        self.retain_outputs((0,))                              # its > 0 is ReLU's mask
        return y.reshape(x.shape),

    def backward(self, indexes, grad_outputs):
        x, gamma = (v.array for v in self.get_retained_inputs())
        out = self.get_retained_outputs()[0].array
        mean, inv_std = self._stats
        xg = _split(x, self.groups)
        axes = (1,) + tuple(range(3, xg.ndim))
        expand = (slice(None), None, slice(None)) + (None,) * (xg.ndim - 3)
        x_hat = xg - mean[expand]
        x_hat *= inv_std[expand]
        xp = chainer.backend.get_array_module(x)
        # the incoming gradient is often a strided view (a convolution's cropped col2im, the
        # pooling's broadcast): one copy makes the reductions below run over contiguous memory
        gy = _split(xp.ascontiguousarray(grad_outputs[0].array), self.groups)
        gy = gy * (_split(out, self.groups) > 0)               # ReLU's gradient
        gbeta = gy.sum(axis=axes, dtype=gamma.dtype)           # (G, C)
        ggamma = (gy * x_hat).sum(axis=axes, dtype=gamma.dtype)
        inv_m = gamma.dtype.type(1. / (xg[0].size // gamma.size))
        gx = (gamma * inv_std)[expand] * (gy - (x_hat * ggamma[expand] + gbeta[expand]) * inv_m)
        return (chainer.Variable(gx.astype(x.dtype, copy=False).reshape(x.shape)),
                chainer.Variable(ggamma.sum(axis=0)), chainer.Variable(gbeta.sum(axis=0)))


#: The implementations :func:`batch_norm_relu` offers; the first is the default.
VARIANTS = ('chainer', 'fused')
DEFAULT_VARIANT = VARIANTS[0]


def check_variant(variant):
    if variant not in VARIANTS:
        raise ValueError('unknown batch-normalisation variant {!r}: the variants are {}'.format(
            variant, ', '.join(VARIANTS)))


def batch_norm_relu(link, x, groups=1, variant=DEFAULT_VARIANT):
    """``relu(link(x))`` for an ``L.BatchNormalization`` link, with the statistics of each of
    ``groups`` equal consecutive slices of the batch (training mode only), by ``variant``."""
    check_variant(variant)
    if not chainer.config.train:
        if groups != 1:
            raise ValueError('groups are a training-mode feature (test mode uses the running '
                             'averages)')
        return F.relu(link(x))
    if variant == 'fused':
        y, = BatchNormReLU(link.eps, link.decay, link.avg_mean, link.avg_var, groups).apply(
            (x, link.gamma, link.beta))
        return y
    if groups == 1:
        return F.relu(link(x))
    _check_groups(x.shape[0], groups)
    slices = F.split_axis(x, groups, axis=0)
    return F.relu(F.concat([link(s) for s in slices], axis=0))

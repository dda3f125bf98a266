"""Batch normalisation followed by ReLU as one Chainer function, with optional independent
batches.

Every batch normalisation of a pre-activation ResNet is followed by a ReLU. Chainer computes the
pair as four function nodes per iteration (``BatchNormalization``, ``ReLU`` and their two
gradients), and on a GPU each costs kernel launches and Python around them, which is what sets
the speed of these small networks. :class:`BatchNormReLU` computes the same numbers as one node:
the arithmetic of Chainer's own (non-cuDNN) batch normalisation, ``max(y, 0)`` after it, and in
backward the ReLU mask (read from the output, as Chainer's ReLU reads it) then Chainer's
batch-normalisation gradient; the running averages are updated as ``L.BatchNormalization``
updates them (decay, unbiased variance).

``groups=G`` normalises G equal consecutive slices of the batch with their own statistics and
updates the running averages once per slice, in order: exactly what G separate forward passes of
the slices would do, in one pass. Step 2 of the method uses it to send the mixed and the clean
batch through the network together (:mod:`updaters.mixup`).

In test mode (``chainer.config.train`` False) :func:`batch_norm_relu` is Chainer's own
``relu(link(x))`` with the running averages.
"""
import chainer
import chainer.functions as F
import numpy
from chainer import function_node


def _split(x, groups):
    """``x`` (N, C, ...) as (G, N / G, C, ...)."""
    n = x.shape[0]
    if n % groups:
        raise ValueError('a batch of {} does not split into {} equal groups'.format(n, groups))
    return x.reshape((groups, n // groups) + x.shape[1:])


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


def batch_norm_relu(link, x, groups=1):
    """``relu(link(x))`` for an ``L.BatchNormalization`` link: in training mode one
    :class:`BatchNormReLU` node (statistics per slice when ``groups`` > 1), in test mode
    Chainer's own functions with the running averages."""
    if not chainer.config.train:
        if groups != 1:
            raise ValueError('groups are a training-mode feature (test mode uses the running '
                             'averages)')
        return F.relu(link(x))
    y, = BatchNormReLU(link.eps, link.decay, link.avg_mean, link.avg_var, groups).apply(
        (x, link.gamma, link.beta))
    return y

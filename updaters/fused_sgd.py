"""Momentum SGD with weight decay as one elementwise operation over all parameters.

Chainer's ``MomentumSGD`` with a ``WeightDecay`` hook updates a network parameter by parameter: on
a GPU, 98 parameters of PreAct ResNet-32 cost 98 weight-decay kernels, 98 update kernels and the
Python around each, every iteration. :class:`FusedMomentumSGD` keeps every parameter as a view
into one contiguous buffer (and its velocity as a view into another), gathers the gradients into a
third with one concatenation, and applies

    g = grad + weight_decay * param;  v = momentum * v - lr * g;  param += v

to the whole buffer at once: two operations per iteration. The arithmetic is Chainer's (the hook's
``g += rate * p``, then ``MomentumSGD``'s rule), so on the CPU the result is bit-identical to
``MomentumSGD`` + ``WeightDecay``, and on a GPU it is the same expression in one kernel (a
complete CUDA source in :mod:`updaters.cuda_sources`, compiled by NVRTC in the tests).

Snapshots are unchanged: the velocity lives in each parameter's update rule as the state ``v``
(a view into the velocity buffer) and every rule's ``t`` is the optimizer's, so a snapshot of one
optimizer resumes with the other.
"""
import chainer
import numpy
from chainer import optimizers

from updaters import cuda_sources


class FusedMomentumSGD(optimizers.MomentumSGD):
    """``MomentumSGD(lr, momentum)`` plus ``WeightDecay(weight_decay)`` as one operation.

    Call :meth:`setup` after the model is on its device (it moves every parameter into the
    buffer). A parameter without a gradient counts as a zero gradient (Chainer reallocates it as
    zeros before updating). Hooks added with ``add_hook``, or parameters replaced after setup
    (``to_device``), make the update take Chainer's per-parameter path.

    Attributes:
        operations (int): update operations (concatenation + kernel, or per-parameter calls of
            the fallback) run so far; the benchmark counts them per iteration.
    """

    def __init__(self, lr=0.01, momentum=0.9, weight_decay=0.0):
        super(FusedMomentumSGD, self).__init__(lr=lr, momentum=momentum)
        self.weight_decay = float(weight_decay)
        self.operations = 0
        self._params = ()
        self._data = self._velocity = None

    def setup(self, link):
        super(FusedMomentumSGD, self).setup(link)
        self._fuse()
        return self

    def _fuse(self):
        """Moves every parameter (and its velocity) into one contiguous buffer, as views."""
        params = [param for _, param in sorted(self.target.namedparams())]
        if not params or any(p.array is None for p in params):
            raise ValueError('FusedMomentumSGD needs a link whose parameters are initialised')
        dtypes = {p.array.dtype for p in params}
        if len(dtypes) != 1:
            raise ValueError('FusedMomentumSGD needs one parameter dtype, got {}'.format(dtypes))
        device = params[0].device
        xp = device.xp
        with chainer.using_device(device):
            sizes = [p.array.size for p in params]
            data = xp.empty(sum(sizes), dtype=dtypes.pop())
            velocity = xp.zeros_like(data)
            offset = 0
            for param, size in zip(params, sizes):
                view = data[offset:offset + size].reshape(param.array.shape)
                view[...] = param.array
                param.array = view
                rule = param.update_rule
                old = (rule.state or {}).get('v')
                rule._state = {'v': velocity[offset:offset + size].reshape(view.shape)}
                if old is not None:
                    rule._state['v'][...] = old
                offset += size
        self._params, self._data, self._velocity = tuple(params), data, velocity

    def _has_hooks(self):
        hooks = self._hookable
        return hooks is not None and bool(hooks._pre_update_hooks or hooks._post_update_hooks)

    def _fused(self):
        """Whether the parameters are still the views of the buffer (a ``to_device`` or an
        assignment to ``param.array`` would have replaced them)."""
        return all(p.array.base is self._data or p.array is self._data for p in self._params) \
            and all(p.update_rule._state is not None for p in self._params)

    def update(self, lossfun=None, *args, **kwds):
        if lossfun is not None:
            loss = lossfun(*args, **kwds)
            self.target.cleargrads()
            loss.backward()
            del loss
        if self._has_hooks() or not self._fused():
            self._update_per_parameter()
            return
        xp = chainer.backend.get_array_module(self._data)
        hyper = self.hyperparam
        with chainer.using_device(self._params[0].device):
            # a parameter without a gradient counts as a zero gradient, as Chainer's
            # reallocate_cleared_grads makes it before updating
            grad = xp.concatenate([xp.zeros(p.array.size, p.array.dtype) if p.grad is None
                                   else p.grad.ravel() for p in self._params])
            if xp is numpy:
                grad += self.weight_decay * self._data          # WeightDecay: g += rate * p
                self._velocity *= hyper.momentum                  # MomentumSGD: v *= momentum
                self._velocity -= hyper.lr * grad                 #              v -= lr * g
                self._data += self._velocity                      #              p += v
            else:
                cuda_sources.fused_momentum_sgd(grad, self._data, self._velocity, hyper.lr,
                                                hyper.momentum, self.weight_decay)
        self.operations += 2
        self.t += 1

    def _update_per_parameter(self):
        """Chainer's own path (hooks added by a caller, or parameters replaced since setup):
        ``GradientMethod.update`` with the weight decay as its first hook's arithmetic."""
        self.reallocate_cleared_grads()
        for param in self.target.params():
            param.grad = param.grad + self.weight_decay * param.array
        self.call_hooks('pre')
        self.t += 1
        for param in self.target.params():
            param.update_rule.t = self.t - 1
            param.update()
        self.call_hooks('post')
        self.operations += 2 * len(self._params)

    def serialize(self, serializer):
        for param in self._params:
            param.update_rule.t = self.t
        super(FusedMomentumSGD, self).serialize(serializer)

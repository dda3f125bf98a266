"""How much host-side work one training iteration is: Chainer function applications and
parameter-update operations.

On a GPU every Chainer function node is one or more kernel launches plus the Python around them,
and for a network of this size that host-side work, not the arithmetic, sets the speed. The
counts are the same on any device (they depend on the code, not on the numbers), so they can be
measured, and held to, on the CPU.
"""
import collections

import chainer
from chainer import function_hook


class FunctionCounter(function_hook.FunctionHook):
    """Counts function-node applications (``forward_preprocess``: every node applied, in the
    forward pass and inside back-propagation) and backward calls, by function label."""

    name = 'FunctionCounter'

    def __init__(self):
        self.applied = collections.Counter()
        self.backward = collections.Counter()

    def forward_preprocess(self, function, in_data):
        self.applied[function.label] += 1

    def backward_preprocess(self, function, in_data, out_grad):
        self.backward[function.label] += 1


class _UpdateCounter(object):
    """Counts per-parameter update calls and per-parameter optimizer-hook calls of Chainer's
    optimizers while active (the fused optimizer counts its own operations)."""

    def __init__(self):
        self.count = 0

    def __enter__(self):
        rule_update = chainer.optimizer.UpdateRule.update
        call_hook = chainer.optimizer.GradientMethod.call_hook
        counter = self

        def update(rule, param):
            counter.count += 1
            return rule_update(rule, param)

        def hook(optimizer, function):
            counter.count += (len(list(optimizer.target.params()))
                              if getattr(function, 'call_for_each_param', False) else 1)
            return call_hook(optimizer, function)

        self._saved = rule_update, call_hook
        chainer.optimizer.UpdateRule.update = update
        chainer.optimizer.GradientMethod.call_hook = hook
        return self

    def __exit__(self, *exc_info):
        chainer.optimizer.UpdateRule.update, chainer.optimizer.GradientMethod.call_hook = \
            self._saved


def count_iteration(update, optimizer):
    """Runs ``update()`` once and returns what it cost: ``function_applications`` (all nodes
    applied), ``backward_calls``, ``update_operations`` (the fused optimizer's operations, or
    Chainer's per-parameter update and hook calls) and ``by_function`` (applications per label).
    """
    functions = FunctionCounter()
    fused_before = getattr(optimizer, 'operations', None)
    with functions, _UpdateCounter() as updates:
        update()
    if fused_before is not None:
        operations = optimizer.operations - fused_before
    else:
        operations = updates.count
    return {'function_applications': sum(functions.applied.values()),
            'backward_calls': sum(functions.backward.values()),
            'update_operations': operations,
            'by_function': dict(functions.applied.most_common())}

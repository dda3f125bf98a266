"""What one training iteration asks of the device, counted on the CPU: Chainer function
applications and parameter-update operations (:func:`count_iteration`), and the array operations
(one kernel launch each on a GPU) and cuDNN-backed Chainer functions
(:func:`count_array_operations`, which runs the iteration with every NumPy array replaced by a
counting view).

The counts depend on the code, not on the device or the batch size, so they are measured, and
held to, on the CPU; they are counts, not GPU timings (a CuPy operation such as ``var`` may launch
more than one kernel, and a cuDNN call counts as one). The benchmark prints them per part.
"""
import collections
import contextlib
import sys

import chainer
import numpy
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


# ----------------------------------------------------------------------------------------------
# Array operations: each CuPy operation (elementwise, reduction, copy, gather, custom kernel) is
# one kernel launch on a GPU, each cuDNN-backed Chainer function one library call.

#: Chainer functions that are one cuDNN call on a GPU (where cuDNN is present): their own array
#: operations (NumPy's im2col, Chainer's generic batch normalisation) are not counted.
LIBRARY_CALLS = frozenset({
    'Convolution2DFunction', 'Convolution2DGradW', 'Deconvolution2DFunction',
    'BatchNormalization', 'BatchNormalizationGrad', 'FixedBatchNormalization',
    'ReLU', 'ReLUGrad2', 'ReLUGradCudnn'})
#: NumPy functions that return views or metadata: no device work.
_VIEWS = frozenset({
    'reshape', 'transpose', 'swapaxes', 'moveaxis', 'rollaxis', 'broadcast_to',
    'broadcast_arrays', 'expand_dims', 'squeeze', 'split', 'array_split', 'atleast_1d',
    'atleast_2d', 'atleast_3d', 'shape', 'ndim', 'size', 'result_type', 'may_share_memory',
    'shares_memory', 'iscomplexobj', 'isrealobj', 'isscalar', 'can_cast', 'asarray',
    'asanyarray', 'empty_like', 'min_scalar_type', 'promote_types'})
#: Array methods that are one operation each.
_METHODS = ('mean', 'var', 'std', 'sum', 'prod', 'max', 'min', 'argmax', 'argmin', 'all', 'any',
            'cumsum', 'dot', 'copy', 'fill', 'take', 'repeat', 'clip', 'sort', 'argsort', 'round',
            'nonzero', 'flatten', 'put')
#: Array methods that read the device from the host (a transfer and a wait on a GPU).
_HOST_READS = ('item', 'tolist', '__float__', '__int__', '__bool__', '__index__')
#: NumPy creation functions that write memory on a GPU (``empty`` allocates only).
_CREATION = ('zeros', 'ones', 'full', 'arange', 'eye', 'identity')


class _Tally(object):
    """Where the counted operations go while :func:`count_array_operations` runs."""

    def __init__(self):
        self.operations = collections.Counter()     # (who, name) -> count
        self.library_calls = collections.Counter()  # label -> count
        self.host_reads = 0
        self.depth = 0                              # > 0 inside a counted operation
        self.scopes = []                            # True where a library call's work runs

    def add(self, name):
        if self.depth or (self.scopes and self.scopes[-1]):
            return
        self.operations[(_caller(), name)] += 1


_TALLY = None


def _caller():
    """'chainer' when the operation is asked for by Chainer's code, else 'ours'."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get('__name__', '')
        if module != __name__ and not module.startswith('numpy'):
            return 'chainer' if module.split('.')[0] in ('chainer', 'chainerx') else 'ours'
        frame = frame.f_back
    return 'ours'


@contextlib.contextmanager
def _inside():
    if _TALLY is not None:
        _TALLY.depth += 1
    try:
        yield
    finally:
        if _TALLY is not None:
            _TALLY.depth -= 1


def _record(name):
    if _TALLY is not None:
        _TALLY.add(name)


def _plain(value):
    if isinstance(value, CountingArray):
        return value.view(numpy.ndarray)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _counting(value):
    if type(value) is numpy.ndarray:
        return value.view(CountingArray)
    if isinstance(value, tuple):
        return tuple(_counting(v) for v in value)
    if isinstance(value, list):
        return [_counting(v) for v in value]
    return value


def _has_array_index(key):
    keys = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, (numpy.ndarray, list)) for k in keys)


class CountingArray(numpy.ndarray):
    """A NumPy array that counts, while :func:`count_array_operations` runs, every operation
    asked of it: ufuncs (operators included) and their reductions, NumPy functions that write
    data, copying methods, gathers and scatters; views are free. Results are CountingArrays."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _record('{}.{}'.format(ufunc.__name__, method) if method != '__call__'
                else ufunc.__name__)
        with _inside():
            if out is not None:
                kwargs['out'] = _plain(out)
            result = getattr(ufunc, method)(*_plain(inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _counting(result)

    def __array_function__(self, func, types, args, kwargs):
        name = func.__name__
        copies = name not in _VIEWS and not (
            name == 'ascontiguousarray' and args[0].flags.c_contiguous)
        if copies:
            _record(name)
        with _inside():
            result = func(*_plain(args), **_plain(kwargs))
        return _counting(result)

    def __getitem__(self, key):
        if not _has_array_index(key):
            item = super(CountingArray, self).__getitem__(key)    # a view of this array ...
            if not isinstance(item, numpy.ndarray) and _TALLY is not None and not _TALLY.depth:
                _TALLY.host_reads += 1                            # ... or one element, read
            return item
        _record('gather')
        with _inside():
            return _counting(self.view(numpy.ndarray)[_plain(key)])

    def __setitem__(self, key, value):
        _record('scatter' if _has_array_index(key) else 'setitem')
        with _inside():
            self.view(numpy.ndarray)[_plain(key)] = _plain(value)

    def astype(self, dtype, *args, **kwargs):
        copy = kwargs.get('copy', args[3] if len(args) > 3 else True)
        if copy or numpy.dtype(dtype) != self.dtype:
            _record('astype')
        with _inside():
            return _counting(self.view(numpy.ndarray).astype(dtype, *args, **kwargs))

    def ravel(self, *args, **kwargs):
        if not self.flags.c_contiguous:
            _record('ravel')
        with _inside():
            return _counting(self.view(numpy.ndarray).ravel(*args, **kwargs))


def _method(name):
    def counted(self, *args, **kwargs):
        _record(name)
        with _inside():
            return _counting(getattr(self.view(numpy.ndarray), name)(*_plain(args),
                                                                      **_plain(kwargs)))
    counted.__name__ = name
    return counted


def _host_read(name):
    def read(self, *args, **kwargs):
        if _TALLY is not None and not _TALLY.depth:
            _TALLY.host_reads += 1
        return getattr(self.view(numpy.ndarray), name)(*args, **kwargs)
    read.__name__ = name
    return read


for _name in _METHODS:
    setattr(CountingArray, _name, _method(_name))
for _name in _HOST_READS:
    setattr(CountingArray, _name, _host_read(_name))


class _Scopes(function_hook.FunctionHook):
    """Marks where a library call's own work runs (its array operations are not counted) and
    counts the library calls."""

    name = 'ArrayOperationScopes'

    def __init__(self, tally):
        self.tally = tally

    def _enter(self, function, applied):
        library = function.label in LIBRARY_CALLS
        if library and applied:
            self.tally.library_calls[function.label] += 1
        self.tally.scopes.append(library)

    def forward_preprocess(self, function, in_data):
        self._enter(function, True)

    def forward_postprocess(self, function, in_data):
        self.tally.scopes.pop()

    def backward_preprocess(self, function, in_data, out_grad):
        self._enter(function, False)

    def backward_postprocess(self, function, in_data, out_grad):
        self.tally.scopes.pop()


#: NumPy's random generators: host-side work also on a GPU run (mix-up's one Beta draw).
_HOST_SIDE = ('default_rng',)
_host_depth = [0]


@contextlib.contextmanager
def _creation_counted():
    """NumPy's creation functions return CountingArrays (and count, while counting); NumPy's
    random generators run uncounted, on plain arrays."""
    saved = {name: getattr(numpy, name) for name in _CREATION + ('empty',)}
    saved_random = {name: getattr(numpy.random, name) for name in _HOST_SIDE}

    def host(function):
        def run(*args, **kwargs):
            _host_depth[0] += 1
            try:
                return function(*args, **kwargs)
            finally:
                _host_depth[0] -= 1
        return run

    def wrap(name, function):
        def create(*args, **kwargs):
            if _host_depth[0] or sys._getframe(1).f_globals.get(
                    '__name__', '').startswith('numpy'):
                return function(*args, **kwargs)         # host work, or NumPy's internals
            if name != 'empty':
                _record(name)
            with _inside():
                return _counting(function(*args, **kwargs))
        return create

    for name, function in saved.items():
        setattr(numpy, name, wrap(name, function))
    for name, function in saved_random.items():
        setattr(numpy.random, name, host(function))
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(numpy, name, function)
        for name, function in saved_random.items():
            setattr(numpy.random, name, function)


_OWN_PACKAGES = ('updaters', 'datasets', 'models', 'reproduce', 'chainer')


def _convert_link(link):
    for sub in link.links():
        for param in sub.params(include_uninit=False):
            param.array = _counting(param.array)
            if param.grad is not None:
                param.grad = _counting(param.grad)
        for name in sub._persistent:
            value = getattr(sub, name)
            if type(value) is numpy.ndarray:
                object.__setattr__(sub, name, value.view(CountingArray))


def _convert(obj, seen, depth=0):
    """Every NumPy array reachable from ``obj`` through the package's and Chainer's objects,
    replaced by its CountingArray view; fused optimizers rebuilt over counting buffers."""
    if id(obj) in seen or depth > 8:
        return
    seen.add(id(obj))
    if isinstance(obj, chainer.Link):
        _convert_link(obj)
        return
    if isinstance(obj, chainer.Optimizer):
        if getattr(obj, 'target', None) is not None:
            _convert(obj.target, seen, depth + 1)
            if hasattr(obj, '_fuse'):
                obj._fuse()          # the parameters again views of one (counting) buffer
        return
    attributes = getattr(obj, '__dict__', None)
    if attributes is None:
        return
    for name, value in list(attributes.items()):
        if type(value) is numpy.ndarray:
            attributes[name] = value.view(CountingArray)
        elif isinstance(value, (list, tuple)) and any(type(v) is numpy.ndarray for v in value):
            attributes[name] = type(value)(_counting(v) for v in value)
        elif isinstance(value, dict):
            for key, item in list(value.items()):
                if type(item) is numpy.ndarray:
                    value[key] = item.view(CountingArray)
                elif type(item).__module__.split('.')[0] in _OWN_PACKAGES:
                    _convert(item, seen, depth + 1)
        elif type(value).__module__.split('.')[0] in _OWN_PACKAGES:
            _convert(value, seen, depth + 1)


def count_array_operations(update, *roots):
    """Runs ``update()`` once with every NumPy array reachable from ``roots`` (an updater, a
    model...) counting, and returns: ``array_operations`` (``ours``: asked for by this package's
    code, ``chainer``: by Chainer's, both without the work inside library calls),
    ``library_calls`` (Chainer functions that are one cuDNN call on a GPU), ``host_reads``,
    ``device_calls`` (the sum: kernel launches plus library calls on a GPU, estimated) and
    ``by_operation``. The roots keep their counting arrays (use throw-away objects)."""
    global _TALLY
    seen = set()
    with _creation_counted():
        for root in roots:
            _convert(root, seen)
        tally = _Tally()
        _TALLY = tally
        try:
            with _Scopes(tally):
                update()
        finally:
            _TALLY = None
    ours = sum(n for (who, _), n in tally.operations.items() if who == 'ours')
    theirs = sum(n for (who, _), n in tally.operations.items() if who == 'chainer')
    calls = sum(tally.library_calls.values())
    return {
        'array_operations': {'ours': ours, 'chainer': theirs},
        'library_calls': calls,
        'host_reads': tally.host_reads,
        'device_calls': ours + theirs + calls,
        'by_operation': {'{} {}'.format(who, name): n
                         for (who, name), n in tally.operations.most_common()},
        'library_calls_by_function': dict(tally.library_calls.most_common()),
    }

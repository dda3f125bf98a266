"""Synthetic label noise as in Tanaka et al. (CVPR 2018), and its true transition matrix.

Both generators work on host (numpy) integer label vectors, never modify their input, return a
new int32 array, and are deterministic per seed: all randomness comes from one
``numpy.random.RandomState(seed)`` per call, drawn in a fixed order (documented per function).

How many samples are corrupted is ``round(rate * n)`` with Python's ``round`` (ties to even), n
being the number of samples (symmetric) or of samples of one source class (asymmetric)."""
import types

import numpy

#: CIFAR-10 asymmetric (class-dependent) noise, source class -> target class:
#: truck -> automobile, bird -> airplane, cat -> dog, dog -> cat, deer -> horse.
CIFAR10_ASYMMETRIC = types.MappingProxyType({9: 1, 2: 0, 3: 5, 5: 3, 4: 7})

KINDS = ('symmetric', 'asymmetric')


def _check_rate(rate):
    if isinstance(rate, bool) or not isinstance(rate, (int, float, numpy.integer, numpy.floating)):
        raise ValueError('rate must be a number in [0, 1), got {!r}'.format(rate))
    if not 0 <= rate < 1:
        raise ValueError('rate must be in [0, 1) (a fraction, e.g. 0.4 for 40 %), got {!r}'.format(
            rate))
    return float(rate)


def _check_n_classes(n_classes):
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, numpy.integer)) \
            or n_classes < 2:
        raise ValueError('n_classes must be an int >= 2, got {!r}'.format(n_classes))
    return int(n_classes)


def _check_labels(labels, n_classes):
    labels = numpy.asarray(labels)
    if labels.ndim != 1 or not numpy.issubdtype(labels.dtype, numpy.integer):
        raise ValueError('labels must be a 1-D array of integers (host numpy), got dtype {} '
                         'shape {}'.format(labels.dtype, labels.shape))
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError('labels must lie in [0, n_classes) = [0, {}), got min {} max {}; pass '
                         'the right n_classes'.format(n_classes, labels.min(), labels.max()))
    return labels


def _check_mapping(mapping, n_classes):
    items = []
    for source, target in dict(mapping).items():
        for cls in (source, target):
            if isinstance(cls, bool) or not isinstance(cls, (int, numpy.integer)) \
                    or not 0 <= cls < n_classes:
                raise ValueError('mapping {} -> {} names a class outside [0, {}); give integer '
                                 'classes of this data set'.format(source, target, n_classes))
        if source == target:
            raise ValueError('mapping sends class {} to itself; leave it out of the '
                             'mapping'.format(source))
        items.append((int(source), int(target)))
    return sorted(items)


def _n_corrupted(rate, n):
    return int(round(rate * n))


def symmetric_noise(labels, rate, n_classes=10, seed=0):
    """Symmetric noise: a share ``rate`` of samples get a uniformly random label.

    Protocol: ``RandomState(seed).permutation(n)`` orders the samples; the first ``round(rate * n)``
    of that order get ``randint(0, n_classes)`` (one vectorised draw), the true class included, so
    about ``(1 - 1 / n_classes) * rate`` of labels actually change. ``labels``: clean integer labels
    (n,) in [0, n_classes); ``rate`` in [0, 1); returns int32 noisy labels (n,)."""
    rate = _check_rate(rate)
    n_classes = _check_n_classes(n_classes)
    labels = _check_labels(labels, n_classes)
    noisy = labels.astype(numpy.int32)  # a copy
    rng = numpy.random.RandomState(seed)
    order = rng.permutation(len(labels))
    chosen = order[:_n_corrupted(rate, len(labels))]
    noisy[chosen] = rng.randint(0, n_classes, size=len(chosen))
    return noisy


def asymmetric_noise(labels, rate, seed=0, mapping=CIFAR10_ASYMMETRIC, n_classes=10):
    """Asymmetric (class-dependent) noise: part of each source class flips to its target.

    Protocol: for every source class of ``mapping`` in increasing order, its samples (selected
    by the *clean* label) are shuffled with ``RandomState(seed).permutation`` and exactly the
    first ``round(rate * n_class)`` get the target label. Classes not in the mapping are untouched.
    ``mapping``: source class -> target class (CIFAR-10's by default); returns int32 labels (n,)."""
    rate = _check_rate(rate)
    n_classes = _check_n_classes(n_classes)
    pairs = _check_mapping(mapping, n_classes)
    labels = _check_labels(labels, n_classes)
    noisy = labels.astype(numpy.int32)  # a copy
    rng = numpy.random.RandomState(seed)
    for source, target in pairs:
        members = rng.permutation(numpy.flatnonzero(labels == source))
        noisy[members[:_n_corrupted(rate, len(members))]] = target
    return noisy


def transition_matrix(kind, rate, n_classes=10, mapping=None, dtype=numpy.float32):
    """The true noise transition matrix of :func:`symmetric_noise` / :func:`asymmetric_noise`.

    ``T[i, j] = P(noisy label = j | clean label = i)``; every row sums to 1.

    * ``'symmetric'``: ``1 - rate + rate / c`` on the diagonal, ``rate / c`` elsewhere.
    * ``'asymmetric'``: for a source class i with target t, ``T[i, i] = 1 - rate`` and
      ``T[i, t] = rate``; identity rows for the other classes. ``mapping`` defaults to
      :data:`CIFAR10_ASYMMETRIC`.

    Returns a (c, c) array of ``dtype`` (float32: Chainer's default)."""
    rate = _check_rate(rate)
    n_classes = _check_n_classes(n_classes)
    if kind == 'symmetric':
        if mapping is not None:
            raise ValueError("mapping is only used with kind='asymmetric'; leave it None")
        t = numpy.full((n_classes, n_classes), rate / n_classes)
        t[numpy.diag_indices(n_classes)] += 1 - rate
    elif kind == 'asymmetric':
        pairs = _check_mapping(CIFAR10_ASYMMETRIC if mapping is None else mapping, n_classes)
        t = numpy.eye(n_classes)
        for source, target in pairs:
            t[source, source] = 1 - rate
            t[source, target] = rate
    else:
        raise ValueError('unknown noise kind {!r}; use one of {}'.format(kind, KINDS))
    return t.astype(dtype)

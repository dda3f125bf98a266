"""Batched training augmentation: mean subtraction, zero-padded random crop, horizontal flip.

All functions take a whole mini-batch of uint8 images (numpy or cupy; the result lives on the
same device) and do the work with array operations only, with no per-sample Python loop and no
host round trip. The order is the anchors': ``x / 255 - mean``, then pad that *normalised* image
with zeros, then crop, then flip."""
import chainer.backend
import numpy


def _check_images(x, mean):
    if x.ndim != 4 or x.dtype != numpy.uint8:
        raise ValueError('x must be uint8 images of shape (N, C, H, W), got dtype {} shape '
                         '{}'.format(x.dtype, x.shape))
    if tuple(mean.shape) != tuple(x.shape[1:]):
        raise ValueError('mean must have the shape of one image {}, got {}; compute it with '
                         'datasets.mean_image(train_x)'.format(tuple(x.shape[1:]), mean.shape))


def normalize(x, mean):
    """Evaluation-time preprocessing: float32 ``x / 255 - mean`` on x's device, of uint8 images
    ``x`` (N, C, H, W; numpy or cupy) and the float32 (C, H, W) mean image in [0, 1] units (moved
    to x's device if needed: keep it there to avoid a copy per call)."""
    xp = chainer.backend.get_array_module(x)
    _check_images(x, mean)
    return x.astype(xp.float32) / 255.0 - xp.asarray(mean, dtype=xp.float32)


def crop_flip(x, mean, offsets, flips, pad):
    """Normalise, zero-pad, crop at given offsets and flip where asked: the deterministic core,
    float32 (N, C, H, W) on x's device.

    Args:
        x (numpy.ndarray or cupy.ndarray): uint8 images, shape (N, C, H, W).
        mean (array): float32 (C, H, W) mean image in [0, 1] units.
        offsets (array): integers, shape (N, 2): (top, left) corner of each H x W window in the
            padded (H + 2 pad) x (W + 2 pad) image, each in [0, 2 * pad]. Checked on the host
            for numpy input only (a check on the GPU would cost a device synchronisation).
        flips (array): bool, shape (N,): flip that crop horizontally (left <-> right).
        pad (int): zero padding on each side, in the mean-subtracted space.
    """
    xp = chainer.backend.get_array_module(x)
    normed = normalize(x, mean)
    n, c, h, w = x.shape
    if not isinstance(pad, (int, numpy.integer)) or pad < 0:
        raise ValueError('pad must be a non-negative int, got {!r}'.format(pad))
    offsets = xp.asarray(offsets)
    flips = xp.asarray(flips)
    if offsets.shape != (n, 2) or offsets.dtype.kind not in 'iu':
        raise ValueError('offsets must be integers of shape ({}, 2), got dtype {} shape '
                         '{}'.format(n, offsets.dtype, offsets.shape))
    if flips.shape != (n,) or flips.dtype != numpy.bool_:
        raise ValueError('flips must be bool of shape ({},), got dtype {} shape {}'.format(
            n, flips.dtype, flips.shape))
    if xp is numpy and n and (offsets.min() < 0 or offsets.max() > 2 * pad):
        raise ValueError('offsets must lie in [0, 2 * pad] = [0, {}], got min {} max {}'.format(
            2 * pad, offsets.min(), offsets.max()))
    if pad:
        padded = xp.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=xp.float32)
        padded[:, :, pad:pad + h, pad:pad + w] = normed
    else:
        padded = normed
    rows = offsets[:, 0:1] + xp.arange(h)[None, :]              # (N, H)
    cols = offsets[:, 1:2] + xp.arange(w)[None, :]              # (N, W)
    cols = xp.where(flips[:, None], cols[:, ::-1], cols)
    return padded[xp.arange(n)[:, None, None, None], xp.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def random_crop_flip(x, mean, rng, pad=4, flip=True):
    """Random pad-and-crop plus random horizontal flip of a whole mini-batch.

    Draws exactly two sequences from ``rng``, always in this order and whatever ``pad`` and
    ``flip`` are (so the stream advances by the same amount per batch): offsets
    ``rng.randint(0, 2 * pad + 1, size=(N, 2))`` and ``rng.random_sample(N) < 0.5`` for the flips
    (ignored when ``flip`` is False). Then calls :func:`crop_flip`: float32 (N, C, H, W) on x's
    device.

    Args:
        x (numpy.ndarray or cupy.ndarray): uint8 images, shape (N, C, H, W).
        mean (array): float32 (C, H, W) mean image in [0, 1] units.
        rng: a source of random arrays on x's device with ``randint(low, high, size)`` and
            ``random_sample(size)``: ``numpy.random.RandomState`` for numpy input,
            ``cupy.random.RandomState`` for cupy, or a counter-based source with those methods.
        pad (int): zero padding on each side (0: no crop).
        flip (bool): whether to flip half of the images (on average) horizontally.
    """
    xp = chainer.backend.get_array_module(x)
    if not (callable(getattr(rng, 'randint', None))
            and callable(getattr(rng, 'random_sample', None))):
        raise ValueError('rng must offer randint and random_sample (a numpy or cupy '
                         'RandomState, or any source with those two methods), got {}'.format(
                             type(rng).__module__ + '.' + type(rng).__name__))
    if not isinstance(pad, (int, numpy.integer)) or pad < 0:
        raise ValueError('pad must be a non-negative int, got {!r}'.format(pad))
    n = x.shape[0]
    offsets = rng.randint(0, 2 * pad + 1, size=(n, 2))
    flips = rng.random_sample(n) < 0.5
    for drawn in (offsets, flips):
        if chainer.backend.get_array_module(drawn) is not xp:
            raise ValueError('rng draws {} arrays but the images are {} arrays; use a {}.random.'
                             'RandomState (or a source on the images\' device)'.format(
                                 chainer.backend.get_array_module(drawn).__name__, xp.__name__,
                                 xp.__name__))
    if not flip:
        flips = xp.zeros(n, dtype=xp.bool_)
    return crop_flip(x, mean, offsets, flips, pad)

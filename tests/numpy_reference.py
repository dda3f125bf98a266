"""What the updater tests share: float64 numpy references, a tiny linear setting and a
one-iteration observer."""
import chainer
import chainer.links as L
import numpy

from updaters.feed import DeviceImageFeed, IndexIterator


def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - numpy.log(numpy.exp(z).sum(axis=1, keepdims=True))


def numeric_grad(f, w, eps=1e-6):
    """Central finite differences of the scalar function ``f`` at ``w``."""
    g = numpy.zeros_like(w)
    for i in numpy.ndindex(w.shape):
        w1, w2 = w.copy(), w.copy()
        w1[i] += eps
        w2[i] -= eps
        g[i] = (f(w1) - f(w2)) / (2 * eps)
    return g


def linear_setting(n, d, c, seed=0, batch=None):
    """Images whose pixels are the features and a linear model: ``(model, SGD(0.1) optimizer,
    feed, unshuffled iterator, float64 features)`` for ``n`` images of ``d`` pixels, ``c``
    classes."""
    rs = numpy.random.RandomState(seed)
    images = rs.randint(0, 256, size=(n, 1, 2, d // 2)).astype(numpy.uint8)
    model = L.Linear(d, c, initialW=rs.normal(size=(c, d)) * 0.5)
    optimizer = chainer.optimizers.SGD(lr=0.1)
    optimizer.setup(model)
    feed = DeviceImageFeed(images, lambda x, rng: x.astype(numpy.float32) / 255, seed=0)
    iterator = IndexIterator(n, batch or n, seed=seed, shuffle=False)
    features = images.reshape(n, d).astype(numpy.float64) / 255
    return model, optimizer, feed, iterator, features


def observe(updater):
    """One ``updater.update()``; the values it reported, as host floats (numpy or cupy)."""
    observation = {}
    reporter = chainer.Reporter()
    reporter.add_observer('main', updater.model)
    with reporter.scope(observation):
        updater.update()
    cpu = chainer.backend.CpuDevice()
    return {k: float(cpu.send(getattr(v, 'array', v))) for k, v in observation.items()}

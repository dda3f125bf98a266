"""What the updater tests share: float64 numpy references and a one-iteration observer."""
import chainer
import numpy


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


def observe(updater):
    """One ``updater.update()``; the values it reported, as floats."""
    observation = {}
    reporter = chainer.Reporter()
    reporter.add_observer('main', updater.model)
    with reporter.scope(observation):
        updater.update()
    return {k: float(v.array if hasattr(v, 'array') else v) for k, v in observation.items()}

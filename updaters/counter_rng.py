"""Counter-based random numbers that are the same on numpy and cupy and need no saved state.

Every random draw of a run (shuffled epoch orders, crop offsets, flips, mix-up partners) is a pure
function of ``(seed, stream, counter, element)``: a SplitMix64-style hash of those integers. So

* a resumed run draws exactly what an uninterrupted one would (the counters are the epoch or the
  iteration, which Chainer's own serializers already restore; there is no generator state to save);
* numpy and cupy give bit-identical draws, which makes CPU/GPU comparisons exact;
* nothing is drawn on the host and copied to the device inside an iteration (mix-up's one
  lambda per batch is a host float, a kernel argument), and nothing inside an iteration sorts
  (``small_permutation``; a sort on CuPy waits for the device).

``CounterRandom(xp, seed, stream, counter)`` offers the two methods of ``RandomState`` that the
augmentation code uses (``randint`` and ``random_sample``) plus ``permutation``; each call
consumes a fresh sub-stream, so successive calls are independent."""
import numpy

_GOLDEN = 0x9E3779B97F4A7C15
_MUL1 = 0xBF58476D1CE4E5B9
_MUL2 = 0x94D049BB133111EB
_MASK = (1 << 64) - 1

STREAM_ORDER = 1
STREAM_AUGMENT = 2
STREAM_MIXUP = 3


def _mix_int(z):
    """SplitMix64 finaliser on a Python int (host side, for keys)."""
    z &= _MASK
    z = ((z ^ (z >> 30)) * _MUL1) & _MASK
    z = ((z ^ (z >> 27)) * _MUL2) & _MASK
    return z ^ (z >> 31)


def _key(*parts):
    key = 0
    for part in parts:
        key = _mix_int(key + _GOLDEN + int(part))
    return key


def _mix_array(xp, z):
    """SplitMix64 finaliser, elementwise on a uint64 array (wrap-around multiplication)."""
    z = z ^ (z >> xp.uint64(30))
    z = z * xp.uint64(_MUL1)
    z = z ^ (z >> xp.uint64(27))
    z = z * xp.uint64(_MUL2)
    return z ^ (z >> xp.uint64(31))


def random_bits(xp, key, size):
    """``size`` pseudo-random uint64 values (1-d) for the integer ``key``."""
    counter = xp.arange(size, dtype=xp.uint64)
    with numpy.errstate(over='ignore'):
        return _mix_array(xp, counter * xp.uint64(_GOLDEN) + xp.uint64(_mix_int(key)))


def uniform(xp, key, size):
    """float64 values uniform on [0, 1), from the top 53 bits of ``random_bits``."""
    bits = random_bits(xp, key, size) >> xp.uint64(11)
    return bits.astype(xp.float64) * (1.0 / (1 << 53))


class CounterRandom(object):
    """A stateless-by-construction random source for one (seed, stream, counter).

    Args:
        xp: ``numpy`` or ``cupy``; the arrays it returns live there.
        seed (int): the run's seed for this kind of randomness.
        stream (int): which kind of randomness (``STREAM_*``), so streams never overlap.
        counter (int): the iteration or epoch the draws belong to.
    """

    def __init__(self, xp, seed, stream, counter):
        self.xp = xp
        self._base = _key(seed, stream, counter)
        self._calls = 0

    def _next_key(self):
        self._calls += 1
        return _key(self._base, self._calls)

    def random_sample(self, size):
        shape = (size,) if numpy.isscalar(size) else tuple(size)
        n = int(numpy.prod(shape))
        return uniform(self.xp, self._next_key(), n).reshape(shape)

    def randint(self, low, high=None, size=None):
        if high is None:
            low, high = 0, low
        shape = () if size is None else ((size,) if numpy.isscalar(size) else tuple(size))
        n = int(numpy.prod(shape)) if shape else 1
        bits = random_bits(self.xp, self._next_key(), n)
        values = (bits % self.xp.uint64(high - low)).astype(self.xp.int64) + low
        return values.reshape(shape)

    def permutation(self, n):
        """A uniformly random permutation of ``range(n)`` as an int32 array (argsort of keys)."""
        keys = random_bits(self.xp, self._next_key(), n)
        return self.xp.argsort(keys).astype(self.xp.int32)

    def small_permutation(self, n):
        """A uniformly random permutation of ``range(n)`` (int32) without a sort: the rank of
        each of n random keys among the others (ties, which 64-bit keys make vanishingly rare,
        broken by position). It costs n x n comparisons, so it is for a mini-batch, and it never
        waits for the device (a sort on CuPy does)."""
        xp = self.xp
        keys = random_bits(xp, self._next_key(), n)
        lower = keys[None, :] < keys[:, None]
        tie_before = (keys[None, :] == keys[:, None]) & (
            xp.arange(n)[None, :] < xp.arange(n)[:, None])
        return (lower | tie_before).sum(axis=1).astype(xp.int32)

    def host_beta(self, a, b):
        """One Beta(a, b) draw as a Python float, computed on the host (no device round trip)."""
        return float(numpy.random.default_rng(self._next_key()).beta(a, b))

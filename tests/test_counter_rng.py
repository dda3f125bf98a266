import numpy

from updaters.counter_rng import CounterRandom, STREAM_AUGMENT, STREAM_ORDER


def test_same_key_same_draws_and_other_keys_differ():
    a = CounterRandom(numpy, 3, STREAM_AUGMENT, 10)
    b = CounterRandom(numpy, 3, STREAM_AUGMENT, 10)
    assert numpy.array_equal(a.random_sample(50), b.random_sample(50))
    assert numpy.array_equal(a.randint(0, 9, size=(4, 2)), b.randint(0, 9, size=(4, 2)))
    first = CounterRandom(numpy, 3, STREAM_AUGMENT, 10).random_sample(50)
    for other in [CounterRandom(numpy, 4, STREAM_AUGMENT, 10),
                  CounterRandom(numpy, 3, STREAM_ORDER, 10),
                  CounterRandom(numpy, 3, STREAM_AUGMENT, 11)]:
        assert not numpy.array_equal(first, other.random_sample(50))


def test_successive_calls_are_independent_streams():
    rng = CounterRandom(numpy, 0, STREAM_AUGMENT, 0)
    assert not numpy.array_equal(rng.random_sample(20), rng.random_sample(20))


def test_uniform_and_randint_distributions():
    rng = CounterRandom(numpy, 1, STREAM_AUGMENT, 0)
    u = rng.random_sample(200000)
    assert u.min() >= 0 and u.max() < 1
    # mean 1/2 (sd of the mean 0.00065) and a flat histogram (each decile 0.1 +- 0.005)
    assert abs(u.mean() - 0.5) < 0.004
    assert numpy.allclose(numpy.histogram(u, bins=10, range=(0, 1))[0] / u.size, 0.1, atol=0.005)
    k = rng.randint(2, 7, size=100000)
    assert k.min() == 2 and k.max() == 6
    assert numpy.allclose(numpy.bincount(k - 2) / k.size, 0.2, atol=0.01)


def test_permutation_is_a_permutation_and_varies():
    perms = [CounterRandom(numpy, 0, STREAM_ORDER, e).permutation(1000) for e in range(3)]
    for p in perms:
        assert p.dtype == numpy.int32
        assert numpy.array_equal(numpy.sort(p), numpy.arange(1000))
    assert not numpy.array_equal(perms[0], perms[1])
    # each position is uniform over the values: the first element over many keys
    firsts = [CounterRandom(numpy, 0, STREAM_ORDER, e).permutation(4)[0] for e in range(4000)]
    assert numpy.allclose(numpy.bincount(firsts) / 4000, 0.25, atol=0.03)


def test_host_beta_is_reproducible_and_has_the_beta_mean():
    draws = [CounterRandom(numpy, 0, 3, t).host_beta(2.0, 2.0) for t in range(4000)]
    again = [CounterRandom(numpy, 0, 3, t).host_beta(2.0, 2.0) for t in range(4000)]
    assert draws == again
    assert all(isinstance(d, float) and 0 < d < 1 for d in draws)
    # Beta(2, 2): mean 1/2, variance 1/20 (sd of the mean 0.0035)
    assert abs(numpy.mean(draws) - 0.5) < 0.015
    assert abs(numpy.var(draws) - 0.05) < 0.005


def test_small_permutation_is_a_uniform_permutation_without_a_sort(monkeypatch):
    monkeypatch.setattr(numpy, 'argsort', None)        # no sort may be used
    seen = set()
    first = []
    for counter in range(400):
        perm = CounterRandom(numpy, 7, 3, counter).small_permutation(4)
        assert perm.dtype == numpy.int32 and sorted(perm.tolist()) == [0, 1, 2, 3]
        seen.add(tuple(perm.tolist()))
        first.append(int(perm[0]))
    assert len(seen) == 24                               # every permutation of 4 occurs
    assert numpy.bincount(first).min() > 70              # about 100 each
    big = CounterRandom(numpy, 1, 3, 0).small_permutation(128)
    assert sorted(big.tolist()) == list(range(128))

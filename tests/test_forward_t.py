"""Forward T with an estimated matrix: Patrini et al.'s estimator against a plain numpy
reference, and the run that trains the cross-entropy network, estimates T from it and trains
Forward T with it."""
import json
import os
import shutil

import chainer
import numpy
import pytest

from reproduce import experiment
from reproduce.batch import runner
from reproduce.run import launch, training
from updaters.baselines import ESTIMATE_FLOOR, estimate_transition


def patrini_reference(probabilities, percentile=97.0):
    """The estimator as Patrini et al.'s code states it, on a copy (their loop filters the
    shared array in place), with numpy's own percentile."""
    eta = numpy.array(probabilities, dtype=numpy.float64)
    n, c = eta.shape
    t = numpy.empty((c, c))
    for i in range(c):
        column = eta[:, i].copy()
        if percentile < 100:    # 100: no filter (their filter_outlier=False)
            threshold = numpy.percentile(column, percentile, method='higher')
            column[column >= threshold] = 0.0
        t[i] = eta[numpy.argmax(column)]
    t = numpy.maximum(t, ESTIMATE_FLOOR)
    return t / t.sum(axis=1, keepdims=True)


def softmax_rows(rng, n, c, scale=3.0):
    z = rng.normal(scale=scale, size=(n, c))
    e = numpy.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(numpy.float32)


@pytest.mark.parametrize('n, c, percentile', [(500, 10, 97.0), (37, 4, 97.0), (200, 14, 90.0),
                                              (64, 3, 100.0)])
def test_estimate_matches_the_reference(n, c, percentile):
    p = softmax_rows(numpy.random.RandomState(n), n, c)
    got = estimate_transition(p, percentile)
    assert got.dtype == numpy.float32 and got.shape == (c, c)
    numpy.testing.assert_allclose(got, patrini_reference(p, percentile), rtol=1e-5, atol=1e-7)
    numpy.testing.assert_allclose(got.sum(axis=1), 1, rtol=1e-6)


def test_the_percentile_filter_skips_over_confident_outliers():
    # p(noisy | x) = T[clean] for nearly unambiguous examples (40 %), a mix for the rest, and
    # 2 % over-confident outliers: below the 97th percentile the most confident example of
    # class i is a nearly unambiguous one, so row i is close to T[i]; the plain argmax (100)
    # picks an outlier instead
    rng = numpy.random.RandomState(0)
    n, c = 2000, 5
    t = rng.dirichlet(numpy.ones(c), size=c) * 0.3 + 0.7 * numpy.eye(c)
    clean = rng.randint(0, c, size=n)
    w = numpy.where(rng.uniform(size=n) < 0.4, rng.uniform(0.97, 1.0, size=n),
                    rng.uniform(0, 0.5, size=n))[:, None]
    posterior = (1 - w) * (rng.dirichlet(numpy.ones(c), size=n) @ t) + w * t[clean]
    outliers = rng.uniform(size=n) < 0.02
    posterior[outliers] = 0.98 * numpy.eye(c)[clean[outliers]] + 0.02 / c
    got = estimate_transition(posterior.astype(numpy.float32))
    numpy.testing.assert_allclose(got, t, atol=0.02)
    plain = estimate_transition(posterior.astype(numpy.float32), 100.0)
    assert numpy.abs(plain - t).max() > 0.1


def test_estimate_floors_rounded_zeros_and_refuses_bad_input():
    p = numpy.eye(3, dtype=numpy.float32)[[0, 1, 1, 0, 1]]    # class 2 never predicted
    got = estimate_transition(p, 100.0)
    assert (got >= ESTIMATE_FLOOR * 0.99).all() and numpy.isfinite(numpy.log(got)).all()
    with pytest.raises(ValueError, match='percentile'):
        estimate_transition(p, 0)
    with pytest.raises(ValueError, match='no examples'):
        estimate_transition(numpy.zeros((0, 3), numpy.float32))


def test_transition_defaults_and_refusals(tmp_path):
    assert experiment.RunConfig(dataset='digits').transition == 'true'
    config = experiment.RunConfig(dataset='clothing1m', noise='real', rate=0.0, data_dir='d',
                                  weights='none')
    assert config.transition == 'estimate'
    with pytest.raises(ValueError, match='no true noise transition matrix'):
        experiment.RunConfig(dataset='clothing1m', noise='real', rate=0.0, data_dir='d',
                             weights='none', transition='true')
    given = tmp_path / 't.npy'
    numpy.save(str(given), numpy.eye(10))
    assert experiment.RunConfig(transition=str(given)).identity()['transition'] == 't.npy'
    assert experiment.RunConfig(transition='estimate').identity()['transition'] == 'estimate'


def test_an_estimated_forward_t_shares_a_unit_with_its_cross_entropy_network(tmp_path):
    base = dict(dataset='digits', noise='symmetric', progress=False, transition='estimate')
    units = runner.plan(base, [0.5], [0, 1], experiment.METHODS, 'root')
    assert [u.methods for u in units[:3]] == [('tanaka', 'ours'), ('cross_entropy', 'forward_t'),
                                              ('pencil',)]
    alone = runner.plan(base, [0.5], [0], ('forward_t',), 'root')
    assert [u.methods for u in alone] == [('forward_t',)]
    assert alone[0].parts == ('cross_entropy', 'forward_t')
    alone = runner.plan(base, [0.5], [0], ('forward_t',), str(tmp_path))
    alone[0].write_config()               # its command starts it from there
    command = alone[0].command()
    config, methods, _ = experiment.parse(command[command.index(runner.EXPERIMENT) + 1:])
    assert config.transition == 'estimate' and methods == ['forward_t']
    given = runner.plan(dict(base, transition='true'), [0.5], [0], experiment.METHODS, 'root')
    assert [u.methods for u in given] == [('tanaka', 'ours'), ('cross_entropy',), ('forward_t',),
                                          ('pencil',)]


def test_forward_t_trains_with_the_matrix_estimated_from_the_cross_entropy_network(tmp_path):
    config = experiment.RunConfig(dataset='digits', noise='asymmetric', rate=0.4, progress=False,
                                  transition='estimate', iterations_per_epoch=4,
                                  overrides={'step2': {'epochs': 2, 'milestones': (1,)}})
    out = str(tmp_path / 'run')
    results = launch.run(config, out, methods=('forward_t',))
    assert set(results) == {'cross_entropy', 'forward_t'}   # the network the estimate needs
    saved = numpy.load(os.path.join(out, 'forward_t', 'transition.npy'))
    with open(os.path.join(out, 'forward_t', 'result.json')) as f:
        result = json.load(f)
    assert result['transition']['source'] == 'estimated'
    assert result['transition']['percentile'] == 97.0
    numpy.testing.assert_allclose(result['transition']['matrix'], saved)

    # the estimate again, from the saved network's outputs on the un-augmented training images
    data = config.spec.load(config)
    model = training.build_model(config, data, config.settings())
    chainer.serializers.load_npz(os.path.join(out, 'cross_entropy', 'model.npz'), model)
    x = data.train_x.astype(numpy.float32) / 255 - data.mean   # scaled to [0, 1], mean image off
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        logits = model(x).array.astype(numpy.float64)
    e = numpy.exp(logits - logits.max(axis=1, keepdims=True))
    numpy.testing.assert_allclose(saved, patrini_reference(e / e.sum(axis=1, keepdims=True)),
                                  rtol=1e-4, atol=1e-5)

    # a resume reads the saved estimate instead of recomputing it; the finished parts are kept
    os.remove(os.path.join(out, 'forward_t', 'result.json'))
    numpy.save(os.path.join(out, 'forward_t', 'transition.npy'), saved)
    again = launch.run(config, out, methods=('forward_t',))
    assert again['cross_entropy'] == json.loads(json.dumps(results['cross_entropy']))
    numpy.testing.assert_allclose(again['forward_t']['transition']['matrix'], saved)


def test_a_missing_network_is_named(tmp_path):
    config = experiment.RunConfig(dataset='digits', progress=False, transition='estimate',
                                  iterations_per_epoch=2,
                                  overrides={'step2': {'epochs': 1, 'milestones': (1,)}})
    out = tmp_path / 'run'
    launch.run(config, str(out), methods=('cross_entropy',))
    model = out / 'cross_entropy' / 'model.npz'
    os.remove(model)      # beside its snapshot: cross entropy finishes again and saves it
    assert 'forward_t' in launch.run(config, str(out), methods=('forward_t',))
    assert os.path.exists(model)
    shutil.rmtree(out / 'forward_t')
    os.remove(model)      # without the snapshot either, the missing network is named
    os.remove(out / 'cross_entropy' / 'snapshot.npz')
    with pytest.raises(FileNotFoundError, match='model.npz is missing'):
        launch.run(config, str(out), methods=('forward_t',))

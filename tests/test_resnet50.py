"""models/resnet50.py: ImageNet weights from a ResNet50Layers .npz, the new classifier, forward.

The network has 25M parameters: one ``L.ResNet50Layers`` stands for the converted ImageNet
weights and one ``ResNet50`` is loaded from it, both built once per module.
"""
import numpy
import pytest

import chainer
import chainer.links as L

from models.resnet50 import ResNet50, convert_caffemodel, load_imagenet_weights


def _persistent_and_params(link):
    """{path: array} of every parameter and batch-norm statistic under ``link``."""
    arrays = {name: param.array for name, param in link.namedparams()}
    for path, sub in link.namedlinks():
        if isinstance(sub, L.BatchNormalization):
            arrays[path + '/avg_mean'] = sub.avg_mean
            arrays[path + '/avg_var'] = sub.avg_var
    return arrays


@pytest.fixture(scope='module')
def imagenet(tmp_path_factory):
    """A ResNet50Layers with random weights and statistics, saved as the converter saves it."""
    rng = numpy.random.RandomState(0)
    layers = L.ResNet50Layers(pretrained_model=None)
    for link in layers.links():
        if isinstance(link, L.BatchNormalization):   # default 0/1 values would hide a no-op load
            link.avg_mean[...] = rng.uniform(-0.1, 0.1, link.avg_mean.shape)
            link.avg_var[...] = rng.uniform(0.5, 2.0, link.avg_var.shape)
            link.gamma.array[...] = rng.uniform(0.5, 1.5, link.gamma.shape)
            link.beta.array[...] = rng.uniform(-0.1, 0.1, link.beta.shape)
    path = tmp_path_factory.mktemp('weights') / 'resnet50_imagenet.npz'
    chainer.serializers.save_npz(str(path), layers, compression=False)
    return layers, path


@pytest.fixture(scope='module')
def model(imagenet):
    return ResNet50(n_classes=14, pretrained_path=str(imagenet[1]))


def test_every_trunk_array_is_loaded(imagenet, model):
    source = _persistent_and_params(imagenet[0])
    loaded = _persistent_and_params(model.trunk)
    assert set(loaded) == {k for k in source if not k.startswith('/fc6/')}
    assert len(loaded) == 53 + 1 + 53 * 4   # conv W, conv1 bias, BN gamma/beta/mean/var
    for name, array in loaded.items():
        numpy.testing.assert_array_equal(array, source[name], err_msg=name)


def test_new_classifier_replaces_the_imagenet_one(model):
    assert model.fc.W.shape == (14, 2048)
    assert model.fc.b.shape == (14,)
    assert not hasattr(model.trunk, 'fc6')
    names = {name for name, _ in model.namedparams()}
    assert '/fc/W' in names and not any('fc6' in name for name in names)


def test_forward_gives_logits_from_pool5(imagenet, model):
    x = numpy.random.RandomState(1).uniform(-100, 100, (1, 3, 64, 64)).astype(numpy.float32)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        y = model(x)
        pool5 = imagenet[0].forward(x, layers=['pool5'])['pool5']
        expected = model.fc(pool5)
    assert y.shape == (1, 14) and y.dtype == numpy.float32
    numpy.testing.assert_allclose(y.array, expected.array, rtol=1e-5, atol=1e-5)


def test_missing_weights_name_the_file_and_the_conversion(tmp_path):
    missing = tmp_path / 'resnet50_imagenet.npz'
    with pytest.raises(FileNotFoundError) as error:
        ResNet50(pretrained_path=str(missing))
    assert str(missing) in str(error.value)
    assert 'ResNet-50-model.caffemodel' in str(error.value)
    assert 'convert_caffemodel' in str(error.value)


def test_caffemodel_is_refused_with_the_conversion_recipe(tmp_path):
    caffemodel = tmp_path / 'ResNet-50-model.caffemodel'
    caffemodel.write_bytes(b'')
    with pytest.raises(ValueError, match='convert_caffemodel'):
        ResNet50(pretrained_path=caffemodel)


def test_npz_of_another_network_is_refused(tmp_path):
    other = tmp_path / 'other.npz'
    numpy.savez(str(other), something=numpy.zeros(3))
    with pytest.raises(ValueError, match='not a ResNet50Layers .npz'):
        load_imagenet_weights(L.Linear(3, 2), str(other))


def test_convert_names_a_missing_caffemodel(tmp_path):
    missing = tmp_path / 'ResNet-50-model.caffemodel'
    with pytest.raises(FileNotFoundError, match='ResNet-50-model.caffemodel'):
        convert_caffemodel(str(missing), str(tmp_path / 'out.npz'))

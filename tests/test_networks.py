"""Architecture tests over the registry: exact parameter counts, shapes, checkpoint names."""
import numpy as np
import pytest
import tensorflow as tf

import official
from common import layers, trainer
from conftest import run_train

# Reference trainable-parameter counts at 1000 classes (REFERENCES.md, decisions table).
PARAMETERS = {
    'densenet121': 7978856,
}
# A few variable names per network that checkpoints (and weight converters) rely on.
VARIABLE_NAMES = {
    'densenet121': ['densenet121/conv0/kernel', 'densenet121/norm0/moving_variance',
                    'densenet121/denseblock4/denselayer16/conv2/kernel',
                    'densenet121/transition3/conv/kernel', 'densenet121/norm5/gamma',
                    'densenet121/classifier/bias'],
}


def test_registry_is_covered():
    assert sorted(PARAMETERS) == sorted(official.NETWORK_NAMES)


@pytest.mark.parametrize('name', official.NETWORK_NAMES)
def test_parameter_count_equals_reference(name):
    assert trainer.parameter_count(official.load(name)) == PARAMETERS[name]


@pytest.mark.parametrize('name', official.NETWORK_NAMES)
def test_logits_shape_and_variable_names(name):
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [2, 224, 224, 3])
        logits = official.load(name).build(images, True, 7)
        assert logits.shape.as_list() == [2, 7]
        names = {v.op.name for v in tf.compat.v1.global_variables()}
    assert set(VARIABLE_NAMES[name]) <= names


def test_densenet_feature_map_is_7x7_at_224():
    """torchvision's stem (BN, padded max-pool) gives 56x56, then 28, 14, 7."""
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, 224, 224, 3])
        official.load('densenet121').build(images, False, 10)
        graph = tf.compat.v1.get_default_graph()
        norm5 = graph.get_tensor_by_name('densenet121/norm5/FusedBatchNormV3:0')
        assert norm5.shape.as_list() == [1, 7, 7, 1024]


def test_conv_padding_is_symmetric_like_pytorch():
    """3x3/2 conv with padding 1 on a 4x4 map of ones: PyTorch gives [[4, 6], [6, 9]];
    TF 'SAME' would pad only bottom/right and give [[9, 6], [6, 4]]."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        x = tf.ones([1, 4, 4, 1])
        y = layers.conv2d(x, 1, 3, strides=2, padding=1,
                          kernel_initializer=tf.compat.v1.ones_initializer())
        sess.run(tf.compat.v1.global_variables_initializer())
        np.testing.assert_allclose(sess.run(y)[0, :, :, 0], [[4, 6], [6, 9]])


def test_max_pool_padding_never_wins():
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        x = -tf.reshape(tf.range(1.0, 17.0), [1, 4, 4, 1])
        y = sess.run(layers.max_pool(x, 3, 2, padding=1))
    assert (y < 0).all()
    assert y[0, 0, 0, 0] == -1.0


def test_list_networks_prints_exact_counts():
    result = run_train(['--list_networks'])
    assert result.returncode == 0, result.stderr
    for name, count in PARAMETERS.items():
        assert any(line.split()[:2] == [name, format(count, ',')]
                   for line in result.stdout.splitlines()), result.stdout

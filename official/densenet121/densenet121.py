"""DenseNet-121 as torchvision builds it (Huang et al., "Densely Connected Convolutional
Networks", CVPR 2017): stem BN, 56x56 after the stem, 7,978,856 parameters at 1000 classes.

Variable scopes follow torchvision's module names (conv0, norm0, denseblock1/denselayer1/...,
transition1, norm5, classifier) so that its weights map one to one.
"""
import tensorflow as tf

from common import layers

GROWTH_RATE = 32
BLOCK_LAYERS = (6, 12, 24, 16)
BOTTLENECK_FACTOR = 4  # the bottleneck 1x1 gives 4 x growth_rate channels
STEM_FILTERS = 64
COMPRESSION = 0.5
CLASSIFIER_SCOPES = ('densenet121/classifier',)
MIN_IMAGE_SIZE = 32  # five halvings leave a 1x1 map


def _dense_layer(x, growth_rate, is_training):
    y = layers.batch_norm_relu(x, is_training, 'norm1')
    y = layers.conv2d(y, BOTTLENECK_FACTOR * growth_rate, 1, name='conv1')
    y = layers.batch_norm_relu(y, is_training, 'norm2')
    y = layers.conv2d(y, growth_rate, 3, padding=1, name='conv2')
    return tf.concat([x, y], axis=3)


def _transition(x, is_training):
    filters = int(int(x.shape[3]) * COMPRESSION)
    x = layers.batch_norm_relu(x, is_training, 'norm')
    x = layers.conv2d(x, filters, 1, name='conv')
    return layers.avg_pool(x, 2, 2)


def build(images, is_training, num_classes, growth_rate=GROWTH_RATE, block_config=BLOCK_LAYERS,
          num_init_features=STEM_FILTERS):
    """Returns (logits [batch, num_classes], end_points) for NHWC float images; end_points
    holds 'features', the pooled features the classifier reads.

    growth_rate, block_config, num_init_features: torchvision DenseNet's size arguments
    (DenseNet-121's by default; smaller ones build the reduced references of the tests).
    """
    with tf.compat.v1.variable_scope('densenet121'):
        x = layers.conv2d(images, num_init_features, 7, strides=2, padding=3, name='conv0')
        x = layers.batch_norm_relu(x, is_training, 'norm0')
        x = layers.max_pool(x, 3, 2, padding=1)
        for block, num_layers in enumerate(block_config, start=1):
            with tf.compat.v1.variable_scope('denseblock%d' % block):
                for index in range(1, num_layers + 1):
                    with tf.compat.v1.variable_scope('denselayer%d' % index):
                        x = _dense_layer(x, growth_rate, is_training)
            if block < len(block_config):
                with tf.compat.v1.variable_scope('transition%d' % block):
                    x = _transition(x, is_training)
        x = layers.batch_norm_relu(x, is_training, 'norm5')
        features = layers.global_avg_pool(x)
        logits = layers.dense(features, num_classes, name='classifier')
    return logits, {'features': features}

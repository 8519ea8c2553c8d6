"""VGG16, configuration D without batch norm (Simonyan & Zisserman, "Very Deep Convolutional
Networks for Large-Scale Image Recognition", ICLR 2015), as torchvision's vgg16:
138,357,544 parameters at 1000 classes and 224 px.

As torchvision, the last map is average-pooled adaptively to 7x7 (identity at 224 px), so fc6
has 25088 inputs at every image size. The flatten is NHWC (TF's layout); converting torchvision
weights needs fc6's rows reordered from NCHW.
"""
import numpy as np
import tensorflow as tf

from common import layers

# Configuration D: conv widths, 'M' = 2x2/2 max pool.
CONFIG_D = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M',
            512, 512, 512, 'M')
FC_WIDTH = 4096
DROPOUT = 0.5
# torchvision: conv kaiming_normal(fan_out, relu), FC N(0, 0.01), biases 0.
CONV_INIT = tf.compat.v1.variance_scaling_initializer(
    scale=2.0, mode='fan_out', distribution='untruncated_normal')
FC_INIT = tf.compat.v1.random_normal_initializer(stddev=0.01)
POOLED_SIZE = 7
CLASSIFIER_SCOPES = ('vgg16/fc8',)
MIN_IMAGE_SIZE = 32  # five 2x2 pools leave a 1x1 map


def adaptive_pool_matrix(size, bins):
    """[bins, size] averaging weights of PyTorch's adaptive average pooling along one axis:
    bin i covers floor(i * size / bins) .. ceil((i + 1) * size / bins)."""
    matrix = np.zeros([bins, size], np.float32)
    for i in range(bins):
        begin, end = (i * size) // bins, -(-(i + 1) * size // bins)
        matrix[i, begin:end] = 1.0 / (end - begin)
    return matrix


def adaptive_avg_pool(x, bins):
    _, height, width, _ = x.shape.as_list()
    if height == width == bins:
        return x
    rows = tf.constant(adaptive_pool_matrix(height, bins), x.dtype)
    cols = tf.constant(adaptive_pool_matrix(width, bins), x.dtype)
    return tf.einsum('ih,nhwc,jw->nijc', rows, x, cols)


def build(images, is_training, num_classes, cfg=CONFIG_D, fc_width=FC_WIDTH, dropout=DROPOUT):
    """Returns (logits [batch, num_classes], end_points) for NHWC float images; end_points
    holds 'features', fc7's output that the classifier reads.

    cfg (conv widths and 'M' pools, as torchvision's make_layers takes) and fc_width are
    configuration D's by default; smaller ones build the reduced references of the tests.
    dropout: the rate after fc6 and fc7 in training.
    """
    with tf.compat.v1.variable_scope('vgg16'):
        x, block, index = images, 1, 1
        for item in cfg:
            if item == 'M':
                x = tf.nn.max_pool2d(x, 2, 2, 'VALID')
                block, index = block + 1, 1
                continue
            x = layers.conv2d(x, item, 3, padding=1, use_bias=True, kernel_initializer=CONV_INIT,
                              name='conv%d_%d' % (block, index))
            x = layers.relu(x, is_training)
            index += 1
        x = tf.compat.v1.layers.flatten(adaptive_avg_pool(x, POOLED_SIZE))
        for name in ('fc6', 'fc7'):
            x = layers.dense(x, fc_width, kernel_initializer=FC_INIT, name=name)
            x = layers.relu(x, is_training)
            if is_training and dropout:
                x = tf.nn.dropout(x, rate=dropout)
        logits = layers.dense(x, num_classes, kernel_initializer=FC_INIT, name='fc8')
    return logits, {'features': x}

"""ShuffleNetV2 as torchvision's shufflenet_v2_x1_0 builds it (Ma et al., "ShuffleNet V2:
Practical Guidelines for Efficient CNN Architecture Design", ECCV 2018): channel split,
two branches, channel shuffle in 2 groups. 2,278,604 parameters at 1000 classes (1.0x).
"""
import tensorflow as tf

from common import layers

# width -> channels of [conv1, stage2, stage3, stage4, conv5]
STAGE_CHANNELS = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}
STAGE_REPEATS = (4, 8, 4)
WIDTH = 1.0
CLASSIFIER_SCOPES = ('shufflenet_v2/fc',)
MIN_IMAGE_SIZE = 32  # five halvings leave a 1x1 map


def _branch(x, width, stride, is_training, name):
    """1x1 -> BN -> ReLU -> 3x3 depthwise (stride) -> BN -> 1x1 -> BN -> ReLU."""
    with tf.compat.v1.variable_scope(name):
        x = layers.batch_norm_relu(layers.conv2d(x, width, 1, name='conv1'), is_training, 'bn1')
        x = layers.batch_norm(layers.depthwise_conv2d(x, 3, stride, padding=1, name='dw'),
                              is_training, 'bn2')
        return layers.batch_norm_relu(layers.conv2d(x, width, 1, name='conv2'), is_training, 'bn3')


def _unit(x, out_channels, stride, is_training):
    width = out_channels // 2
    if stride == 1:
        shortcut, x = tf.split(x, 2, axis=3)
    else:
        with tf.compat.v1.variable_scope('branch1'):
            shortcut = layers.batch_norm(
                layers.depthwise_conv2d(x, 3, stride, padding=1, name='dw'), is_training, 'bn1')
            shortcut = layers.batch_norm_relu(layers.conv2d(shortcut, width, 1, name='conv'),
                                              is_training, 'bn2')
    x = tf.concat([shortcut, _branch(x, width, stride, is_training, 'branch2')], axis=3)
    return layers.channel_shuffle(x, 2)


def build(images, is_training, num_classes, stages_repeats=STAGE_REPEATS,
          stages_out_channels=STAGE_CHANNELS[WIDTH]):
    """Returns (logits [batch, num_classes], end_points) for NHWC float images; end_points
    holds 'features', the pooled features the classifier reads.

    stages_repeats, stages_out_channels: torchvision ShuffleNetV2's size arguments (1.0x by
    default; smaller ones build the reduced references of the tests).
    """
    channels = tuple(stages_out_channels)
    with tf.compat.v1.variable_scope('shufflenet_v2'):
        x = layers.conv2d(images, channels[0], 3, strides=2, padding=1, name='conv1')
        x = layers.batch_norm_relu(x, is_training, 'conv1_bn')
        x = layers.max_pool(x, 3, 2, padding=1)
        for stage, (repeats, out) in enumerate(zip(stages_repeats, channels[1:4]), start=2):
            for index in range(repeats):
                with tf.compat.v1.variable_scope('stage%d/unit%d' % (stage, index)):
                    x = _unit(x, out, 2 if index == 0 else 1, is_training)
        x = layers.batch_norm_relu(layers.conv2d(x, channels[4], 1, name='conv5'), is_training,
                                   'conv5_bn')
        features = layers.global_avg_pool(x)
        logits = layers.dense(features, num_classes, name='fc')
    return logits, {'features': features}

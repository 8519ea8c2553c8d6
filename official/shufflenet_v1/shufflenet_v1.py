"""ShuffleNetV1 1.0x, groups 3, as megvii's ShuffleNet-Series builds it (Zhang et al.,
"ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile Devices",
CVPR 2018): bottlenecks a quarter of the unit's output width, stage 2's first pointwise
convolution not grouped, stride-2 units concatenating a 3x3 average-pooled shortcut.
1,864,728 parameters at 1000 classes (the classifier has no bias, as megvii's).
"""
import tensorflow as tf

from common import layers

GROUPS = 3
# (groups, width) -> output channels of [stem, stage2, stage3, stage4]
STAGE_CHANNELS = {
    (3, 0.5): (12, 120, 240, 480),
    (3, 1.0): (24, 240, 480, 960),
    (3, 1.5): (24, 360, 720, 1440),
    (3, 2.0): (48, 480, 960, 1920),
    (8, 1.0): (24, 384, 768, 1536),
}
STAGE_REPEATS = (4, 8, 4)
WIDTH = 1.0
CLASSIFIER_SCOPES = ('shufflenet_v1/fc',)
MIN_IMAGE_SIZE = 32  # five halvings leave a 1x1 map


def _unit(x, out_channels, stride, first_unit, is_training):
    in_channels = int(x.shape[3])
    mid = out_channels // 4  # of the full output width, also in stride-2 units
    main_out = out_channels - in_channels if stride == 2 else out_channels
    # Stage 2's first unit sees only the 24 stem channels: its first 1x1 is not grouped.
    y = layers.group_conv1x1(x, mid, 1 if first_unit else GROUPS, is_training,
                             name='conv1')
    y = layers.batch_norm_relu(y, is_training, 'bn1')
    y = layers.batch_norm(layers.depthwise_conv2d(y, 3, stride, padding=1, name='dw'),
                          is_training, 'bn2')
    # megvii shuffles after the depthwise conv (equivalent to before it: DW is per channel).
    y = layers.channel_shuffle(y, GROUPS, channels_first_in_groups=False)
    y = layers.batch_norm(layers.group_conv1x1(y, main_out, GROUPS, is_training, name='conv2'),
                          is_training, 'bn3')
    if stride == 1:
        # the branch first, as megvii adds: onnxruntime then fuses the add and ReLU into the
        # convolution (from the second operand it does not; the sum is the same)
        return layers.relu(y + x, is_training)
    return tf.concat([layers.avg_pool_padded(x, 3, 2, 1), layers.relu(y, is_training)], axis=3)


def build(images, is_training, num_classes, width=WIDTH):
    """Returns (logits [batch, num_classes], end_points) for NHWC float images; end_points
    holds 'features', the pooled features the classifier reads.

    width: megvii's model size (1.0x by default; 0.5x builds the reduced reference of the
    tests).
    """
    channels = STAGE_CHANNELS[(GROUPS, width)]
    with tf.compat.v1.variable_scope('shufflenet_v1'):
        x = layers.conv2d(images, channels[0], 3, strides=2, padding=1, name='conv1')
        x = layers.batch_norm_relu(x, is_training, 'conv1_bn')
        x = layers.max_pool(x, 3, 2, padding=1)
        for stage, (repeats, out) in enumerate(zip(STAGE_REPEATS, channels[1:]), start=2):
            for index in range(repeats):
                with tf.compat.v1.variable_scope('stage%d/unit%d' % (stage, index)):
                    x = _unit(x, out, 2 if index == 0 else 1, stage == 2 and index == 0,
                              is_training)
        features = layers.global_avg_pool(x)
        logits = layers.dense(features, num_classes, use_bias=False, name='fc')
    return logits, {'features': features}

"""Layers the architectures share (NHWC): explicitly padded conv/pool, batch norm, initializers.

Padding is explicit and symmetric like PyTorch's, because TF 'SAME' pads stride-2 layers
asymmetrically on even inputs; with it, a torchvision checkpoint would not give the same logits.
"""
import tensorflow as tf
from tensorflow.python import pywrap_tensorflow

# intel-tensorflow's oneDNN kernels (IsMklEnabled) take a slow path for ReLU's gradient when
# the channels are not a multiple of 16, the AVX-512 block: 4-5x the time per element
# (ShuffleNetV2's 58/116/232 channels: 22% of its training step). relu() below avoids it.
_ONEDNN = pywrap_tensorflow.IsMklEnabled()
_ALIGNED_CHANNELS = 16

# torchvision: kaiming_normal_(fan_in, relu gain) for convs.
KAIMING_NORMAL = tf.compat.v1.variance_scaling_initializer(
    scale=2.0, mode='fan_in', distribution='untruncated_normal')
# torch.nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
TORCH_LINEAR = tf.compat.v1.variance_scaling_initializer(
    scale=1.0 / 3.0, mode='fan_in', distribution='uniform')


def pad(x, amount, value=0.0):
    """Pads height and width by `amount` on every side."""
    if not amount:
        return x
    return tf.pad(x, [[0, 0], [amount, amount], [amount, amount], [0, 0]], constant_values=value)


def conv2d(x, filters, kernel_size, strides=1, padding=0, use_bias=False,
           kernel_initializer=KAIMING_NORMAL, name=None):
    """Convolution with PyTorch-style symmetric zero padding."""
    # At stride 1 'SAME' pads symmetrically too, and saves a copy of the input.
    same = strides == 1 and 2 * padding == kernel_size - 1
    if not same:
        x = pad(x, padding)
    return tf.compat.v1.layers.conv2d(
        x, filters, kernel_size, strides, padding='same' if same else 'valid', use_bias=use_bias,
        kernel_initializer=kernel_initializer, name=name)


def batch_norm(x, is_training, name, momentum=0.9, epsilon=1e-5):
    """Batch norm whose moving-average updates go to UPDATE_OPS (run by the train_op).

    Defaults are PyTorch's (momentum 0.1 == decay 0.9, eps 1e-5).
    """
    return tf.compat.v1.layers.batch_normalization(
        x, momentum=momentum, epsilon=epsilon, training=is_training, fused=True, name=name)


def max_pool(x, size, strides, padding=0):
    """Max pool; padded cells never win, as in PyTorch."""
    x = pad(x, padding, value=x.dtype.min)
    return tf.nn.max_pool2d(x, size, strides, 'VALID')


def avg_pool(x, size, strides):
    return tf.nn.avg_pool2d(x, size, strides, 'VALID')


def global_avg_pool(x):
    return tf.reduce_mean(x, axis=[1, 2])


def dense(x, units, kernel_initializer=TORCH_LINEAR, use_bias=True, name=None):
    return tf.compat.v1.layers.dense(
        x, units, use_bias=use_bias, kernel_initializer=kernel_initializer,
        bias_initializer=tf.zeros_initializer(), name=name)


def depthwise_conv2d(x, kernel_size, strides=1, padding=0, name=None):
    """Depthwise convolution (multiplier 1, no bias) with PyTorch-style padding.

    Always padded explicitly, also where 'SAME' would pad the same: intel-tensorflow 1.15.2
    returned garbage filter gradients for 'SAME' depthwise convolutions on 2x2 maps inside the
    networks (tests/test_networks.py, test_depthwise_gradients_are_sane_on_small_maps).
    """
    channels = int(x.shape[3])
    with tf.compat.v1.variable_scope(name, default_name='depthwise'):
        kernel = tf.compat.v1.get_variable(
            'depthwise_kernel', [kernel_size, kernel_size, channels, 1],
            initializer=KAIMING_NORMAL)
    return tf.nn.depthwise_conv2d(pad(x, padding), tf.cast(kernel, x.dtype),
                                  [1, strides, strides, 1], 'VALID')


def group_conv1x1(x, filters, groups, is_training, name=None):
    """1x1 convolution in `groups` groups (no bias), one kernel [1, 1, in/groups, filters].

    TF 1.15 has no grouped convolution on CPU, so each group is its own conv; but in training
    graphs on oneDNN builds it is one convolution with a block-diagonal kernel (3x the
    multiply-adds at 3 groups, yet ShuffleNetV1 trained 14% faster than with the split, the
    convs per group, the concat and their gradients). Inference graphs, and so exports and
    multiply-add counts, keep the architecture's form. The kernel keeps PyTorch's layout
    (out channels in group order) for weight conversion.
    """
    if groups == 1:
        return conv2d(x, filters, 1, name=name)
    channels = int(x.shape[3])
    with tf.compat.v1.variable_scope(name, default_name='group_conv'):
        kernel = tf.compat.v1.get_variable(
            'kernel', [1, 1, channels // groups, filters], initializer=KAIMING_NORMAL)
    kernels = tf.split(tf.cast(kernel, x.dtype), groups, axis=3)
    if is_training and _ONEDNN:
        width = filters // groups  # group g's inputs feed only its own block of outputs
        rows = [tf.pad(k, [[0, 0], [0, 0], [0, 0], [g * width, (groups - 1 - g) * width]])
                for g, k in enumerate(kernels)]
        return tf.nn.conv2d(x, tf.concat(rows, axis=2), 1, 'VALID')
    inputs = tf.split(x, groups, axis=3)
    return tf.concat([tf.nn.conv2d(i, k, 1, 'VALID') for i, k in zip(inputs, kernels)], axis=3)


def channel_shuffle(x, groups, channels_first_in_groups=True):
    """Interleaves channel groups.

    channels_first_in_groups=True is the paper's/torchvision's order (view as [groups, C/g],
    transpose); False is megvii ShuffleNetV1's (view as [C/g, groups], transpose), its inverse.
    """
    _, height, width, channels = x.shape.as_list()
    split = [groups, channels // groups] if channels_first_in_groups else [channels // groups,
                                                                            groups]
    x = tf.reshape(x, [-1, height, width] + split)
    x = tf.transpose(x, [0, 1, 2, 4, 3])
    return tf.reshape(x, [-1, height, width, channels])


def avg_pool_padded(x, size, strides, padding):
    """Average pool over zero-padded input, counting the pads (PyTorch count_include_pad)."""
    return tf.nn.avg_pool2d(pad(x, padding), size, strides, 'VALID')


@tf.RegisterGradient('ReluTimesSign')
def _relu_gradient_times_sign(op, gradient):
    # The same values as ReluGrad (1 where the output is positive, else 0), as plain ops.
    return gradient * tf.sign(op.outputs[0])


def relu(x, is_training):
    """tf.nn.relu; in training graphs on oneDNN builds, where the channels are unaligned, its
    gradient is computed as dy * sign(relu(x)) instead of oneDNN's ReluGrad (see _ONEDNN).
    Inference graphs (and so exports) are plain Relu ops."""
    if is_training and _ONEDNN and int(x.shape[-1]) % _ALIGNED_CHANNELS:
        with tf.compat.v1.get_default_graph().gradient_override_map({'Relu': 'ReluTimesSign'}):
            return tf.nn.relu(x)
    return tf.nn.relu(x)


def batch_norm_relu(x, is_training, name):
    return relu(batch_norm(x, is_training, name), is_training)

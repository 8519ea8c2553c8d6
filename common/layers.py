"""Layers the architectures share (NHWC): explicitly padded conv/pool, batch norm, initializers.

Padding is explicit and symmetric like PyTorch's, because TF 'SAME' pads stride-2 layers
asymmetrically on even inputs; with it, a torchvision checkpoint would not give the same logits.
"""
import tensorflow as tf

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

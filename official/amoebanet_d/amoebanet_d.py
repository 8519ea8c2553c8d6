"""AmoebaNet-D as tensorflow/tpu's amoeba_net builds it (Real et al., "Regularized Evolution for
Image Classifier Architecture Search", AAAI 2019; the D cell of Huang et al., "GPipe", 2019).

The two cells are data (operations, the hidden state each reads, the states consumed inside the
cell); one cell builder runs both. With num_cells 6 and reduction_size 256: 46,095,080
parameters at 1000 classes, 46,758,756 with the auxiliary head of the training graph.
Padding is TF 'SAME' as in the reference (the stem 'VALID'), so its weights give the same logits.
"""
import collections

import tensorflow as tf

from common import layers

# Combination i adds operations[2i](states[hidden_state_indices[2i]]) and
# operations[2i+1](states[hidden_state_indices[2i+1]]) and appends the sum to the states;
# states 0 and 1 are the cell's inputs. The output concatenates the states not consumed (0s).
Cell = collections.namedtuple('Cell', ['operations', 'hidden_state_indices', 'used_hidden_states'])
NORMAL_CELL = Cell(
    operations=('1x1', 'max_pool_3x3', 'none', '1x7_7x1', '1x1', '1x7_7x1', 'max_pool_3x3',
                'none', 'avg_pool_3x3', '1x1'),
    hidden_state_indices=(1, 1, 1, 0, 0, 0, 2, 2, 1, 5),
    used_hidden_states=(0, 1, 1, 0, 0, 1, 0))
REDUCTION_CELL = Cell(
    operations=('max_pool_2x2', 'max_pool_3x3', 'none', '3x3', '1x7_7x1', 'max_pool_3x3', 'none',
                'max_pool_2x2', 'avg_pool_3x3', '1x1'),
    hidden_state_indices=(0, 0, 2, 1, 2, 2, 3, 1, 2, 3),
    used_hidden_states=(1, 1, 1, 1, 0, 0, 0))

NUM_CELLS = 6  # normal cells over the three stacks
REDUCTION_SIZE = 256  # filters of the first stack; then 2x and 4x
STEM_FILTERS = 32
NUM_STEM_CELLS = 2  # reduction cells at 1/4 and 1/2 of reduction_size
NUM_REDUCTIONS = 2
AUX_SCALING = 0.4  # widths of the auxiliary head: 51 and 307 channels
AUX_POOL, AUX_POOL_STRIDE = 5, 3
DENSE_DROPOUT = 0.5
# contrib variance_scaling_initializer(mode='FAN_OUT'): truncated normal, variance 2 / fan_out.
INIT = tf.compat.v1.variance_scaling_initializer(scale=2.0, mode='fan_out',
                                                 distribution='truncated_normal')


def _conv(x, filters, kernel, strides=1, padding='same', name=None):
    return tf.compat.v1.layers.conv2d(x, filters, kernel, strides, padding=padding,
                                      use_bias=False, kernel_initializer=INIT, name=name)


def _relu_conv_bn(x, filters, strides, is_training, conv_name, bn_name):
    y = _conv(layers.relu(x, is_training), filters, 1, strides, name=conv_name)
    return layers.batch_norm(y, is_training, bn_name)


def _drop_path(x, keep_prob):
    """Zeroes whole examples with probability 1 - keep_prob, scaling the rest up."""
    if keep_prob is None:
        return x
    keep_prob = tf.cast(keep_prob, x.dtype)
    mask = tf.floor(keep_prob + tf.random.uniform([tf.shape(x)[0], 1, 1, 1], dtype=x.dtype))
    return x / keep_prob * mask


def factorized_reduction(x, filters, is_training):
    """Halves height and width without dropping pixels: two 1x1 convs on the even and the
    one-pixel-shifted grids, each giving half the filters, then batch norm."""
    # The 1x1 convs' own stride picks the grid (a strided slice's gradient, StridedSliceGrad,
    # took 8% of a training step).
    path1 = _conv(x, filters // 2, 1, 2, padding='valid', name='path1_conv')
    shifted = tf.slice(tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]]), [0, 1, 1, 0], [-1] * 4)
    path2 = _conv(shifted, filters // 2, 1, 2, padding='valid', name='path2_conv')
    return layers.batch_norm(tf.concat([path1, path2], axis=3), is_training, 'final_path_bn')


def _operation(x, operation, filters, strides, is_training, keep_prob):
    """One of the cell's operations, giving `filters` channels."""
    channels = int(x.shape[3])
    if operation in ('3x3', '1x7_7x1'):
        width = filters // 4  # bottleneck
        y = _conv(layers.relu(x, is_training), width, 1, name='pre_1x1')
        y = layers.batch_norm_relu(y, is_training, 'pre_bn')
        if operation == '3x3':
            y = _conv(y, width, 3, strides, name='3x3')
        else:
            y = _conv(y, width, [1, 7], [1, strides], name='1x7')
            y = layers.batch_norm_relu(y, is_training, 'bn_1x7_7x1')
            y = _conv(y, width, [7, 1], [strides, 1], name='7x1')
        y = layers.batch_norm_relu(y, is_training, 'bn')
        y = layers.batch_norm(_conv(y, filters, 1, name='post_1x1'), is_training, 'post_bn')
    elif operation in ('none', '1x1'):
        y = x
        if operation == '1x1' or strides > 1 or channels != filters:
            y = _relu_conv_bn(x, filters, strides, is_training, '1x1', 'bn_1')
    else:  # max_pool_KxK / avg_pool_KxK
        pool = tf.nn.max_pool2d if operation.startswith('max') else tf.nn.avg_pool2d
        y = pool(x, int(operation[-1]), strides, 'SAME')
        if channels != filters:
            y = layers.batch_norm(_conv(y, filters, 1, name='1x1'), is_training, 'bn_1')
    return y if operation == 'none' else _drop_path(y, keep_prob)


def _cell(x, previous, spec, filters, strides, is_training, keep_prob, name):
    """Runs one cell on x (this cell's input) and previous (the input of the cell before)."""
    with tf.compat.v1.variable_scope(name):
        if previous is None:
            previous = x
        elif int(previous.shape[2]) != int(x.shape[2]):
            with tf.compat.v1.variable_scope('prev_reduction'):
                previous = factorized_reduction(layers.relu(previous, is_training), filters,
                                                is_training)
        elif int(previous.shape[3]) != filters:
            previous = _relu_conv_bn(previous, filters, 1, is_training, 'prev_1x1', 'prev_bn')
        states = [_relu_conv_bn(x, filters, 1, is_training, '1x1', 'beginning_bn'), previous]
        for i in range(len(spec.operations) // 2):
            with tf.compat.v1.variable_scope('comb_iter_%d' % i):
                pair = []
                for side, k in (('left', 2 * i), ('right', 2 * i + 1)):
                    index = spec.hidden_state_indices[k]
                    with tf.compat.v1.variable_scope(side):
                        # Only the cell's inputs are strided; later states are already reduced.
                        pair.append(_operation(states[index], spec.operations[k], filters,
                                               strides if index < 2 else 1, is_training,
                                               keep_prob))
                states.append(pair[0] + pair[1])
        outputs = []
        last = states[-1]
        for index, (state, used) in enumerate(zip(states, spec.used_hidden_states)):
            if used:
                continue
            if state.shape[1:].as_list() != last.shape[1:].as_list():
                with tf.compat.v1.variable_scope('reduction_%d' % index):
                    if int(state.shape[2]) != int(last.shape[2]):
                        state = factorized_reduction(state, int(last.shape[3]), is_training)
                    else:
                        state = layers.batch_norm(_conv(state, int(last.shape[3]), 1,
                                                        name='path_conv'), is_training, 'path_bn')
            outputs.append(state)
        return tf.concat(outputs, axis=3)


def _aux_head(x, num_classes, is_training):
    """Auxiliary classifier on ReLU(cell output): 5x5/3 average pool, 1x1 conv, a conv over the
    whole remaining map, FC."""
    with tf.compat.v1.variable_scope('aux_logits'):
        y = tf.nn.avg_pool2d(x, AUX_POOL, AUX_POOL_STRIDE, 'VALID')
        y = layers.batch_norm_relu(_conv(y, int(128 * AUX_SCALING), 1, name='proj'),
                                   is_training, 'aux_bn0')
        y = _conv(y, int(768 * AUX_SCALING), y.shape[1:3].as_list(), padding='valid',
                  name='conv')
        y = layers.batch_norm_relu(y, is_training, 'aux_bn1')
        return layers.dense(tf.compat.v1.layers.flatten(y), num_classes, kernel_initializer=INIT,
                            name='FC')


def reduction_cell_indices(num_cells):
    """Normal-cell indices preceded by a reduction cell: [2, 4] for 6 cells."""
    return [int(k / (NUM_REDUCTIONS + 1) * num_cells) for k in range(1, NUM_REDUCTIONS + 1)]


def aux_head_input_size(image_size):
    """Height of the map the auxiliary head pools (after the stem and the first reduction)."""
    size = (image_size - 3) // 2 + 1  # the VALID stem conv
    for _ in range(NUM_STEM_CELLS + 1):
        size = -(-size // 2)
    return size


CLASSIFIER_SCOPES = ('amoebanet_d/final_layer', 'amoebanet_d/aux_head')
# The auxiliary head of the training graph pools 5x5 windows: 67 px is the least that leaves one.
MIN_IMAGE_SIZE = next(n for n in range(3, 1000) if aux_head_input_size(n) >= AUX_POOL)
MIN_IMAGE_SIZE_REASON = ' (its auxiliary head\'s %dx%d pool needs a %dx%d map)' % (
    AUX_POOL, AUX_POOL, AUX_POOL, AUX_POOL)


def build(images, is_training, num_classes, num_cells=NUM_CELLS, reduction_size=REDUCTION_SIZE,
          drop_path_keep_prob=None):
    """Returns (logits, end_points) for NHWC images in [-1, 1]. end_points holds 'features'
    (what the classifier reads) and, when training, 'aux_logits' of the auxiliary head.

    drop_path_keep_prob: None (off) or the current keep probability, a scalar the caller
    computes (model.py's schedule); used in training only.
    """
    keep_prob = drop_path_keep_prob if is_training else None
    with tf.compat.v1.variable_scope('amoebanet_d'):
        with tf.compat.v1.variable_scope('stem'):
            x = _conv(images, STEM_FILTERS, 3, 2, padding='valid', name='conv0')
            x = layers.batch_norm(x, is_training, 'conv0_bn')
        outputs = [None, x]
        for i in range(NUM_STEM_CELLS):
            filters = int(reduction_size / 2 ** (NUM_STEM_CELLS - i))
            x = _cell(x, outputs[-2], REDUCTION_CELL, filters, 2, is_training, keep_prob,
                      'cell_stem_%d' % i)
            outputs.append(x)
        reductions = reduction_cell_indices(num_cells)
        filters, aux_logits = reduction_size, None
        for i in range(num_cells):
            if i in reductions:
                filters *= 2
                x = _cell(x, outputs[-2], REDUCTION_CELL, filters, 2, is_training, keep_prob,
                          'reduction_cell_%d' % reductions.index(i))
                outputs.append(x)
            x = _cell(x, outputs[-2], NORMAL_CELL, filters, 1, is_training, keep_prob,
                      'cell_%d' % i)
            if is_training and i == reductions[1] - 1:
                with tf.compat.v1.variable_scope('aux_head'):
                    aux_logits = _aux_head(layers.relu(x, is_training), num_classes, is_training)
            outputs.append(x)
        with tf.compat.v1.variable_scope('final_layer'):
            features = layers.global_avg_pool(layers.relu(x, is_training))
            x = tf.nn.dropout(features, rate=DENSE_DROPOUT) if is_training else features
            logits = layers.dense(x, num_classes, kernel_initializer=INIT, name='FC')
    end_points = {'features': features}
    if aux_logits is not None:
        end_points['aux_logits'] = aux_logits
    return logits, end_points

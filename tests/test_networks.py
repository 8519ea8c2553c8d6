"""Architecture tests over the registry: exact parameter counts, shapes, checkpoint names."""
import os

import numpy as np
import pytest
import tensorflow as tf

import official
from common import layers, report
from official.amoebanet_d import amoebanet_d
from official.amoebanet_d import model as amoebanet_model
from conftest import ROOT, run_train

DATA = os.path.join(ROOT, 'tests', 'data')

# Reference trainable-parameter counts at 1000 classes (REFERENCES.md, decisions table).
PARAMETERS = {
    'densenet121': 7978856,
    'shufflenet_v1': 1864728,
    'shufflenet_v2': 2278604,
    'vgg16': 138357544,
    'amoebanet_d': 46095080,  # num_cells 6, reduction_size 256, inference graph
}
# Multiply-adds of conv and FC layers at 224 px, computed from the reference code
# (REFERENCES.md summary table; AmoebaNet-D's is quoted there as ~5.72 G only).
MULTIPLY_ADDS = {
    'densenet121': 2834.16e6,
    'shufflenet_v1': 137.46e6,
    'shufflenet_v2': 144.91e6,
    'vgg16': 15470.26e6,
    'amoebanet_d': 5.72e9,
}
MULTIPLY_ADDS_TOLERANCE = dict.fromkeys(MULTIPLY_ADDS, 0.01e6)
MULTIPLY_ADDS_TOLERANCE['amoebanet_d'] = 0.005e9
# A few variable names per network that checkpoints (and weight converters) rely on.
VARIABLE_NAMES = {
    'densenet121': ['densenet121/conv0/kernel', 'densenet121/norm0/moving_variance',
                    'densenet121/denseblock4/denselayer16/conv2/kernel',
                    'densenet121/transition3/conv/kernel', 'densenet121/norm5/gamma',
                    'densenet121/classifier/bias'],
    'shufflenet_v1': ['shufflenet_v1/conv1/kernel', 'shufflenet_v1/stage2/unit0/conv1/kernel',
                      'shufflenet_v1/stage4/unit3/conv2/kernel',
                      'shufflenet_v1/stage3/unit7/dw/depthwise_kernel', 'shufflenet_v1/fc/kernel'],
    'shufflenet_v2': ['shufflenet_v2/conv1/kernel',
                      'shufflenet_v2/stage2/unit0/branch1/conv/kernel',
                      'shufflenet_v2/stage4/unit3/branch2/dw/depthwise_kernel',
                      'shufflenet_v2/conv5_bn/moving_mean', 'shufflenet_v2/fc/bias'],
    'vgg16': ['vgg16/conv1_1/kernel', 'vgg16/conv5_3/bias', 'vgg16/fc6/kernel', 'vgg16/fc8/bias'],
    'amoebanet_d': ['amoebanet_d/stem/conv0/kernel', 'amoebanet_d/cell_stem_0/1x1/kernel',
                    'amoebanet_d/cell_stem_1/prev_reduction/path2_conv/kernel',
                    'amoebanet_d/reduction_cell_1/comb_iter_1/right/3x3/kernel',
                    'amoebanet_d/cell_5/comb_iter_1/right/7x1/kernel',
                    'amoebanet_d/aux_head/aux_logits/conv/kernel',
                    'amoebanet_d/final_layer/FC/bias'],
}


def test_registry_is_covered():
    assert sorted(PARAMETERS) == sorted(MULTIPLY_ADDS) == sorted(official.NETWORK_NAMES)


@pytest.mark.parametrize('name', official.NETWORK_NAMES)
def test_parameters_and_multiply_adds_equal_reference(name):
    params, macs = report.network_size(official.load(name))
    assert params == PARAMETERS[name]
    assert macs == pytest.approx(MULTIPLY_ADDS[name], abs=MULTIPLY_ADDS_TOLERANCE[name])


@pytest.mark.parametrize('name', official.NETWORK_NAMES)
def test_logits_shape_and_variable_names(name):
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [2, 224, 224, 3])
        logits, end_points = official.load(name).build(images, True, 7)
        assert logits.shape.as_list() == [2, 7]
        assert end_points['features'].shape.as_list()[0] == 2
        if name == 'amoebanet_d':
            assert end_points['aux_logits'].shape.as_list() == [2, 7]
        else:
            assert sorted(end_points) == ['features']
        names = {v.op.name for v in tf.compat.v1.global_variables()}
    assert set(VARIABLE_NAMES[name]) <= names


@pytest.mark.parametrize('name', official.NETWORK_NAMES)
def test_every_variable_name_and_shape_is_pinned(name):
    """Checkpoints and weight converters rely on every name: the full list of the training
    graph at 1000 classes (tests/data/variables/<name>.txt, "name shape") must not drift."""
    with open(os.path.join(DATA, 'variables', name + '.txt')) as f:
        pinned = [tuple(line.split()) for line in f if line.strip()]
    with tf.Graph().as_default():
        official.load(name).build(tf.compat.v1.placeholder(tf.float32, [1, 224, 224, 3]), True,
                                  1000)
        built = [(v.op.name, ','.join(map(str, v.shape.as_list())))
                 for v in tf.compat.v1.global_variables()]
    assert built == pinned


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


def _amoebanet_graph(image_size=224, is_training=False, **options):
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, image_size, image_size, 3])
        outputs = amoebanet_d.build(images, is_training, 1000, **options)
        count = sum(v.shape.num_elements() for v in tf.compat.v1.trainable_variables())
    return graph, outputs, count


def test_amoebanet_cell_outputs_and_auxiliary_head():
    """Shapes of REFERENCES.md section 5.2 at 224 px; the training graph adds the auxiliary
    head (46,758,756 parameters in all), attached before the second reduction."""
    graph, _, _ = _amoebanet_graph()
    shapes = {name: graph.get_tensor_by_name('amoebanet_d/%s/concat:0' % name).shape.as_list()
              for name in ('cell_stem_0', 'cell_stem_1', 'cell_1', 'reduction_cell_0', 'cell_3',
                           'reduction_cell_1', 'cell_5')}
    assert shapes == {'cell_stem_0': [1, 56, 56, 192], 'cell_stem_1': [1, 28, 28, 384],
                      'cell_1': [1, 28, 28, 1024], 'reduction_cell_0': [1, 14, 14, 1536],
                      'cell_3': [1, 14, 14, 2048], 'reduction_cell_1': [1, 7, 7, 3072],
                      'cell_5': [1, 7, 7, 4096]}
    stem = graph.get_tensor_by_name('amoebanet_d/stem/conv0/Conv2D:0')
    assert stem.shape.as_list() == [1, 111, 111, 32]  # VALID, as the reference
    graph, (_, end_points), count = _amoebanet_graph(is_training=True)
    assert count == 46758756
    assert end_points['aux_logits'].shape.as_list() == [1, 1000]
    aux_input = graph.get_tensor_by_name('amoebanet_d/aux_head/Relu:0')
    assert aux_input.op.inputs[0].name == 'amoebanet_d/cell_3/concat:0'


def test_amoebanet_shrinks_through_its_parameters():
    """num_cells 3 puts reductions before cells 1 and 2; reduction_size 16 gives 16, 32, 64
    filters; 96 px: stem 47, stem cells 24 and 12, reductions 6 and 3."""
    assert amoebanet_d.reduction_cell_indices(6) == [2, 4]
    assert amoebanet_d.reduction_cell_indices(3) == [1, 2]
    graph, _, count = _amoebanet_graph(96, num_cells=3, reduction_size=16)
    assert graph.get_tensor_by_name('amoebanet_d/cell_2/concat:0').shape.as_list() == [
        1, 3, 3, 4 * 64]
    assert amoebanet_d.aux_head_input_size(96) == 6
    assert 'amoebanet_d/cell_3/concat:0' not in [t.name for op in graph.get_operations()
                                                for t in op.outputs]
    assert count < 0.01 * PARAMETERS['amoebanet_d']  # 353,933 with the 1000-class FC


def test_drop_path_schedule_and_mask():
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        step = tf.compat.v1.placeholder(tf.int64, [])
        keep = amoebanet_model.drop_path_schedule(step, 0.7, 1000)
        assert [sess.run(keep, {step: s}) for s in (0, 500, 1000, 2000)] == pytest.approx(
            [1.0, 0.85, 0.7, 0.7])
        x = tf.ones([4000, 2, 2, 3])
        kept = sess.run(amoebanet_d._drop_path(x, 0.7))
    per_example = kept.reshape(4000, -1)
    # Whole examples are dropped or kept (scaled by 1/0.7), about 30% dropped.
    assert set(np.unique(per_example.min(axis=1))) == set(np.unique(per_example.max(axis=1)))
    np.testing.assert_allclose(np.unique(per_example), [0.0, 1 / 0.7], rtol=1e-6)
    assert (per_example[:, 0] == 0).mean() == pytest.approx(0.3, abs=0.03)
    graph, _, _ = _amoebanet_graph(96, is_training=True, num_cells=3, reduction_size=16,
                                   drop_path_keep_prob=0.7)
    assert any(op.type == 'Floor' for op in graph.get_operations())
    graph, _, _ = _amoebanet_graph(96, is_training=True, num_cells=3, reduction_size=16)
    assert not any(op.type == 'Floor' for op in graph.get_operations())  # 1.0: off


@pytest.mark.parametrize('name', ['shufflenet_v1', 'shufflenet_v2'])
def test_depthwise_gradients_are_sane_on_small_maps(name):
    """intel-tensorflow 1.15.2 computed garbage depthwise-filter gradients (up to 1e33) for
    'SAME'-padded depthwise convolutions on 2x2 maps inside the network (ShuffleNetV1's
    stage 3 at 32 px), and training diverged at its first step; layers.depthwise_conv2d pads
    explicitly. Every gradient of a fresh network, at 32 px, on standardized input, is finite
    and of the order of the loss."""
    network = official.load(name)
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(1)
        images = tf.constant(np.random.RandomState(0).normal(0, 1, [32, 32, 32, 3]),
                             tf.float32)
        logits, _ = network.build(images, True, 10)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.range(32) % 10, logits=logits))
        variables = tf.compat.v1.trainable_variables()
        gradients = tf.gradients(loss, variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            values = session.run(gradients)
    worst = max((float(np.abs(g).max()), v.op.name) for g, v in zip(values, variables))
    assert np.isfinite(worst[0]) and worst[0] < 100.0, worst


@pytest.mark.parametrize('channels', [58, 64])
def test_relu_gradient_equals_relugrad_and_skips_it_on_unaligned_channels(channels):
    """layers.relu's training gradient gives ReluGrad's values (zeros and negatives included);
    on oneDNN builds it is dy * sign(y) for channels that are not a multiple of 16 (oneDNN's
    ReluGrad is slow there), ReluGrad otherwise and in inference graphs."""
    rng = np.random.RandomState(0)
    x = rng.normal(size=[4, 5, 5, channels]).astype(np.float32)
    x[0, 0, 0, :10] = 0.0
    dy = rng.normal(size=x.shape).astype(np.float32)
    with tf.Graph().as_default() as graph:
        inputs = tf.compat.v1.placeholder(tf.float32, x.shape)
        ours = tf.gradients(layers.relu(inputs, True), inputs, grad_ys=dy)[0]
        native = tf.gradients(tf.nn.relu(inputs), inputs, grad_ys=dy)[0]
        inference = layers.relu(inputs, False)
        with tf.compat.v1.Session() as session:
            ours, native = session.run([ours, native], {inputs: x})
        types = [op.type for op in graph.get_operations()]
    np.testing.assert_array_equal(ours, native)
    assert (ours[x <= 0] == 0).all() and (ours[x > 0] == dy[x > 0]).all()
    assert types.count('ReluGrad') == (1 if layers._ONEDNN and channels % 16 else 2)
    assert ('Sign' in types) == bool(layers._ONEDNN and channels % 16)
    assert '_gradient_op_type' not in inference.op.node_def.attr


@pytest.mark.parametrize('is_training', [True, False])
def test_group_conv1x1_convolves_each_group_alone(is_training):
    """Both ways of the grouped 1x1 convolution (in training graphs on oneDNN builds one
    block-diagonal kernel, else a conv per group) give numpy's per-group products and the
    kernel's gradient."""
    rng = np.random.RandomState(0)
    x = rng.normal(size=[2, 3, 3, 12]).astype(np.float32)
    with tf.Graph().as_default():
        y = layers.group_conv1x1(tf.constant(x), 6, 3, is_training, name='g')
        convs = [op for op in tf.compat.v1.get_default_graph().get_operations()
                 if op.type == 'Conv2D']
        kernel = tf.compat.v1.trainable_variables()[0]
        gradient = tf.gradients(tf.reduce_sum(y * np.arange(6, dtype=np.float32)), kernel)[0]
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            y, k, gradient = session.run([y, kernel, gradient])
    assert k.shape == (1, 1, 4, 6)
    assert len(convs) == (1 if is_training and layers._ONEDNN else 3)
    expected = np.concatenate([x[..., 4 * g:4 * g + 4] @ k[0, 0, :, 2 * g:2 * g + 2]
                               for g in range(3)], axis=-1)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    expected_gradient = np.concatenate(
        [x[..., 4 * g:4 * g + 4].sum(axis=(0, 1, 2))[:, None] * np.arange(2 * g, 2 * g + 2)
         for g in range(3)], axis=-1)
    np.testing.assert_allclose(gradient[0, 0], expected_gradient, rtol=1e-4, atol=1e-4)

"""Importing the references' weights: .pth files read without torch (and without running code
from them), every tensor accounted for, and the converted checkpoints giving the references'
own logits (fixtures written by tests/fixtures/make_reference_weights.py with the references'
code)."""
import collections
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import import_weights
import official
from common import command_line, run_record
from common.errors import UsageError
from common.weights import convert, layouts, mapping, pth, sources
from conftest import ROOT, run_train, table_rows, train_lines
from pth_files import write_pth
from tfrecord_tools import build_imagenet_tfrecords

DATA = os.path.join(ROOT, 'tests', 'data')
WEIGHTS = os.path.join(DATA, 'reference_weights')
# (network, fixture file or checkpoint directory): every reference, both .pth formats.
FIXTURES = [
    ('densenet121', 'densenet121.pth'),
    ('densenet121', 'densenet121_legacy.pth'),  # the published file's old key names
    ('vgg16', 'vgg16.pth'),
    ('shufflenet_v2', 'shufflenet_v2.pth'),
    ('shufflenet_v1', 'shufflenet_v1_legacy.pth'),  # {'state_dict': {'module.…': …}}
]  # AmoebaNet's TF checkpoint: test_tpu_checkpoint_from_the_command_line_gives_its_logits
# Converted logits equal the reference's to this, relative to the largest reference logit.
RELATIVE_TOLERANCE = 1e-5


def fixture_spec(network):
    """(builder size keywords, image size, seed, reference logits) of a network's fixture."""
    saved = np.load(os.path.join(WEIGHTS, network + '.npz'))
    spec = json.loads(str(saved['spec']))
    image_size, seed = spec.pop('image_size'), spec.pop('seed')
    spec = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}
    return spec, image_size, seed, saved['logits']


def conversion_size(network, image_size):
    """The image size to convert at: AmoebaNet's aux head has a kernel as large as its input
    map, so its fixture converts at the size it was made at; the others at their default."""
    return image_size if network == 'amoebanet_d' else None


def fixture_images(image_size, seed):
    """The fixture's input, as the generation script draws it (NHWC)."""
    return np.random.RandomState(seed).uniform(-1.0, 1.0, (2, image_size, image_size, 3)).astype(
        np.float32)


def eval_logits(network, directory, images, options):
    """Eval-mode logits of the checkpoint in `directory` (its hparams.json gives the classes)."""
    record = run_record.read(directory)
    with tf.Graph().as_default():
        logits, _ = official.load(network).build(tf.constant(images), False,
                                                 record['num_classes'], **options)
        with tf.compat.v1.Session() as session:
            tf.compat.v1.train.Saver().restore(session, tf.train.latest_checkpoint(directory))
            return session.run(logits)


def read_list(path):
    """{name: shape} of a 'name shape' list (tests/data/variables, reference_names)."""
    shapes = collections.OrderedDict()
    with open(path) as f:
        for line in f:
            name, shape = line.split()
            shapes[name] = () if shape == 'scalar' else tuple(int(n) for n in shape.split(','))
    return shapes


@pytest.mark.parametrize('network,fixture', FIXTURES)
def test_converted_weights_give_the_references_logits(network, fixture, tmp_path):
    options, image_size, seed, expected = fixture_spec(network)
    output = str(tmp_path / 'imported')
    plan = convert.convert(network, os.path.join(WEIGHTS, fixture), output,
                           image_size=conversion_size(network, image_size), options=options)
    if convert.table(network).SOURCE.background_class:
        expected = expected[:, 1:]  # the converter drops tensorflow/tpu's background class
    assert plan.fresh == [] and plan.num_classes == expected.shape[1] == 10
    got = eval_logits(network, output, fixture_images(image_size, seed), options)
    difference = np.abs(got - expected).max() / np.abs(expected).max()
    print('%s %s: max relative logit difference %.2e' % (network, fixture, difference))
    assert difference < RELATIVE_TOLERANCE
    # the predicted classes agree too (a check that does not depend on the scale)
    assert (got.argmax(1) == expected.argmax(1)).all()


def read_arrays(path):
    """{name: array} of every tensor of a .pth state dict."""
    state = pth.read_state_dict(path)
    return collections.OrderedDict(state.arrays(state.tensors))


def test_both_pth_formats_read_the_same_tensors():
    new = read_arrays(os.path.join(WEIGHTS, 'densenet121.pth'))
    legacy = read_arrays(os.path.join(WEIGHTS, 'densenet121_legacy.pth'))
    renamed = {re.sub(r'\.(norm|conv)\.([12])\.', r'.\1\2.', k): v for k, v in legacy.items()}
    assert list(renamed) == list(new)
    for name, value in new.items():
        assert renamed[name].dtype == value.dtype and np.array_equal(renamed[name], value), name
    assert new['features.norm0.num_batches_tracked'].dtype == np.int64
    assert new['features.norm0.num_batches_tracked'].shape == ()


def test_megvii_checkpoint_dict_and_module_prefix():
    path = os.path.join(WEIGHTS, 'shufflenet_v1_legacy.pth')
    raw, _, _ = pth._open(path)
    assert list(raw) == ['state_dict']
    state = pth.read_state_dict(path)
    assert list(state.tensors) == list(raw['state_dict'])
    assert next(iter(state.tensors)) == 'module.first_conv.0.weight'
    zoo = read_list(os.path.join(DATA, 'variables', 'shufflenet_v1.txt'))
    found = convert.table('shufflenet_v1').destinations(state.shapes, set(zoo))
    assert found['module.first_conv.0.weight'][0] == 'shufflenet_v1/conv1/kernel'
    assert found['module.features.5.branch_main_2.0.weight'][0] == \
        'shufflenet_v1/stage3/unit1/conv2/kernel'
    assert found['module.features.12.branch_main_1.3.weight'][0] == \
        'shufflenet_v1/stage4/unit0/dw/depthwise_kernel'
    assert found['module.classifier.0.weight'][0] == 'shufflenet_v1/fc/kernel'


@pytest.mark.parametrize('network', official.NETWORK_NAMES)
def test_full_size_reference_maps_completely(network):
    """Every tensor of the full-size published model (names and shapes listed by the
    generation script from the reference's constructors) has exactly one destination of the
    right shape, and every variable of the zoo's network (tests/data/variables) one source."""
    source = read_list(os.path.join(DATA, 'reference_names', network + '.txt'))
    zoo = read_list(os.path.join(DATA, 'variables', network + '.txt'))
    net = official.load(network)
    plan = mapping.plan(source, convert.table(network), zoo, net.classifier_scopes)
    assert plan.fresh == [] and plan.num_classes == 1000
    assert sorted(a.target for a in plan.assignments) == sorted(zoo)
    assert sorted([a.source for a in plan.assignments] + plan.ignored) == sorted(source)
    for name in plan.ignored:  # only counters and training state are left out
        assert name.endswith('num_batches_tracked') or name == 'global_step', name
    for item in plan.assignments:
        assert tuple(item.layout.shape(source[item.source])) == zoo[item.target]


def test_a_tpu_model_dir_checkpoint_maps_its_averages_and_skips_training_state():
    """What amoeba_net.py's model_dir holds besides the model: RMSProp's two slots of every
    trainable variable, the moving averages (weights and BN statistics), the global step."""
    model = read_list(os.path.join(DATA, 'reference_names', 'amoebanet_d.txt'))
    model.pop('global_step', None)
    source = {'global_step': ()}
    for name, shape in model.items():
        source[name] = source[name + '/ExponentialMovingAverage'] = shape
        if not name.endswith(('moving_mean', 'moving_variance')):
            source[name + '/RMSProp'] = source[name + '/RMSProp_1'] = shape
    zoo = read_list(os.path.join(DATA, 'variables', 'amoebanet_d.txt'))
    plan = mapping.plan(source, convert.table('amoebanet_d'), zoo,
                        official.load('amoebanet_d').classifier_scopes)
    assert sorted(a.target for a in plan.assignments) == sorted(zoo)
    assert all(a.source.endswith('/ExponentialMovingAverage') for a in plan.assignments)
    assert sorted(plan.ignored) == sorted(set(source) - {a.source for a in plan.assignments})


def _small_plan_inputs():
    source = read_list(os.path.join(DATA, 'reference_names', 'vgg16.txt'))
    zoo = read_list(os.path.join(DATA, 'variables', 'vgg16.txt'))
    return source, zoo, convert.table('vgg16'), official.load('vgg16').classifier_scopes


def test_a_reference_tensor_without_destination_stops_with_its_name_and_shape():
    source, zoo, names, scopes = _small_plan_inputs()
    source['features.99.weight'] = (8, 8, 3, 3)
    with pytest.raises(UsageError) as error:
        mapping.plan(source, names, zoo, scopes)
    assert 'reference tensor features.99.weight (8x8x3x3)' in str(error.value)


def test_a_zoo_variable_left_empty_stops_with_its_name_and_shape():
    source, zoo, names, scopes = _small_plan_inputs()
    del source['classifier.3.bias']
    with pytest.raises(UsageError, match=r'zoo variable vgg16/fc7/bias \(4096\) receives nothing'):
        mapping.plan(source, names, zoo, scopes)


def test_a_shape_mismatch_names_both_sides():
    source, zoo, names, scopes = _small_plan_inputs()
    source['features.0.weight'] = (32, 3, 3, 3)
    with pytest.raises(UsageError) as error:
        mapping.plan(source, names, zoo, scopes)
    message = str(error.value)
    assert 'features.0.weight (32x3x3x3' in message
    assert 'vgg16/conv1_1/kernel (3x3x3x64)' in message


def test_vgg_fc6_rows_follow_the_nhwc_flatten():
    """torch flattens [C, H, W]; the zoo [H, W, C]: row (h, w, c) of the zoo kernel is
    column c*H*W + h*W + w of torch's weight."""
    channels, size, out = 3, 2, 5
    weight = np.random.RandomState(0).normal(size=(out, channels * size * size))
    kernel = layouts.linear_from_nchw_flatten(size, size).apply(weight)
    for h in range(size):
        for w in range(size):
            for c in range(channels):
                np.testing.assert_array_equal(kernel[(h * size + w) * channels + c],
                                              weight[:, c * size * size + h * size + w])


def _import(args):
    return subprocess.run([sys.executable, os.path.join(ROOT, 'import_weights.py')] + args,
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=600)


def test_another_class_count_leaves_the_classifier_fresh_and_says_so(tmp_path):
    options, _, _, _ = fixture_spec('vgg16')
    keep, fresh = str(tmp_path / 'keep'), str(tmp_path / 'fresh')
    source = os.path.join(WEIGHTS, 'vgg16.pth')
    convert.convert('vgg16', source, keep, options=options)
    plan = convert.convert('vgg16', source, fresh, num_classes=4, options=options)
    assert plan.fresh == ['vgg16/fc8/bias', 'vgg16/fc8/kernel'] and plan.num_classes == 4
    assert run_record.read(fresh)['fresh_variables'] == plan.fresh
    # everything but the classifier is carried over
    kept, new = (tf.train.load_checkpoint(tf.train.latest_checkpoint(d)) for d in (keep, fresh))
    np.testing.assert_array_equal(kept.get_tensor('vgg16/fc7/kernel'),
                                  new.get_tensor('vgg16/fc7/kernel'))
    assert new.get_tensor('vgg16/fc8/kernel').shape == (options['fc_width'], 4)


def test_label_mapping_follows_the_sorted_synsets(tmp_path):
    """torchvision's and megvii's class k is the k-th synset in sorted order; our TFRecord
    builder (like slim's) stores it as label k + 1 and the pipeline subtracts the recorded
    label_offset 1, so class k of the imported classifier is the record's label k + 1."""
    synsets = ['n01484850', 'n01440764', 'n01443537']  # created out of order
    for synset in synsets:
        os.makedirs(str(tmp_path / 'train' / synset))
        (tmp_path / 'train' / synset / 'a.JPEG').write_bytes(b'')
    labels = build_imagenet_tfrecords.read_labels(None, str(tmp_path / 'train'))
    items = build_imagenet_tfrecords.list_split(str(tmp_path / 'train'), labels, None)
    stored = {synset: label for _, label, synset, _, _ in items}
    torchvision_class = {s: k for k, s in enumerate(sorted(synsets))}  # tench, goldfish, ...
    options, _, _, _ = fixture_spec('densenet121')
    output = str(tmp_path / 'densenet121')
    convert.convert('densenet121', os.path.join(WEIGHTS, 'densenet121.pth'), output,
                    options=options)
    offset = run_record.read(output)['label_offset']
    assert {s: label - offset for s, label in stored.items()} == torchvision_class
    assert stored['n01440764'] == 1  # tench: slim's label 1, torchvision's class 0
    # megvii's 1000 classes too; tensorflow/tpu's 1001 keep background 0 only on request
    for network, classes, offset in (('shufflenet_v1', None, 1), ('amoebanet_d', None, 1),
                                     ('amoebanet_d', 1001, 0)):
        source = read_list(os.path.join(DATA, 'reference_names', network + '.txt'))
        zoo = read_list(os.path.join(DATA, 'variables', network + '.txt'))
        if classes:
            zoo = {k: v[:-1] + (classes,) if v[-1:] == (1000,) else v for k, v in zoo.items()}
        plan = mapping.plan(source, convert.table(network), zoo,
                            official.load(network).classifier_scopes, classes)
        assert plan.label_offset == offset and plan.fresh == [], network


def test_hparams_record_the_input_convention(tmp_path):
    expected = {'densenet121': 'imagenet_mean_std', 'vgg16': 'imagenet_mean_std',
                'shufflenet_v2': 'imagenet_mean_std', 'shufflenet_v1': 'megvii_bgr',
                'amoebanet_d': 'inception'}
    for network in official.NETWORK_NAMES:
        assert convert.table(network).SOURCE.preprocessing == expected[network]
    # ShuffleNetV2's own recipe feeds megvii's BGR input; torchvision's weights want mean/std.
    assert official.load('shufflenet_v2').recipe['preprocessing'] == 'megvii_bgr'
    options, _, _, _ = fixture_spec('shufflenet_v2')
    output = str(tmp_path / 'v2')
    convert.convert('shufflenet_v2', os.path.join(WEIGHTS, 'shufflenet_v2.pth'), output,
                    options=options)
    record = run_record.read(output)
    assert record['preprocessing'] == 'imagenet_mean_std' and record['label_offset'] == 1
    assert record['network'] == 'shufflenet_v2' and record['num_classes'] == 10
    assert record['imported_from'] == os.path.join(WEIGHTS, 'shufflenet_v2.pth')
    assert record['kind'] == 'imported'
    assert sorted(os.listdir(output)) == ['checkpoint', 'hparams.json',
                                          'model.ckpt-0.data-00000-of-00001',
                                          'model.ckpt-0.index']
    stored = dict(tf.train.list_variables(output))
    assert stored.pop('global_step') == [] and tf.train.load_variable(output, 'global_step') == 0
    with tf.Graph().as_default():
        official.load('shufflenet_v2').build(tf.compat.v1.placeholder(tf.float32, [1, 64, 64, 3]),
                                             True, 10, **options)
        built = {v.op.name: v.shape.as_list() for v in tf.compat.v1.global_variables()}
    assert stored == built


def test_output_dir_must_be_new_or_empty(tmp_path):
    (tmp_path / 'full').mkdir()
    (tmp_path / 'full' / 'keep.txt').write_text('mine')
    result = _import(['--network=vgg16', '--source=%s' % os.path.join(WEIGHTS, 'vgg16.pth'),
                      '--output_dir=%s' % (tmp_path / 'full')])
    assert result.returncode == 2 and 'not an empty directory' in result.stderr
    assert os.listdir(str(tmp_path / 'full')) == ['keep.txt']
    result = _import(['--network=vgg16', '--source=%s' % (tmp_path / 'missing.pth'),
                      '--output_dir=%s' % (tmp_path / 'out')])
    assert result.returncode == 2 and 'no such file' in result.stderr
    assert [line for line in result.stderr.splitlines() if line] == [result.stderr.strip()]


def full_size_state_dict(network):
    """Random tensors with the full-size reference's names and shapes (variances positive)."""
    rng = np.random.RandomState(0)
    source = read_list(os.path.join(DATA, 'reference_names', network + '.txt'))
    return collections.OrderedDict(
        (name, (rng.uniform(0.5, 1.5, shape) if name.endswith('running_var') else
                rng.normal(0.0, 0.05, shape)).astype(np.float32))
        for name, shape in source.items() if not name.endswith('num_batches_tracked'))


def test_import_then_evaluate_and_fine_tune_on_the_demo_data(demo_dir, tmp_path):
    """import_weights.py turns a full-size torchvision-named ShuffleNetV2 file into a
    directory that train.py evaluates and fine-tunes from, on the demo's 10 classes. About
    30 s: the real network's full-size file, through every mode that reads an import."""
    source = str(tmp_path / 'shufflenetv2_x1.pth')
    tensors = full_size_state_dict('shufflenet_v2')
    write_pth(source, tensors)
    imported = str(tmp_path / 'imported')
    result = _import(['--network=shufflenet_v2', '--source=' + source, '--output_dir=' + imported,
                      '--num_classes=10'])
    assert result.returncode == 0, result.stderr
    assert ('classifier: the reference has 1000 classes, --num_classes=10: shufflenet_v2/fc/bias, '
            'shufflenet_v2/fc/kernel freshly initialized') in result.stdout
    assert 'preprocessing imagenet_mean_std, 10 classes, label_offset 1' in result.stdout
    np.testing.assert_array_equal(
        tf.train.load_variable(imported, 'shufflenet_v2/stage3/unit2/branch2/dw/depthwise_kernel'),
        tensors['stage3.2.branch2.3.weight'].transpose(2, 3, 0, 1))
    small = ['--network=shufflenet_v2', '--image_size=32', '--batch_size=16',
             '--data_dir=' + demo_dir]
    evaluate = run_train(['--mode=evaluate', '--eval_dir=' + imported] + small)
    assert evaluate.returncode == 0, evaluate.stderr
    assert [int(row[0]) for row in table_rows(evaluate.stdout)] == [0]
    tuned = str(tmp_path / 'tuned')
    train = run_train(['--mode=train', '--max_train_steps=4', '--display_every=2',
                       '--restore_path=' + imported, '--log_dir=' + tuned] + small)
    assert train.returncode == 0, train.stderr
    assert 'restored' in train.stdout
    assert [int(line[0]) for line in train_lines(train.stdout)] == [2, 4]
    # fine-tuning started from the imported weights (a fresh start would not correlate with
    # them) and moved them
    before = tf.train.load_variable(imported, 'shufflenet_v2/conv1/kernel').ravel()
    after = tf.train.load_variable(tuned, 'shufflenet_v2/conv1/kernel').ravel()
    assert np.corrcoef(before, after)[0, 1] > 0.9
    assert not np.array_equal(before, after)
    # every use of the directory feeds the input its weights expect, not the recipe's BGR
    assert run_record.read(tuned)['preprocessing'] == 'imagenet_mean_std'
    for args in (['--mode=evaluate', '--eval_dir=' + imported],
                 ['--mode=predict', '--eval_dir=' + imported, '--images=x.jpg'],
                 ['--mode=train', '--network=shufflenet_v2', '--restore_path=' + imported]):
        assert resolved(args).preprocessing == 'imagenet_mean_std', args
    assert resolved(['--mode=evaluate', '--eval_dir=' + imported,
                     '--preprocessing=megvii_bgr']).preprocessing == 'megvii_bgr'
    # and it exports and predicts like any checkpoint directory
    exported = str(tmp_path / 'export')
    result = run_train(['--mode=export', '--eval_dir=' + imported, '--export_dir=' + exported,
                        '--export_formats=saved_model'])
    assert result.returncode == 0, result.stderr
    image = str(tmp_path / 'digit.jpg')
    Image.fromarray(np.full([64, 48, 3], 200, np.uint8)).save(image)
    for source in (imported, exported):
        result = run_train(['--mode=predict', '--eval_dir=' + source, '--images=' + image,
                            '--top_k=3'])
        assert result.returncode == 0, result.stderr
        assert 'printing class indices' in result.stdout  # an import knows no class names
        assert re.search(r'digit\.jpg: \d \d\.\d{4}, \d \d\.\d{4}, \d \d\.\d{4}$',
                         result.stdout, re.M), result.stdout


def resolved(args):
    """The configuration train.py resolves from these flags."""
    return command_line.resolve(['train.py'] + args, official.load_all())[1]


def test_tpu_checkpoint_from_the_command_line_gives_its_logits(tmp_path):
    """tensorflow/tpu's checkpoint directory (1 + 10 classes, moving averages), converted by
    import_weights.py at the reduced reference's sizes."""
    options, image_size, seed, expected = fixture_spec('amoebanet_d')
    imported = str(tmp_path / 'imported')
    result = _import(['--network=amoebanet_d', '--image_size=%d' % image_size,
                      '--num_cells=%d' % options['num_cells'],
                      '--reduction_size=%d' % options['reduction_size'],
                      '--source=' + os.path.join(WEIGHTS, 'amoebanet_d'),
                      '--output_dir=' + imported])
    assert result.returncode == 0, result.stderr
    assert 'preprocessing inception, 10 classes, label_offset 1' in result.stdout
    record = run_record.read(imported)
    assert (record['num_cells'], record['reduction_size'], record['image_size']) == (3, 16, 72)
    expected = expected[:, 1:]  # background class 0 dropped
    got = eval_logits('amoebanet_d', imported, fixture_images(image_size, seed), options)
    difference = np.abs(got - expected).max() / np.abs(expected).max()
    print('amoebanet_d: max relative logit difference %.2e' % difference)
    assert difference < RELATIVE_TOLERANCE
    assert (got.argmax(1) == expected.argmax(1)).all()
    # the averaged weights (which the reference evaluates) are written twice: as the weights
    # and as their averages, which the recipe (moving_average_decay) evaluates
    stored = dict(tf.train.list_variables(imported))
    assert 'amoebanet_d/final_layer/FC/kernel/ExponentialMovingAverage' in stored
    result = _import(['--network=vgg16', '--num_cells=3', '--source=x', '--output_dir=y'])
    assert result.returncode == 2 and 'does not apply to --network=vgg16' in result.stderr


@pytest.mark.parametrize('name, message', [
    ('densenet121.pth', 'cut.pth is damaged: a zip archive without its end'),
    ('densenet121_legacy.pth', 'cut.pth: truncated')])
def test_a_truncated_or_foreign_file_is_one_error(name, message, tmp_path):
    data = open(os.path.join(WEIGHTS, name), 'rb').read()
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(UsageError, match=message):
        pth.read_state_dict(str(cut))
    with pytest.raises(UsageError, match='cannot read %s: Is a directory' % tmp_path):
        pth.read_state_dict(str(tmp_path))
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint\n')
    with pytest.raises(UsageError, match='neither a zip nor a legacy torch checkpoint'):
        pth.read_state_dict(str(text))


def test_tpu_checkpoints_are_given_as_prefix_or_directory(tmp_path):
    directory = os.path.join(WEIGHTS, 'amoebanet_d')
    prefix = os.path.join(directory, 'model.ckpt-7')
    assert sources.checkpoint_prefix(directory) == prefix
    assert sources.checkpoint_prefix(prefix) == prefix
    reference = sources.read(directory, 'tf_checkpoint')
    assert reference.shapes['final_layer/FC/biases'] == (11,)
    assert dict(reference.arrays(['final_layer/FC/biases']))['final_layer/FC/biases'].shape == (
        11,)
    with pytest.raises(UsageError, match='no TF checkpoints'):
        sources.checkpoint_prefix(str(tmp_path))


def test_two_tensors_for_one_variable_stop_the_conversion():
    source = read_list(os.path.join(DATA, 'reference_names', 'shufflenet_v1.txt'))
    zoo = read_list(os.path.join(DATA, 'variables', 'shufflenet_v1.txt'))
    source['first_conv.0.weight'] = source['module.first_conv.0.weight']  # without 'module.'
    with pytest.raises(UsageError, match=r'reference tensors module.first_conv.0.weight and '
                       r'first_conv.0.weight both map to shufflenet_v1/conv1/kernel'):
        mapping.plan(source, convert.table('shufflenet_v1'), zoo,
                     official.load('shufflenet_v1').classifier_scopes)


def test_a_file_of_another_network_is_named_as_such(tmp_path):
    with pytest.raises(UsageError, match='a file for another network'):
        convert.convert('vgg16', os.path.join(WEIGHTS, 'densenet121.pth'), str(tmp_path / 'o'))
    with pytest.raises(UsageError, match=r'reference tensor features.conv0.weight \(16x3x7x7\) '
                       r'maps to no variable of the zoo\'s vgg16'):
        convert.convert('vgg16', os.path.join(WEIGHTS, 'densenet121.pth'), str(tmp_path / 'o'),
                        num_classes=10)
    assert not (tmp_path / 'o').exists()


# A .pth read by sources.read in a child process, as import_weights.py reads it first.
def test_only_a_wholly_absent_aux_head_is_left_fresh():
    """tensorflow/tpu's --use_aux_head=false: no aux_<n>/ tensors. The head starts fresh;
    any other missing variable, or a head present in part, still stops the conversion."""
    source = read_list(os.path.join(DATA, 'reference_names', 'amoebanet_d.txt'))
    without_aux = collections.OrderedDict(
        (k, v) for k, v in source.items() if not k.startswith('aux_'))
    zoo = read_list(os.path.join(DATA, 'variables', 'amoebanet_d.txt'))
    aux = sorted(name for name in zoo if name.startswith('amoebanet_d/aux_head/'))
    names, scopes = convert.table('amoebanet_d'), official.load('amoebanet_d').classifier_scopes
    plan = mapping.plan(without_aux, names, zoo, scopes)
    assert plan.absent == {'amoebanet_d/aux_head': aux} and len(aux) == 12
    assert plan.fresh == [] and sorted(a.target for a in plan.assignments) == sorted(
        set(zoo) - set(aux))
    assert mapping.plan(source, names, zoo, scopes).absent == {}
    del without_aux['cell_0/beginning_bn/gamma']
    with pytest.raises(UsageError, match='zoo variable amoebanet_d/cell_0/beginning_bn/gamma '):
        mapping.plan(without_aux, names, zoo, scopes)
    del source['aux_3/aux_logits/proj/weights']
    with pytest.raises(UsageError, match='zoo variable amoebanet_d/aux_head/aux_logits/proj/'):
        mapping.plan(source, names, zoo, scopes)


def test_a_tpu_checkpoint_trained_without_aux_head_imports_and_says_so(tmp_path, capsys):
    """The fixture checkpoint written again without its aux_<n>/ tensors (weights, averages,
    slots): the import leaves the aux head fresh, says so, and carries every other tensor."""
    options, image_size, _, _ = fixture_spec('amoebanet_d')
    reader = tf.train.load_checkpoint(os.path.join(WEIGHTS, 'amoebanet_d'))
    kept = sorted(n for n in reader.get_variable_to_shape_map() if not n.startswith('aux_'))
    source = str(tmp_path / 'model.ckpt-7')
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        session.run(tf.raw_ops.SaveV2(prefix=source, tensor_names=kept,
                                      shape_and_slices=[''] * len(kept),
                                      tensors=[reader.get_tensor(n) for n in kept]))
    imported = str(tmp_path / 'imported')
    code = import_weights.main([
        'import_weights.py', '--network=amoebanet_d', '--image_size=%d' % image_size,
        '--num_cells=%d' % options['num_cells'], '--reduction_size=%d' % options['reduction_size'],
        '--num_classes=11', '--source=' + source, '--output_dir=' + imported])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert ('amoebanet_d/aux_head: the reference has none of it (trained without this '
            'training-only branch, e.g. tensorflow/tpu --use_aux_head=false): its 12 variables '
            'freshly initialized') in out.out
    fresh = run_record.read(imported)['fresh_variables']
    assert len(fresh) == 12 and all(n.startswith('amoebanet_d/aux_head/') for n in fresh)
    # the rest as in the reference (11 classes: background kept, so no layout changes a value)
    stored = tf.train.load_checkpoint(imported)
    carried = {n: d[0] for n, d in convert.table('amoebanet_d').destinations(
        dict.fromkeys(kept), None).items() if d}
    variables = {n for n in stored.get_variable_to_shape_map()
                 if n != 'global_step' and not n.endswith('/ExponentialMovingAverage')}
    assert variables == set(carried.values()) | set(fresh) and len(carried) == 406
    for name, target in carried.items():
        np.testing.assert_array_equal(stored.get_tensor(target), reader.get_tensor(name))

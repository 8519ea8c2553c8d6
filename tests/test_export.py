"""Export (SavedModel, frozen graph, ONNX) and predict: the exported logits are the evaluate
path's, the encoded-image signature preprocesses as the evaluation pipeline does, predict
agrees with evaluate, and bad input is one line with nothing left behind."""
import csv
import glob
import json
import os
import shutil

import numpy as np
import onnx as onnx_model
import onnxruntime
import pytest
import tensorflow as tf

import official
from common import (command_line, export, input_pipeline, preprocessing, records, run_record,
                    runtime, trainer)
from common.errors import UsageError
from conftest import checkpoint_steps, make_config, run_train, table_rows

# network -> (image size, its own options): the smallest sizes the architectures take.
SIZES = {'densenet121': (32, {}), 'shufflenet_v1': (32, {}), 'shufflenet_v2': (32, {}),
         'vgg16': (32, {}), 'amoebanet_d': (72, {'num_cells': 3, 'reduction_size': 16})}
STEP = 7
# Every op type the networks' frozen inference graphs use: anything else (variables, training,
# random, summary or Ascend ops) must not appear.
INFERENCE_OPS = {'AddV2', 'AvgPool', 'BiasAdd', 'ConcatV2', 'Const', 'Conv2D',
                 'DepthwiseConv2dNative', 'FusedBatchNormV3', 'Identity', 'MatMul', 'MaxPool',
                 'Mean', 'Mul', 'Pack', 'Pad', 'PadV2', 'Placeholder', 'Relu', 'Reshape',
                 'Shape', 'Slice', 'Softmax', 'Split', 'StridedSlice', 'Transpose'}


def _randomized(shapes, rng):
    """Non-trivial values for every variable (BN statistics included): {name: array}."""
    values = {}
    for name, shape in shapes.items():
        if name.endswith(('moving_variance', 'gamma')):
            values[name] = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(('moving_mean', 'beta', 'bias')):
            values[name] = rng.normal(0.0, 0.1, shape)
        else:
            values[name] = rng.normal(0.0, np.sqrt(2.0 / max(1, np.prod(shape[:-1]))), shape)
    return {name: x.astype(np.float32) for name, x in values.items()}


def make_checkpoint(directory, name, averages, data_dir):
    """A checkpoint of `name` at its small size with random weights (and, when `averages`,
    weight averages that differ from them), with hparams.json as training writes it."""
    size, options = SIZES[name]
    cfg = make_config(name, mode='evaluate', num_classes=10, image_size=size, data_dir=data_dir,
                      **options)
    rng = np.random.RandomState(1)
    values = _randomized(trainer.model_shapes(official.load(name), cfg), rng)
    if averages:
        values.update({k + '/ExponentialMovingAverage': x * rng.uniform(0.8, 1.2, x.shape).astype(
            np.float32) for k, x in list(values.items())})
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        variables = {k: tf.compat.v1.Variable(x, name='v') for k, x in values.items()}
        variables['global_step'] = tf.compat.v1.Variable(STEP, dtype=tf.int64, name='step')
        session.run(tf.compat.v1.global_variables_initializer())
        tf.compat.v1.train.Saver(variables).save(session, os.path.join(directory, 'model.ckpt'),
                                                 global_step=STEP, write_meta_graph=False)
    with open(os.path.join(directory, run_record.HPARAMS_FILE), 'w') as f:
        json.dump(cfg.as_dict(), f)
    return cfg


def estimator_logits(cfg, prefix, images, model_dir):
    """Logits as evaluation computes them: the Estimator, the network's model_fn, the
    checkpoint loaded by the spec's scaffold (weight averages when configured)."""
    network = official.load(cfg.network)
    estimator = tf.estimator.Estimator(network.model_fn, model_dir=model_dir,
                                       params=dict(config=cfg, runtime=runtime.fixed(cfg)))
    out = estimator.predict(lambda: tf.data.Dataset.from_tensors({'image': images}),
                            checkpoint_path=prefix, yield_single_examples=False)
    return next(out)['logits']


def first_validation_jpeg(demo_dir):
    path = sorted(glob.glob(os.path.join(demo_dir, 'validation-*')))[0]
    record = next(tf.compat.v1.io.tf_record_iterator(path))
    return tf.train.Example.FromString(record).features.feature[
        records.ENCODED].bytes_list.value[0]


def pipeline_image(cfg, demo_dir):
    """The evaluation pipeline's own preprocessing of the first validation record."""
    files = sorted(glob.glob(os.path.join(demo_dir, 'validation-*')))
    num = input_pipeline.count_records(files)
    evaluate = preprocessing.PREPROCESSINGS[cfg.preprocessing].evaluate
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        features, _ = tf.compat.v1.data.make_one_shot_iterator(input_pipeline.eval_dataset(
            files, num, evaluate, cfg, 0, 1)).get_next()
        return session.run(features['image'])[0]


def resolve(argv):
    return command_line.resolve(['train.py'] + argv, official.load_all())[1]


def relative_error(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@pytest.mark.parametrize('name', official.NETWORK_NAMES)
def test_every_format_gives_the_evaluate_paths_logits(name, tmp_path, demo_dir):
    ckpt_dir, out = str(tmp_path / 'ckpt'), str(tmp_path / 'export')
    os.makedirs(ckpt_dir)
    averages = name == 'amoebanet_d'  # its recipe evaluates the weight averages
    make_checkpoint(ckpt_dir, name, averages, demo_dir)
    # VGG16's ONNX conversion takes tf2onnx 140 s for its 528 MB of weights; its ops (conv,
    # max pool, dense) are all converted and checked in the other networks' exports.
    formats = ['--export_formats=saved_model,frozen_graph'] if name == 'vgg16' else []
    # network, sizes and classes come from the checkpoint's hparams.json
    cfg = resolve(['--mode=export', '--eval_dir=' + ckpt_dir, '--export_dir=' + out,
                   '--export_batch_size=2'] + formats)
    assert (cfg.network, cfg.num_classes, cfg.image_size) == (name, 10, SIZES[name][0])
    export.export_model(official.load(name), cfg)
    size = cfg.image_size
    images = np.random.RandomState(2).normal(0, 1, [2, size, size, 3]).astype(np.float32)
    prefix = os.path.join(ckpt_dir, 'model.ckpt-%d' % STEP)
    expected = estimator_logits(cfg, prefix, images, str(tmp_path / 'estimator'))

    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta = tf.compat.v1.saved_model.load(session, ['serve'], os.path.join(out, 'saved_model'))
        signature = meta.signature_def['serving_default']
        saved = session.run(signature.outputs['logits'].name,
                            {signature.inputs['images'].name: images})
        # the encoded-image signature: the same JPEG through the pipeline and the graph
        encoded = meta.signature_def['encoded_images']
        jpeg = first_validation_jpeg(demo_dir)
        in_graph, from_bytes = session.run(
            ['input:0', encoded.outputs['logits'].name], {encoded.inputs['image_bytes'].name:
                                                          [jpeg]})
        piped = pipeline_image(cfg, demo_dir)
        from_pipeline = session.run(signature.outputs['logits'].name, {
            signature.inputs['images'].name: piped[None]})
    assert relative_error(saved, expected) < 1e-5
    assert relative_error(in_graph[0], piped) < 1e-5
    assert relative_error(from_bytes, from_pipeline) < 1e-5

    graph_def = tf.compat.v1.GraphDef()
    with open(os.path.join(out, 'frozen_graph.pb'), 'rb') as f:
        graph_def.ParseFromString(f.read())
    ops = {n.op for n in graph_def.node}
    # what an inference graph may hold, listed here rather than taken from export.py
    assert ops <= INFERENCE_OPS, ops - INFERENCE_OPS
    assert all(not n.attr['is_training'].b for n in graph_def.node
               if n.op.startswith('FusedBatchNorm'))  # batch norm in inference form
    assert [n.name for n in graph_def.node if n.op == 'Placeholder'] == ['input']
    with tf.Graph().as_default() as graph, tf.compat.v1.Session() as session:
        tf.import_graph_def(graph_def, name='')
        assert graph.get_tensor_by_name('input:0').shape.as_list() == [2, size, size, 3]
        frozen, probabilities = session.run(['logits:0', 'probabilities:0'], {'input:0': images})
    assert relative_error(frozen, expected) < 1e-5
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)

    if name != 'vgg16':
        onnx = onnxruntime.InferenceSession(os.path.join(out, 'model.onnx'),
                                            providers=['CPUExecutionProvider'])
        assert relative_error(onnx.run(['logits:0'], {'input:0': images})[0], expected) < 1e-5
        # a free batch dimension: one image gives the first image's logits
        single = onnx.run(['logits:0'], {'input:0': images[:1]})[0]
        assert single.shape == (1, 10) and relative_error(single, expected[:1]) < 1e-5
        # NCHW throughout: the input's is the only layout transpose left (common/onnx_rewrite.py;
        # ShuffleNetV2 had 64 before, around each channel shuffle and split); the shuffles'
        # own are 5-D. (AmoebaNet-D keeps 8 more, around its factorized reductions' shifts.)
        nodes = onnx_model.load(os.path.join(out, 'model.onnx')).graph.node
        layouts = [n for n in nodes if n.op_type == 'Transpose' and len(n.attribute[0].ints) == 4]
        if name != 'amoebanet_d':
            assert [n.input[0] for n in layouts] == ['input:0']
        if name == 'shufflenet_v1':
            # grouped 1x1s as single Convs (group 3), batch norms folded in: 24 of the 31 at
            # 32 px; on stage 4's 1x1 maps tf2onnx reshapes instead of transposing, and they
            # keep their split (at 224 px all 31 are grouped: 49 Convs, no Split, no batch norm)
            grouped = [n for n in nodes if n.op_type == 'Conv' and any(
                a.name == 'group' and a.i == 3 for a in n.attribute)]
            ops = [n.op_type for n in nodes]
            assert (len(grouped), ops.count('Split'), ops.count('BatchNormalization')) == (
                24, 7, 11)

    if averages:  # the averages were exported, not the raw weights
        raw = estimator_logits(make_config(name, mode='evaluate', num_classes=10,
                                           image_size=size, moving_average_decay=0,
                                           **SIZES[name][1]),
                               prefix, images, str(tmp_path / 'raw'))
        assert relative_error(raw, expected) > 1e-3

    with open(os.path.join(out, 'labels.txt')) as f:
        assert f.read().split() == ['digit_%d' % i for i in range(10)]
    atc = [line.split() for line in open(os.path.join(out, 'atc_command.txt'))
           if line.startswith('atc ')]
    for soc in ('Ascend310', 'Ascend310P3'):
        for aipp in (False, True):
            assert sum(('--soc_version=' + soc in c) and (('--insert_op_conf=aipp.cfg' in c)
                                                           == aipp) for c in atc) == 1
    for command in atc:
        assert {'--model=frozen_graph.pb', '--framework=3', '--out_nodes="logits:0"',
                '--input_shape="input:2,%d,%d,3"' % (size, size)} <= set(command), command
    assert 'input_format: RGB888_U8' in open(os.path.join(out, 'aipp.cfg')).read()


def test_aipp_reproduces_each_preprocessing():
    """(pixel - min_chn) * var_reci_chn, after the optional R/B swap, is the normalization of
    the evaluation preprocessing (on a flat image its crop and resize change no value)."""
    rgb = np.array([10, 100, 200], np.uint8)
    for name, record in sorted(preprocessing.PREPROCESSINGS.items()):
        with tf.Graph().as_default(), tf.compat.v1.Session() as session:
            expected = session.run(record.evaluate(tf.constant(np.tile(rgb, [40, 48, 1])),
                                                   32))[5, 5]
        aipp = export.aipp_config(make_config(preprocessing=name, image_size=32))
        values = dict(line.strip().split(': ') for line in aipp.splitlines()
                      if line.startswith('  ') and ': ' in line)
        pixel = rgb[::-1] if values['rbuv_swap_switch'] == 'true' else rgb
        device = [(pixel[i] - float(values['min_chn_%d' % i]))
                  * float(values['var_reci_chn_%d' % i]) for i in range(3)]
        np.testing.assert_allclose(device, expected, rtol=1e-4, atol=1e-4, err_msg=name)


def _demo_jpegs(demo_dir, directory):
    """The demo validation images as JPEG files named by their label; returns their number."""
    os.makedirs(directory)
    path = sorted(glob.glob(os.path.join(demo_dir, 'validation-*')))
    written = 0
    for shard in path:
        for record in tf.compat.v1.io.tf_record_iterator(shard):
            feature = tf.train.Example.FromString(record).features.feature
            label = feature[records.LABEL].int64_list.value[0] - records.FIRST_LABEL
            with open(os.path.join(directory, '%04d_label%d.jpg' % (written, label)), 'wb') as f:
                f.write(feature[records.ENCODED].bytes_list.value[0])
            written += 1
    return written


def _accuracy(csv_path):
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    hits = [int(r['class_1']) == int(r['path'].rsplit('label', 1)[1].split('.')[0]) for r in rows]
    return 100.0 * sum(hits) / len(hits), len(rows)


def test_predict_agrees_with_evaluate(trained, tmp_path):
    """Every demo validation image predicted from the checkpoint directory and from its export:
    the top-1 accuracy is evaluate's; a bad file is reported, skipped, and makes the exit 1."""
    images = str(tmp_path / 'images')
    count = _demo_jpegs(trained['data_dir'], images)
    with open(os.path.join(images, 'broken.jpg'), 'w') as f:
        f.write('not an image')
    last = checkpoint_steps(trained['log_dir'])[-1]
    top1 = [row[2] for row in table_rows(trained['evaluate']) if row[0] == last][0]
    # training wrote the class names beside its checkpoints
    with open(os.path.join(trained['log_dir'], 'labels.txt')) as f:
        assert f.read().split() == ['digit_%d' % i for i in range(10)]

    out = str(tmp_path / 'export')
    exported = run_train(['--mode=export', '--eval_dir=' + trained['log_dir'],
                          '--export_dir=' + out, '--export_formats=saved_model'])
    assert exported.returncode == 0, exported.stderr
    # a directory from the checkpoint directory, a glob from the export
    for source, pattern in ((trained['log_dir'], images), (out, os.path.join(images, '*.jpg'))):
        csv_path = str(tmp_path / ('predictions_%s.csv' % os.path.basename(source)))
        result = run_train(['--mode=predict', '--eval_dir=' + source, '--images=' + pattern,
                            '--output=' + csv_path, '--batch_size=64'])
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip().splitlines() == [
            'error: %s: not a decodable image (JPEG, PNG, BMP or GIF)'
            % os.path.join(images, 'broken.jpg')]
        accuracy, rows = _accuracy(csv_path)
        assert rows == count
        assert abs(accuracy - top1) < 0.01, (source, accuracy, top1)
        assert 'digit_' in result.stdout and '1 failed' in result.stdout


def _one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_export_refuses_bad_input_and_leaves_nothing(trained, tmp_path):
    source = trained['log_dir']
    work = tmp_path / 'work'
    work.mkdir()

    def export_to(name, *args):
        return run_train(['--mode=export', '--eval_dir=' + source,
                          '--export_dir=' + str(work / name), '--export_formats=saved_model']
                         + list(args))

    _one_line_error(run_train(['--mode=export', '--eval_dir=' + str(work),
                               '--export_dir=' + str(work / 'a')]), 'no model.ckpt-N')
    _one_line_error(export_to('b', '--network=vgg16'), 'densenet121')
    _one_line_error(export_to('c', '--num_classes=5'), '--num_classes=5', '10')
    # without hparams.json the checkpoint itself tells: another network's variables
    bare = work / 'bare'
    bare.mkdir()
    for path in glob.glob(os.path.join(source, 'model.ckpt-*')) + [
            os.path.join(source, 'checkpoint')]:
        shutil.copy(path, str(bare))
    _one_line_error(run_train(['--mode=export', '--network=shufflenet_v2', '--num_classes=10',
                               '--image_size=32', '--preprocessing=imagenet_mean_std',
                               '--eval_dir=' + str(bare),
                               '--export_dir=' + str(work / 'd')]), 'does not fit')
    # an existing directory: refused, and with --overwrite only an earlier export is replaced
    keep = work / 'keep'
    keep.mkdir()
    (keep / 'mine.txt').write_text('precious')
    _one_line_error(export_to('keep'), 'not empty', '--overwrite')
    _one_line_error(export_to('keep', '--overwrite'), 'not an export')
    assert (keep / 'mine.txt').read_text() == 'precious'
    assert export_to('e').returncode == 0
    again = export_to('e', '--overwrite')
    assert again.returncode == 0, again.stderr
    # a missing optional dependency: named when asked for, skipped (and said) by default
    blocker = work / 'no_onnx'
    blocker.mkdir()
    (blocker / 'tf2onnx.py').write_text('raise ImportError("tf2onnx is not installed")\n')
    env = {'PYTHONPATH': str(blocker)}
    _one_line_error(run_train(['--mode=export', '--eval_dir=' + source, '--export_formats=onnx',
                               '--export_dir=' + str(work / 'f')], env=env), 'tf2onnx', '.[onnx]')
    skipped = run_train(['--mode=export', '--eval_dir=' + source,
                         '--export_dir=' + str(work / 'g')], env=env)
    assert skipped.returncode == 0, skipped.stderr
    assert 'skipping onnx: tf2onnx not installed' in skipped.stdout
    assert sorted(os.listdir(str(work / 'g'))) == [
        'aipp.cfg', 'atc_command.txt', 'frozen_graph.pb', 'hparams.json', 'labels.txt',
        'saved_model']
    # nothing partial anywhere: only the directories made above
    assert sorted(os.listdir(str(work))) == ['bare', 'e', 'g', 'keep', 'no_onnx']


def test_a_failed_export_leaves_nothing_and_keeps_the_earlier_one(tmp_path, demo_dir,
                                                                  monkeypatch):
    """A converter failing half-way: one line naming the format; the staging directory and the
    parents made for it are gone, and an earlier export replaced with --overwrite survives."""
    ckpt = str(tmp_path / 'ckpt')
    os.makedirs(ckpt)
    make_checkpoint(ckpt, 'shufflenet_v2', False, demo_dir)
    network = official.load('shufflenet_v2')
    out = tmp_path / 'deep' / 'er' / 'export'
    args = ['--mode=export', '--eval_dir=' + ckpt, '--export_dir=' + str(out)]

    def broken(*_):
        raise ValueError('the converter broke\nsecond line')

    monkeypatch.setattr(export, '_write_onnx', broken)
    with pytest.raises(UsageError, match='^cannot export onnx: ValueError: the converter broke$'):
        export.export_model(network, resolve(args))
    assert not (tmp_path / 'deep').exists()
    export.export_model(network, resolve(args + ['--export_formats=saved_model']))
    before = sorted(os.listdir(str(out)))
    with pytest.raises(UsageError, match='cannot export onnx'):
        export.export_model(network, resolve(args + ['--overwrite']))
    assert sorted(os.listdir(str(out))) == before
    assert os.listdir(str(out.parent)) == ['export']


def test_overwrite_replaces_only_an_export(tmp_path):
    """--overwrite refuses a directory holding anything an export does not write (a
    predictions file, notes) and a symbolic link, before anything is exported."""
    earlier = tmp_path / 'export'
    earlier.mkdir()
    (earlier / run_record.HPARAMS_FILE).write_text(json.dumps({'export': {}}))
    (earlier / export.FROZEN_GRAPH).write_bytes(b'graph')
    export._check_target(str(earlier), overwrite=True)
    (earlier / 'preds.csv').write_text('path,class_1\n')
    (earlier / 'notes.txt').write_text('mine')
    with pytest.raises(UsageError, match=r'holds files an export does not write \(notes.txt, '
                                         r'preds.csv\)'):
        export._check_target(str(earlier), overwrite=True)
    link = tmp_path / 'latest'
    link.symlink_to(earlier)
    with pytest.raises(UsageError, match='is a symbolic link'):
        export._check_target(str(link), overwrite=True)


def _write_in(directory, name):
    with open(os.path.join(directory, name), 'w') as f:
        f.write(name)


@pytest.mark.parametrize('exchange', [True, False])
def test_a_replacement_keeps_one_directory_in_place(exchange, tmp_path, monkeypatch):
    """Killed right after the switch, the new directory is in place (swapped in one step where
    the system can; otherwise renamed aside first); the leftover is removed by the next write
    of that target once its process is gone."""
    import subprocess
    import sys
    from common import staging
    target = str(tmp_path / 'out')
    with staging.new_directory(target) as directory:
        _write_in(directory, 'old')
    if not exchange:
        monkeypatch.setattr(staging, '_exchange', lambda first, second: False)
    seen = []
    real_rename = os.rename

    def watching_rename(source, destination):
        seen.append(sorted(os.listdir(target)) if os.path.isdir(target) else None)
        real_rename(source, destination)

    monkeypatch.setattr(os, 'rename', watching_rename)

    def killed(path, **_):
        raise KeyboardInterrupt  # the process dies before the old one is removed

    monkeypatch.setattr(staging.shutil, 'rmtree', killed)
    with pytest.raises(KeyboardInterrupt):
        with staging.new_directory(target, replace=True) as directory:
            _write_in(directory, 'new')
    assert os.listdir(target) == ['new']
    assert seen == ([] if exchange else [['old'], None])  # the fallback has a gap between
    monkeypatch.undo()
    leftovers = [n for n in os.listdir(str(tmp_path)) if n.startswith('.out.')]
    assert len(leftovers) == 1
    # another process's leftover, whose process is gone, goes at the next write
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
    renamed = leftovers[0].replace('-%d.' % os.getpid(), '-%s.' % dead)
    os.rename(os.path.join(str(tmp_path), leftovers[0]), os.path.join(str(tmp_path), renamed))
    live = os.path.join(str(tmp_path), leftovers[0])  # one of a running process stays
    os.mkdir(live)
    staging.remove_stale(target)
    assert sorted(n for n in os.listdir(str(tmp_path)) if n.startswith('.out.')) == [
        leftovers[0]]

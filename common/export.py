"""mode=export: a checkpoint -> SavedModel, frozen graph for Ascend ATC, ONNX.

The export directory holds
  saved_model/       signatures serving_default (float `images`, preprocessed NHWC) and
                     encoded_images (`image_bytes`: JPEG/PNG, any size, preprocessed inside)
  frozen_graph.pb    placeholder `input` [N, S, S, 3] -> `logits`, `probabilities`;
                     atc_command.txt and aipp.cfg beside it (Ascend 310/310P)
  model.onnx         the same graph with a free batch dimension (tf2onnx), checked with
                     onnxruntime against TensorFlow
  labels.txt         class names in logit order, when known
  hparams.json       the checkpoint's configuration and what was exported
It is written to a hidden sibling and renamed at the end (common/staging.py): a failed export
leaves nothing.
"""
import importlib
import os

import numpy as np
import tensorflow as tf

from common import inference, model_fn, onnx_rewrite, preprocessing, run_record, staging
from common.config import EXPORT_FORMATS
from common.errors import UsageError
from common.logs import log

SAVED_MODEL = 'saved_model'
FROZEN_GRAPH = 'frozen_graph.pb'
ONNX_MODEL = 'model.onnx'
ATC_COMMAND = 'atc_command.txt'
AIPP_CONFIG = 'aipp.cfg'
FROZEN_OUTPUTS = ('logits', 'probabilities')
# Python modules each format needs beyond TensorFlow (the `onnx` extra of setup.py).
DEPENDENCIES = {'onnx': ('tf2onnx', 'onnxruntime')}
# Op types a graph for inference must not hold (variables, training, randomness, summaries,
# Ascend-only ops), matched without regard to case: VarHandleOp, NPUDropOutDoMask, ...
FORBIDDEN_OPS = ('variable', 'varhandle', 'assign', 'apply', 'random', 'summary', 'npu',
                 'hcom', 'hccl', 'dropout', 'truncated', 'multinomial', 'shuffle',
                 'placeholderwithdefault')
ONNX_OPSET = 13
ONNX_TOLERANCE = 1e-4


def missing_dependencies(fmt):
    """The modules `fmt` needs that are not installed."""
    missing = []
    for module in DEPENDENCIES.get(fmt, ()):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    return missing


def _formats(config):
    """The formats to write: those asked for (each must be exportable here), or every one
    whose dependencies are installed (saying which are skipped)."""
    if config.export_formats:
        unknown = [f for f in config.export_formats if f not in EXPORT_FORMATS]
        if unknown:
            raise UsageError('--export_formats: unknown %s; known: %s' % (
                ', '.join(unknown), ', '.join(EXPORT_FORMATS)))
        for fmt in config.export_formats:
            missing = missing_dependencies(fmt)
            if missing:
                raise UsageError('--export_formats=%s needs %s (pip install -e ".[onnx]")'
                                 % (fmt, ', '.join(missing)))
        return tuple(config.export_formats)
    formats = []
    for fmt in EXPORT_FORMATS:
        missing = missing_dependencies(fmt)
        if missing:
            log.info('skipping %s: %s not installed (pip install -e ".[onnx]")', fmt,
                     ', '.join(missing))
        else:
            formats.append(fmt)
    return tuple(formats)


# What an export directory holds; --overwrite replaces a directory that holds nothing else.
WRITTEN = (SAVED_MODEL, FROZEN_GRAPH, ONNX_MODEL, ATC_COMMAND, AIPP_CONFIG,
           run_record.LABELS_FILE, run_record.HPARAMS_FILE)


def _check_target(target, overwrite):
    """An export goes to a new or empty directory, or replaces an earlier export with
    --overwrite when that holds only what an export writes; anything else is never touched."""
    if os.path.islink(target):
        raise UsageError('--export_dir=%s is a symbolic link (to %s); give the directory '
                         'itself' % (target, os.path.realpath(target)))
    if os.path.lexists(target) and not os.path.isdir(target):
        raise UsageError('--export_dir=%s is a file' % target)
    if not os.path.isdir(target) or not os.listdir(target):
        return
    if not overwrite:
        raise UsageError('--export_dir=%s exists and is not empty; give --overwrite to replace '
                         'an earlier export, or another directory' % target)
    if not run_record.is_export(target):
        raise UsageError('--export_dir=%s is not an export of this zoo (no hparams.json with '
                         '"export"): not replacing it, even with --overwrite' % target)
    others = sorted(set(os.listdir(target)) - set(WRITTEN))
    if others:
        raise UsageError('--export_dir=%s holds files an export does not write (%s): move them '
                         'away first; --overwrite replaces only an export' % (
                             target, ', '.join(others)))


def _check_ops(graph_def):
    """No forbidden op type, and batch norm in inference form (moving statistics)."""
    bad = sorted({n.op for n in graph_def.node
                  if any(f in n.op.lower() for f in FORBIDDEN_OPS)})
    if bad:
        raise RuntimeError('the inference graph holds op types %s' % ', '.join(bad))
    training = [n.name for n in graph_def.node if n.op.startswith('FusedBatchNorm')
                and n.attr['is_training'].b]
    if training:
        raise RuntimeError('batch norm in training form: %s' % ', '.join(training[:3]))


def frozen_graph_def(network, config, prefix):
    """The inference graph with checkpoint `prefix`'s weights as constants: placeholder
    `input` [None, S, S, 3] -> `logits`, `probabilities`."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        graph = inference.build_graph(network, config, encoded=False)
        inference.restore(session, graph, prefix, config)
        graph_def = tf.compat.v1.graph_util.convert_variables_to_constants(
            session, session.graph.as_graph_def(), list(FROZEN_OUTPUTS))
    _check_ops(graph_def)
    return graph_def


def with_batch_size(graph_def, batch_size):
    """A copy of a frozen graph whose `input` takes exactly batch_size images (ATC compiles
    one shape); nothing in the graph depends on the batch otherwise."""
    fixed = tf.compat.v1.GraphDef()
    fixed.CopyFrom(graph_def)
    node = [n for n in fixed.node if n.name == inference.INPUT][0]
    node.attr['shape'].shape.dim[0].size = batch_size
    return fixed


def _write_saved_model(network, config, prefix, path):
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        graph = inference.build_graph(network, config)
        inference.restore(session, graph, prefix, config)
        outputs = {k: tf.compat.v1.saved_model.build_tensor_info(v)
                   for k, v in graph.outputs.items()}

        def signature(name, tensor):
            return tf.compat.v1.saved_model.build_signature_def(
                {name: tf.compat.v1.saved_model.build_tensor_info(tensor)}, outputs,
                tf.compat.v1.saved_model.PREDICT_METHOD_NAME)

        builder = tf.compat.v1.saved_model.Builder(path)
        # The model's variables under their own names (averaged values when the checkpoint's
        # weight averages were loaded), not the global step.
        builder.add_meta_graph_and_variables(
            session, [tf.compat.v1.saved_model.SERVING], strip_default_attrs=True,
            saver=tf.compat.v1.train.Saver(model_fn.model_variables()),
            signature_def_map={
                'serving_default': signature('images', graph.inputs['images']),
                'encoded_images': signature('image_bytes', graph.inputs['encoded_images'])})
        builder.save()


def _write_onnx(graph_def, path, size):
    """Converts with tf2onnx (channel shuffles moved to NCHW: common/onnx_rewrite.py), then
    checks onnxruntime's logits against TensorFlow's."""
    import onnxruntime
    from tf2onnx import convert
    outputs = ['%s:0' % name for name in FROZEN_OUTPUTS]
    with tf.Graph().as_default():
        model, _ = convert.from_graph_def(graph_def, input_names=['input:0'],
                                          output_names=outputs, opset=ONNX_OPSET)
    with open(path, 'wb') as f:
        f.write(onnx_rewrite.rewrite(model).SerializeToString())
    images = np.random.RandomState(0).uniform(-2, 2, [2, size, size, 3]).astype(np.float32)
    with tf.Graph().as_default() as g, tf.compat.v1.Session() as session:
        tf.import_graph_def(graph_def, name='')
        expected = session.run(g.get_tensor_by_name('logits:0'), {'input:0': images})
    got = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider']).run(
        ['logits:0'], {'input:0': images})[0]
    error = np.max(np.abs(got - expected)) / max(np.max(np.abs(expected)), 1e-6)
    if error > ONNX_TOLERANCE:
        raise RuntimeError('onnxruntime differs from TensorFlow by %.2g (relative)' % error)
    return error


def aipp_config(config):
    """AIPP for ATC: the device normalizes S x S RGB888 pixels (resized and centre-cropped by
    the host) the way the network's preprocessing does: (pixel - min_chn) * var_reci_chn after
    the optional R/B swap, from the preprocessing's record."""
    record = preprocessing.PREPROCESSINGS[config.preprocessing]
    lines = ['# %s: RGB uint8 %dx%d in, the %s normalization on the device' % (
        config.network, config.image_size, config.image_size, config.preprocessing),
        'aipp_op {', '  aipp_mode: static', '  input_format: RGB888_U8',
        '  src_image_size_w: %d' % config.image_size, '  src_image_size_h: %d' % config.image_size,
        '  csc_switch: false', '  rbuv_swap_switch: %s' % str(record.swap_rb).lower()]
    lines += ['  min_chn_%d: %.6g' % (i, m) for i, m in enumerate(record.mean)]
    lines += ['  var_reci_chn_%d: %.10g' % (i, s) for i, s in enumerate(record.scale)]
    return '\n'.join(lines + ['}']) + '\n'


SOC_VERSIONS = ('Ascend310', 'Ascend310P3')


def atc_command(config, batch_size):
    """The ATC commands for Ascend 310 and 310P, with and without the AIPP normalization."""
    def command(soc, aipp):
        output = '%s_%s%s' % (config.network, soc.lower(), '_aipp' if aipp else '')
        return ('atc --model=%s --framework=3 --output=%s --soc_version=%s '
                '--input_shape="input:%d,%d,%d,3" --out_nodes="logits:0" --log=info%s' % (
                    FROZEN_GRAPH, output, soc, batch_size, config.image_size,
                    config.image_size, ' --insert_op_conf=%s' % AIPP_CONFIG if aipp else ''))

    lines = ['# Run in this directory on a machine with CANN installed (not run here).']
    for soc in SOC_VERSIONS:
        lines += ['# %s, input float32 NHWC, preprocessed by the host exactly as '
                  'hparams.json\'s preprocessing:' % soc, command(soc, False),
                  '# %s, input uint8 RGB NHWC (resized and centre-cropped by the host); %s '
                  'normalizes on the device:' % (soc, AIPP_CONFIG), command(soc, True)]
    return '\n'.join(lines) + '\n'


def export_model(network, config):
    """Exports --eval_dir's newest checkpoint to --export_dir."""
    if not config.export_dir:
        raise UsageError('--mode=export needs --export_dir')
    formats = _formats(config)
    if not formats:
        raise UsageError('nothing to export: no format can be written here')
    target = os.path.abspath(config.export_dir)
    _check_target(target, config.overwrite)
    prefix = inference.newest_checkpoint(config)
    with staging.new_directory(target, replace=config.overwrite) as directory:
        record = _export(network, config, prefix, formats, directory)
    log.info('exported %s (step %d) to %s: %s', record['checkpoint'], record['step'], target,
             ', '.join(formats))
    return target


def _step(fmt, write, *args):
    """Runs one format's writer; a converter's own failure becomes one line naming the
    format (restore and usage errors pass through as they are)."""
    try:
        return write(*args)
    except (UsageError, tf.errors.OpError):
        raise
    except Exception as e:  # tf2onnx raises anything
        first = (str(e).strip().splitlines() or [''])[0]
        raise UsageError('cannot export %s: %s: %s' % (fmt, type(e).__name__, first)) from None


def _export(network, config, prefix, formats, directory):
    record = {'formats': list(formats), 'checkpoint': os.path.abspath(prefix),
              'step': int(tf.train.load_variable(prefix, 'global_step')),
              'batch_size': config.export_batch_size, 'input': inference.INPUT,
              'saved_model_outputs': list(inference.OUTPUTS),
              'frozen_graph_and_onnx_outputs': list(FROZEN_OUTPUTS)}
    if 'saved_model' in formats:
        _step('saved_model', _write_saved_model, network, config, prefix,
              os.path.join(directory, SAVED_MODEL))
        log.info('wrote %s (signatures serving_default, encoded_images)', SAVED_MODEL)
    graph_def = None
    if 'frozen_graph' in formats or 'onnx' in formats:
        graph_def = _step('frozen_graph', frozen_graph_def, network, config, prefix)
    if 'frozen_graph' in formats:
        with open(os.path.join(directory, FROZEN_GRAPH), 'wb') as f:
            f.write(with_batch_size(graph_def, config.export_batch_size).SerializeToString())
        with open(os.path.join(directory, AIPP_CONFIG), 'w') as f:
            f.write(aipp_config(config))
        with open(os.path.join(directory, ATC_COMMAND), 'w') as f:
            f.write(atc_command(config, config.export_batch_size))
        log.info('wrote %s (batch %d), %s, %s', FROZEN_GRAPH, config.export_batch_size,
                 ATC_COMMAND, AIPP_CONFIG)
    if 'onnx' in formats:
        error = _step('onnx', _write_onnx, graph_def, os.path.join(directory, ONNX_MODEL),
                      config.image_size)
        log.info('wrote %s (opset %d); onnxruntime matches TensorFlow to %.1e', ONNX_MODEL,
                 ONNX_OPSET, error)
    names = inference.class_names(config, os.path.dirname(prefix))
    if names:
        run_record.write_labels(directory, names)
    else:
        log.info('no class names known (no labels.txt, no class_names in dataset.json): '
                 'predictions will be class indices')
    run_record.write(directory, 'export', dict(config.as_dict(), export=record))
    return record

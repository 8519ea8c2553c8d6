"""Inference throughput and latency of an exported network: the frozen graph in a plain TF
session, the SavedModel, and onnxruntime on the ONNX file, side by side in one run; with
--torch_python, also our model.onnx against the reference's own export.

    python -m benchmarks.inference --network=densenet121 [--eval_dir=CHECKPOINTS]
        [--torch_python=PYTHON_WITH_TORCH [--megvii_dir=SHUFFLENET_SERIES/ShuffleNetV1]]

Without --eval_dir the network is exported from randomly initialized weights at its recipe's
image size (speed does not depend on the values). Prints images/s at batch 1, 8 and 32 and
the p50/p99 latency of single images, and each runtime's throughput as a ratio of
onnxruntime's (this machine is shared: compare ratios, not absolute figures).

--torch_python (a Python with torch, torchvision, onnx and onnxruntime; benchmarks/onnx_peer.py):
the reference network (torchvision's; megvii's ShuffleNetV1 from --megvii_dir) is randomly
initialized and exported by torch.onnx.export (opset 13, free batch); its weights are imported
(import_weights) and exported by us; both ONNX files then run in that Python's onnxruntime,
alternating, with the largest logit difference between them.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import tensorflow as tf
from absl import app, flags

import official
from benchmarks.environment import cpu_name, tf_distribution
from common import config, export, logs, model_fn, run_directory, run_record
from common.weights import convert

FLAGS = flags.FLAGS
flags.DEFINE_enum('network', 'densenet121', official.NETWORK_NAMES, 'Network to measure.')
flags.DEFINE_string('eval_dir', None, 'Checkpoint directory to export; default: random weights.')
flags.DEFINE_integer('image_size', None, 'Image size (default: the recipe\'s).', lower_bound=16)
flags.DEFINE_list('batch_sizes', ['1', '8', '32'], 'Batch sizes to measure.')
flags.DEFINE_float('seconds', 3.0, 'Timed seconds per measurement (after two warm-up runs).',
                   lower_bound=0.1)
flags.DEFINE_string('torch_python', None, 'A Python with torch, torchvision, onnx and '
                    'onnxruntime: compares our model.onnx with the reference\'s own export.')
flags.DEFINE_string('megvii_dir', None, 'The ShuffleNetV1 folder of a megvii-model/'
                    'ShuffleNet-Series checkout: ShuffleNetV1\'s reference, with --torch_python.')

# the reference each network's weights come from (benchmarks/onnx_peer.py)
REFERENCES = {'densenet121': 'densenet121', 'vgg16': 'vgg16',
              'shufflenet_v2': 'shufflenet_v2_x1_0', 'shufflenet_v1': 'megvii_shufflenet_v1'}
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'onnx_peer.py')


def random_checkpoint(network, directory, image_size):
    """A checkpoint of freshly initialized weights with the hparams.json export reads."""
    overrides = dict(mode='evaluate', moving_average_decay=0, log_dir=directory,
                     eval_dir=directory)
    if image_size:
        overrides['image_size'] = image_size
    cfg = config.resolve(network, overrides)
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        size = cfg.image_size
        network.model_fn({'image': tf.compat.v1.placeholder(tf.float32, [1, size, size, 3])},
                         None, tf.estimator.ModeKeys.PREDICT,
                         dict(config=cfg))
        session.run(tf.compat.v1.global_variables_initializer())
        saver = tf.compat.v1.train.Saver(model_fn.model_variables() + [
            tf.compat.v1.train.get_global_step()])
        saver.save(session, os.path.join(directory, 'model.ckpt'), global_step=0,
                   write_meta_graph=False)
    run_record.write(directory, 'training', cfg.as_dict())


def _measure(run, images, seconds):
    """(images/s, per-call latencies in ms) of run(images)."""
    run(images)
    run(images)
    latencies = []
    start = time.time()
    while time.time() - start < seconds or len(latencies) < 3:
        begin = time.time()
        run(images)
        latencies.append(1000.0 * (time.time() - begin))
    return len(images) * len(latencies) / (time.time() - start), latencies


def frozen_graph_runner(export_dir, batch_size):
    graph_def = tf.compat.v1.GraphDef()
    with open(os.path.join(export_dir, export.FROZEN_GRAPH), 'rb') as f:
        graph_def.ParseFromString(f.read())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(export.with_batch_size(graph_def, batch_size), name='')
    session = tf.compat.v1.Session(graph=graph)
    return lambda images: session.run('logits:0', {'input:0': images})


def saved_model_runner(export_dir):
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    with graph.as_default():
        meta = tf.compat.v1.saved_model.load(session, ['serve'],
                                             os.path.join(export_dir, export.SAVED_MODEL))
    signature = meta.signature_def['serving_default']
    output, image_input = signature.outputs['logits'].name, signature.inputs['images'].name
    return lambda images: session.run(output, {image_input: images})


def onnx_runner(export_dir):
    import onnxruntime
    session = onnxruntime.InferenceSession(os.path.join(export_dir, export.ONNX_MODEL),
                                           providers=['CPUExecutionProvider'])
    return lambda images: session.run(['logits:0'], {'input:0': images})[0]


def main(argv):
    del argv
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.FATAL)  # tf2onnx's notes too
    logs.setup_logging(None, None, 0)
    network = official.load(FLAGS.network)
    if FLAGS.eval_dir and FLAGS.image_size:
        print('error: --image_size is for random weights; --eval_dir\'s checkpoint has its own',
              file=sys.stderr)
        return 2
    reference = _check_reference_flags(network)
    if reference is False:
        return 2
    work = tempfile.mkdtemp(prefix='inference_benchmark_')
    try:
        source = FLAGS.eval_dir
        if reference:
            source = _reference_weights(network, reference, work)
        elif not source:
            source = os.path.join(work, 'checkpoint')
            os.makedirs(source)
            random_checkpoint(network, source, FLAGS.image_size)
        overrides = dict(mode='export', eval_dir=source, export_dir=os.path.join(work, 'export'))
        cfg = config.resolve(network, overrides, checkpoint=run_record.read(
            run_directory.of(source)))
        export.export_model(network, cfg)
        _report(network, cfg)
        if reference:
            if not os.path.exists(os.path.join(cfg.export_dir, export.ONNX_MODEL)):
                print('error: --torch_python compares model.onnx, which needs the onnx extra '
                      '(pip install -e ".[onnx]")', file=sys.stderr)
                return 2
            _compare_with_reference(cfg, reference, work)
    finally:
        shutil.rmtree(work)
    return 0


def _check_reference_flags(network):
    """The reference model's name for --torch_python, None without it, False (after an error
    line) when the flags do not go together."""
    if not FLAGS.torch_python:
        return None
    reference = REFERENCES.get(network.name)
    problem = None
    if not reference:
        problem = '--torch_python: %s has no PyTorch reference' % network.name
    elif FLAGS.eval_dir:
        problem = '--torch_python exports the reference\'s random weights; drop --eval_dir'
    elif reference == 'megvii_shufflenet_v1' and not os.path.isfile(
            os.path.join(FLAGS.megvii_dir or '', 'network.py')):
        problem = ('--torch_python with shufflenet_v1 needs --megvii_dir, the ShuffleNetV1 '
                   'folder of a ShuffleNet-Series checkout')
    if problem:
        print('error: %s' % problem, file=sys.stderr)
        return False
    return reference


def _peer(*arguments):
    """Runs benchmarks/onnx_peer.py with --torch_python; returns its last stdout line."""
    out = subprocess.run([FLAGS.torch_python, PEER] + [str(a) for a in arguments],
                         stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    return out.strip().splitlines()[-1] if out.strip() else ''


def _reference_weights(network, reference, work):
    """The reference, randomly initialized, exported to ONNX by torch and its weights
    imported: the checkpoint directory ours is exported from."""
    size = FLAGS.image_size or config.resolve(network).image_size
    _peer('export', reference, size, ','.join(FLAGS.batch_sizes), work,
          *([FLAGS.megvii_dir] if FLAGS.megvii_dir else []))
    directory = os.path.join(work, 'imported')
    convert.convert(network.name, os.path.join(work, 'reference.pth'), directory,
                    image_size=size)
    return directory


def _compare_with_reference(cfg, reference, work):
    result = json.loads(_peer('time', os.path.join(cfg.export_dir, export.ONNX_MODEL), work,
                              cfg.image_size,
                              ','.join(FLAGS.batch_sizes), FLAGS.seconds, os.cpu_count()))
    print('our model.onnx and the reference\'s torch.onnx.export (%s, opset %d, the same '
          'weights) in onnxruntime %s, %d threads, alternating:' % (
              reference, export.ONNX_OPSET, result['onnxruntime'], os.cpu_count()))
    for batch, row in sorted(result['batches'].items(), key=lambda item: int(item[0])):
        print('  batch %3s: ours %8.1f images/s, reference %8.1f; ours/reference = %.2f; '
              'logits differ by %.1e (relative)' % (batch, row['ours'], row['reference'],
                                                     row['ours'] / row['reference'],
                                                     row['logit_difference']))


def _report(network, cfg):
    size, directory = cfg.image_size, cfg.export_dir
    # the first runtime present is the one the others are compared with
    runners = [(name, make) for name, make, present in (
        ('onnxruntime', lambda b: onnx_runner(directory),
         os.path.exists(os.path.join(directory, export.ONNX_MODEL))),
        ('frozen graph (TF session)', lambda b: frozen_graph_runner(directory, b), True),
        ('SavedModel (TF session)', lambda b: saved_model_runner(directory), True)) if present]
    print('%s, %dx%d, %s, %s' % (network.name, size, size, tf_distribution(), cpu_name()))
    print('images/s at each batch (ratio to %s), latency at batch 1' % runners[0][0])
    print('%-27s%s  p50 / p99 ms' % ('runtime', ''.join(
        '%20s' % ('batch %s' % b) for b in FLAGS.batch_sizes)))
    rng = np.random.RandomState(0)
    reference = {}
    for name, make in runners:
        cells, latency = [], ''
        for batch in (int(b) for b in FLAGS.batch_sizes):
            images = rng.uniform(-2, 2, [batch, size, size, 3]).astype(np.float32)
            rate, latencies = _measure(make(batch), images, FLAGS.seconds)
            reference.setdefault(batch, rate)
            cells.append('%20s' % ('%.1f (%.2f)' % (rate, rate / reference[batch])))
            if batch == 1:
                latency = '%.1f / %.1f' % (np.percentile(latencies, 50),
                                           np.percentile(latencies, 99))
        print('%-27s%s  %s' % (name, ''.join(cells), latency))


if __name__ == '__main__':
    sys.exit(app.run(main))

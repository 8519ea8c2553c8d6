"""Training throughput of a network, its input pipeline, and its peers: tf.keras.applications
and (given a Python with torch) torchvision, the same step with the same batch and threads.

    python -m benchmarks.throughput --network=densenet121 [--data_dir=DIR] [--steps=5]
        [--torch_python=PYTHON_WITH_TORCH [--megvii_dir=SHUFFLENET_SERIES/ShuffleNetV1]]
        [--trace=N]

Prints one line per measurement: graph construction plus the first training step (seconds),
training images/s on synthetic in-memory data (with its GFLOP/s as a share of this
machine's peak reference, the faster of a oneDNN convolution and a matrix product measured in
the same run, and the process's peak RSS),
on TFRecords (--data_dir, default: the demo dataset, built if absent), the input pipeline
alone, and the peers' steps as ratios. Runs on whatever device TensorFlow sees (CPU here).
"""
import collections
import json
import os
import resource
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
from common import (config, demo, estimator, host_memory, input_pipeline, preprocessing,
                    report, runtime)

FLAGS = flags.FLAGS
flags.DEFINE_enum('network', 'densenet121', official.NETWORK_NAMES, 'Network to measure.')
flags.DEFINE_integer('batch_size', 32, 'Batch size.', lower_bound=1)
flags.DEFINE_integer('image_size', 224, 'Image size.', lower_bound=16)
flags.DEFINE_integer('steps', 5, 'Timed steps per measurement (after one warm-up step).',
                     lower_bound=1)
flags.DEFINE_string('data_dir', None, 'TFRecords to read; default: the demo dataset.')
flags.DEFINE_integer('trace', 0, 'Print the N op types that take most of one traced training '
                     'step (where the time goes).', lower_bound=0)
flags.DEFINE_string('torch_python', None, 'A Python with torch and torchvision: runs the '
                    'torchvision peer (benchmarks/torch_peer.py) in a subprocess.')
flags.DEFINE_string('megvii_dir', None, 'The ShuffleNetV1 folder of a megvii-model/'
                    'ShuffleNet-Series checkout: with --torch_python, ShuffleNetV1 is compared '
                    'with megvii\'s own PyTorch network instead of torchvision\'s ShuffleNetV2.')

# tf.keras.applications peers: same family, or the light-network reference.
KERAS_PEERS = {
    'densenet121': 'DenseNet121',
    'shufflenet_v1': 'MobileNetV2',
    'shufflenet_v2': 'MobileNetV2',
    'vgg16': 'VGG16',
    'amoebanet_d': None,  # Keras has no AmoebaNet
}


# torchvision peers: the same architecture; ShuffleNetV1 (megvii's code, not in torchvision)
# is compared with torchvision's ShuffleNetV2, the nearest, unless --megvii_dir gives megvii's.
TORCH_PEERS = {
    'densenet121': 'densenet121',
    'shufflenet_v1': 'shufflenet_v2_x1_0',
    'shufflenet_v2': 'shufflenet_v2_x1_0',
    'vgg16': 'vgg16',
    'amoebanet_d': None,
}
MEGVII_PEER = 'megvii_shufflenet_v1'
MATMUL_SIZE = 4096
# A 3x3 convolution as the networks have them, NHWC: batch, side, channels in = out.
CONV_SHAPE = (8, 56, 256)


def _best_rate(flop, build, run):
    """GFLOP/s of the best of five runs of the scalar build() returns (the session settings
    training uses, after a warm-up)."""
    with tf.Graph().as_default():
        value = build(np.random.RandomState(0))
        with tf.compat.v1.Session(config=estimator.session_config(run)) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(value)
            best = min(_time_steps(sess, value, 1) for _ in range(5))
    return flop / best / 1e9


def _matmul(rng):
    a, b = (tf.Variable(rng.rand(MATMUL_SIZE, MATMUL_SIZE).astype(np.float32)) for _ in 'ab')
    return tf.reduce_sum(tf.matmul(a, b))  # fetch a scalar, not 64 MB


def _conv(rng):
    batch, side, channels = CONV_SHAPE
    images = tf.Variable(rng.rand(batch, side, side, channels).astype(np.float32))
    kernel = tf.Variable(rng.rand(3, 3, channels, channels).astype(np.float32))
    return tf.reduce_sum(tf.nn.conv2d(images, kernel, 1, 'SAME'))


def peak_reference(run):
    """(GFLOP/s, name) of this machine's fastest fp32 kernel in this TensorFlow: the better
    of a oneDNN 3x3 convolution and a 4096^3 matrix product. Either alone depends on the CPU
    vendor: intel-tensorflow's MatMul goes through MKL, slow on AMD processors (56 GFLOP/s
    there, below VGG16's own training rate), while its convolutions are oneDNN's everywhere."""
    batch, side, channels = CONV_SHAPE
    rates = {
        'conv 3x3 %dx%dx%dx%d' % (batch, side, side, channels): _best_rate(
            2.0 * batch * side * side * channels * channels * 9, _conv, run),
        'matmul %d^3' % MATMUL_SIZE: _best_rate(2.0 * MATMUL_SIZE ** 3, _matmul, run),
    }
    name = max(rates, key=rates.get)
    print('peak reference: %s' % ', '.join('%s %.0f GFLOP/s' % kv for kv in rates.items()))
    return rates[name], name


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def torch_step(model_name, cfg, env=None):
    """The PyTorch peer's JSON line (images_per_s, first_step_s, peak_rss_mb), its process
    given the environment variables `env` too."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'torch_peer.py')
    out = subprocess.run([FLAGS.torch_python, script, model_name, str(cfg.batch_size),
                          str(cfg.image_size), str(os.cpu_count()), str(FLAGS.steps)]
                         + ([FLAGS.megvii_dir] if model_name == MEGVII_PEER else []),
                         stdout=subprocess.PIPE, universal_newlines=True, check=True,
                         env=dict(os.environ, **(env or {})))
    return json.loads(out.stdout.strip().splitlines()[-1])


def _configuration(network):
    """The network's recipe at the benchmark's batch and size, on one CPU process."""
    cfg = config.resolve(network, dict(batch_size=FLAGS.batch_size, image_size=FLAGS.image_size,
                                       num_classes=1000, device='cpu',
                                       log_dir=tempfile.mkdtemp()))
    return cfg, runtime.fixed(cfg)


def _time_steps(sess, op, steps):
    start = time.time()
    for _ in range(steps):
        sess.run(op)
    return (time.time() - start) / steps


def _synthetic(cfg):
    size, rng = cfg.image_size, np.random.RandomState(0)
    images = rng.uniform(-2, 2, [cfg.batch_size, size, size, 3]).astype(np.float32)
    labels = rng.randint(0, cfg.num_classes, cfg.batch_size).astype(np.int32)
    return tf.data.Dataset.from_tensors(({'image': images}, labels)).repeat()


def train_step(network, cfg, run, dataset_fn):
    """(graph build + first step seconds, seconds per later step) of our model_fn."""
    with tf.Graph().as_default():
        start = time.time()
        features, labels = tf.compat.v1.data.make_one_shot_iterator(
            dataset_fn(cfg)).get_next()
        spec = network.model_fn(features, labels, tf.estimator.ModeKeys.TRAIN,
                                dict(config=cfg, runtime=run))
        # the session settings training uses (threads)
        with tf.compat.v1.Session(config=estimator.session_config(run)) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(spec.train_op)
            first = time.time() - start
            per_step = _time_steps(sess, spec.train_op, FLAGS.steps)
            if FLAGS.trace and dataset_fn is _synthetic:
                _print_op_time(sess, spec.train_op, FLAGS.trace)
            return first, per_step


def _print_op_time(sess, op, count):
    """Op types by their share of the summed op time of one traced step."""
    metadata = tf.compat.v1.RunMetadata()
    sess.run(op, options=tf.compat.v1.RunOptions(
        trace_level=tf.compat.v1.RunOptions.FULL_TRACE), run_metadata=metadata)
    micros, calls = collections.Counter(), collections.Counter()
    for device in metadata.step_stats.dev_stats:
        for node in device.node_stats:
            # timeline_label reads 'name = OpType(inputs)'
            op_type = node.timeline_label.split(' = ')[1].split('(')[0] if (
                ' = ' in node.timeline_label) else node.node_name
            micros[op_type] += node.op_end_rel_micros
            calls[op_type] += 1
    total = sum(micros.values()) or 1
    print('where one traced step\'s op time goes (%.0f ms summed over ops):' % (total / 1e3))
    for op_type, us in micros.most_common(count):
        print('  %-44s %4d calls %8.1f ms %5.1f%%' % (op_type, calls[op_type], us / 1e3,
                                                    100.0 * us / total))


def pipeline_only(cfg, files):
    train_pp = preprocessing.PREPROCESSINGS[cfg.preprocessing].train
    with tf.Graph().as_default():
        batch = tf.compat.v1.data.make_one_shot_iterator(
            input_pipeline.train_dataset(files, train_pp, cfg, 0, 1)).get_next()
        with tf.compat.v1.Session() as sess:
            sess.run(batch)
            return _time_steps(sess, batch, FLAGS.steps * 4)


def keras_step(name, cfg):
    with tf.Graph().as_default():
        size = cfg.image_size
        model = getattr(tf.keras.applications, name)(
            weights=None, input_shape=(size, size, 3), classes=cfg.num_classes)
        model.compile(tf.keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                      'sparse_categorical_crossentropy')
        x = np.random.rand(cfg.batch_size, size, size, 3).astype(np.float32)
        y = np.random.randint(0, cfg.num_classes, cfg.batch_size)
        model.train_on_batch(x, y)
        start = time.time()
        for _ in range(FLAGS.steps):
            model.train_on_batch(x, y)
        return (time.time() - start) / FLAGS.steps


def main(argv):
    del argv
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    network = official.load(FLAGS.network)
    torch_peer = TORCH_PEERS.get(network.name)
    if network.name == 'shufflenet_v1' and FLAGS.megvii_dir:
        torch_peer = MEGVII_PEER
        if not os.path.isfile(os.path.join(FLAGS.megvii_dir, 'network.py')):
            print('error: --megvii_dir=%s has no network.py: give the ShuffleNetV1 folder of a '
                  'ShuffleNet-Series checkout' % FLAGS.megvii_dir, file=sys.stderr)
            return 2
    cfg, run = _configuration(network)
    kept = host_memory.keep_freed_memory()  # as train.py on the CPU
    data_dir = FLAGS.data_dir or demo.data_dir()
    files = input_pipeline.find_files(data_dir, 'train')
    batch = cfg.batch_size
    print('%s, batch %d, %dx%d, %s, %s%s' % (
        network.name, batch, cfg.image_size, cfg.image_size, tf_distribution(), cpu_name(),
        ', freed memory kept (common/host_memory.py)' if kept else ''))
    # The peak reference first, in a fresh process: measured after a network's training
    # graph, the same matrix product ran at 163 instead of 289 GFLOP/s.
    machine, reference = peak_reference(run)
    first, synthetic = train_step(network, cfg, run, _synthetic)
    rss = peak_rss_mb()
    print('graph build + first step: %.1f s' % first)
    # a training step is about 3 forward passes of multiply-adds (forward, two backward)
    _, macs = report.network_size(network, image_size=cfg.image_size)
    gflops = 6.0 * macs * batch / synthetic / 1e9
    print('train, synthetic data: %.2f images/s (%.2f s/step), %.0f GFLOP/s = %.0f%% of the '
          'peak reference (%s, %.0f GFLOP/s); peak RSS %.0f MB' % (
              batch / synthetic, synthetic, gflops, 100 * gflops / machine, reference, machine,
              rss))
    train_pp = preprocessing.PREPROCESSINGS[cfg.preprocessing].train
    _, records = train_step(network, cfg, run, lambda c: input_pipeline.train_dataset(
        files, train_pp, c, 0, 1))
    print('train, TFRecords (%s): %.2f images/s' % (data_dir, batch / records))
    print('input pipeline alone: %.1f images/s' % (batch / pipeline_only(cfg, files)))
    peer = KERAS_PEERS.get(network.name)
    if peer:
        keras = keras_step(peer, cfg)
        print('tf.keras.applications.%s train step: %.2f images/s; ours/keras = %.2f' % (
            peer, batch / keras, keras / synthetic))
    if FLAGS.torch_python and torch_peer:
        # PyTorch as its users run it, then with the allocator settings train.py uses
        peers = [(None, '')] + ([(host_memory.ENVIRONMENT, ', freed memory kept')] if kept
                                 else [])
        for env, how in peers:
            theirs = torch_step(torch_peer, cfg, env)
            print('%s %s (torch %s, %d threads%s) train step: %.2f images/s, first step '
                  '%.1f s, peak RSS %.0f MB; ours/torch = %.2f' % (
                      'megvii' if torch_peer == MEGVII_PEER else 'torchvision', torch_peer,
                      theirs['torch'], os.cpu_count(), how, theirs['images_per_s'],
                      theirs['first_step_s'], theirs['peak_rss_mb'],
                      (batch / synthetic) / theirs['images_per_s']))
    return 0


if __name__ == '__main__':
    sys.exit(app.run(main))

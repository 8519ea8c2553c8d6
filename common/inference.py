"""The inference graph that export and predict share: the network exactly as evaluation builds
it (its model_fn in PREDICT mode, so weight averages load as evaluate loads them), with named
inputs and outputs.

Inputs: `input`, float32 [N, S, S, 3] NHWC, already preprocessed; and, for the SavedModel and
predict, `encoded_images`, string [N] of JPEG/PNG/BMP/GIF bytes of any size, decoded and
preprocessed in the graph as evaluation does (`input` then defaults to them). Outputs:
`logits`, `probabilities` and the top-k `classes` with their `scores`.
"""
import collections
import os

import tensorflow as tf

from common import checkpoints, model_fn, preprocessing, records, run_directory, run_record
from common.errors import UsageError
from common.logs import log

INPUT = 'input'
ENCODED = 'encoded_images'
OUTPUTS = ('logits', 'probabilities', 'classes', 'scores')

Graph = collections.namedtuple('Graph', ['inputs', 'outputs', 'saver'])


def decode_and_preprocess(encoded, config):
    """[N] encoded images -> [N, S, S, 3] float32, by the evaluation preprocessing."""
    evaluate = preprocessing.PREPROCESSINGS[config.preprocessing].evaluate

    def one(data):
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        return evaluate(image, config.image_size)

    return tf.map_fn(one, encoded, dtype=tf.float32, back_prop=False)


def _named(tensor, name):
    out = tf.identity(tensor, name=name)
    if out.op.name != name:  # the network took the name: the contract would silently move
        raise RuntimeError('graph node %r already exists' % name)
    return out


def build_graph(network, config, encoded=True):
    """Builds the inference graph in the default graph, N free (export.with_batch_size fixes
    it in a copy of the frozen graph for ATC); encoded adds the encoded-image input."""
    size = config.image_size
    inputs = {}
    if encoded:
        inputs['encoded_images'] = tf.compat.v1.placeholder(tf.string, [None], ENCODED)
        images = tf.compat.v1.placeholder_with_default(
            decode_and_preprocess(inputs['encoded_images'], config), [None, size, size, 3],
            name=INPUT)
    else:
        images = tf.compat.v1.placeholder(tf.float32, [None, size, size, 3], INPUT)
    inputs['images'] = images
    spec = network.model_fn({'image': images}, None, tf.estimator.ModeKeys.PREDICT,
                            dict(config=config))
    logits = spec.predictions['logits']
    probabilities = tf.nn.softmax(logits)
    scores, classes = tf.nn.top_k(probabilities, min(config.top_k, config.num_classes))
    outputs = {name: _named(t, name) for name, t in zip(
        OUTPUTS, (logits, probabilities, classes, scores))}
    saver = spec.scaffold.saver if spec.scaffold and spec.scaffold.saver else (
        tf.compat.v1.train.Saver(model_fn.model_variables()))
    return Graph(inputs, outputs, saver)


def newest_checkpoint(config):
    """The prefix --eval_dir names: itself, or its directory's newest checkpoint."""
    return run_directory.list_checkpoints(config.eval_dir)[-1][1]


def restore(session, graph, prefix, config):
    """Loads checkpoint `prefix` into the session, after checking that it fits the model
    (names, shapes, weight averages)."""
    checkpoints.check_fits(prefix, {v.op.name: v.shape.as_list()
                                    for v in model_fn.model_variables()}, config.network)
    checkpoints.check_moving_averages(prefix, config.moving_average_decay)
    try:
        graph.saver.restore(session, prefix)
    except tf.errors.OpError as e:
        raise UsageError('cannot restore %s: %s' % (
            prefix, checkpoints.restore_failure(e) or e.message.splitlines()[0])) from None


def class_names(config, directory):
    """Class names in logit order, or None: the model directory's labels.txt (training writes
    it), else the dataset's description (dataset.json class_names) of --data_dir or of the
    training run."""
    names = run_record.read_labels(directory)
    if names is not None:
        if len(names) != config.num_classes:
            raise UsageError('%s has %d names for %d classes' % (
                os.path.join(directory, run_record.LABELS_FILE), len(names), config.num_classes))
        return names
    saved = run_record.read(directory) or {}
    return dataset_class_names(config, (config.data_dir, saved.get('data_dir')))


def dataset_class_names(config, data_dirs):
    """Class names in logit order from the first of data_dirs whose dataset.json has them."""
    for data_dir in data_dirs:
        names = (records.read_description(data_dir) or {}).get('class_names') if data_dir else None
        if names:
            # logit i is stored label i + label_offset; class_names[0] is records.FIRST_LABEL
            first = config.label_offset - records.FIRST_LABEL
            names = names[first:first + config.num_classes] if first >= 0 else None
            if names and len(names) == config.num_classes:
                return names
            log.info('%s/%s: its class_names do not give a name for each of the %d classes '
                     '(--label_offset=%d): no class names', data_dir, records.DESCRIPTION_FILE,
                     config.num_classes, config.label_offset)
    return None

"""A reference's weight file -> a checkpoint directory of the zoo: model.ckpt-0 (global step 0)
holding exactly the network's model variables, and hparams.json recording the network, the
classes, the image size and the preprocessing the weights expect.

What is shared by every network lives here; each network's name table is its own
(official/<net>/weights.py).
"""
import importlib
import os

import numpy as np
import tensorflow as tf

import official
from common import checkpoints, config, model_fn, run_record, staging
from common.errors import UsageError
from common.weights import mapping, sources

CHECKPOINT_NAME = 'model.ckpt'


def table(network_name):
    """The network's name table module (official/<net>/weights.py)."""
    return importlib.import_module('official.%s.weights' % network_name)


def _check_output_dir(output_dir):
    if os.path.exists(output_dir) and (not os.path.isdir(output_dir) or os.listdir(output_dir)):
        raise UsageError('--output_dir=%s exists and is not an empty directory; give a new one'
                         % output_dir)


def _build(network, num_classes, image_size, options):
    """{name: variable} of the network's model variables as training builds them (with any
    auxiliary head), in the current graph."""
    images = tf.compat.v1.placeholder(tf.float32, [1, image_size, image_size, 3])
    network.build(images, True, num_classes, **options)
    return {v.op.name: v for v in model_fn.model_variables()}


def _write_checkpoint(directory, variables, plan, reference, averages):
    """Loads the converted tensors into `variables` (a fresh classifier or an absent training
    branch keeps its initializer's values) and saves model.ckpt-0 with relative paths in
    `checkpoint`."""
    global_step = tf.compat.v1.train.get_or_create_global_step()
    saved = dict(variables, global_step=global_step)
    copies = {}
    if averages:  # the recipe evaluates averaged weights: they start as the weights
        for name, var in variables.items():
            copies[name] = tf.compat.v1.Variable(
                tf.zeros(var.shape, var.dtype.base_dtype), trainable=False,
                collections=[], name=name + checkpoints.AVERAGE_SUFFIX)
            saved[name + checkpoints.AVERAGE_SUFFIX] = copies[name]
    # One run for all assignments: a run per variable would prune the graph each time.
    feeds, assigns = {}, []
    by_source = {item.source: item for item in plan.assignments}
    for name, array in reference.arrays(by_source):
        item = by_source[name]
        var = variables[item.target]
        value = tf.compat.v1.placeholder(var.dtype.base_dtype, var.shape)
        assigns.append(var.assign(value))
        feeds[value] = np.ascontiguousarray(item.layout.apply(array), np.float32)
    saver = tf.compat.v1.train.Saver(saved, save_relative_paths=True)
    with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        session.run(assigns, feeds)
        session.run([copy.assign(variables[name]) for name, copy in copies.items()])
        saver.save(session, os.path.join(directory, CHECKPOINT_NAME), global_step=0,
                   write_meta_graph=False)


def convert(network_name, source_path, output_dir, num_classes=None, image_size=None,
            options=None):
    """Converts the reference weights at source_path for `network_name` into output_dir (new
    or empty); returns the Plan.

    image_size: the size the weights were trained at, the network's by default (AmoebaNet's
    auxiliary head has a kernel as large as its input map). options: the builder's size
    keywords (the tests' reduced references).
    """
    options = dict(options or {})
    network = official.load(network_name)
    names = table(network_name)
    _check_output_dir(output_dir)
    # sizes checked as train.py checks them (bounds, the network's minimum, its own options;
    # the builders' other size keywords are the tests' reduced references)
    networks = official.load_all()
    declared = {k: v for k, v in options.items()
                if k in {o.name for n in networks for o in n.options}}
    image_size = config.resolve(network, dict(declared, **(
        {'image_size': image_size} if image_size else {})), other_networks=networks).image_size
    reference = sources.read(source_path, names.SOURCE.kind)
    classes = num_classes or mapping.offered_classes(names, reference.shapes)
    with tf.Graph().as_default():
        variables = _build(network, classes, image_size, options)
        shapes = {name: tuple(v.shape.as_list()) for name, v in variables.items()}
        plan = mapping.plan(reference.shapes, names, shapes, network.classifier_scopes, classes)
        # the directory appears complete or not at all
        with staging.new_directory(output_dir) as temporary:
            _write_checkpoint(temporary, variables, plan, reference,
                              bool(network.recipe.get('moving_average_decay')))
            record = dict(network=network_name, num_classes=plan.num_classes,
                          image_size=image_size, preprocessing=names.SOURCE.preprocessing,
                          label_offset=plan.label_offset,
                          imported_from=os.path.abspath(reference.path),
                          reference=names.SOURCE.reference,
                          fresh_variables=sorted(plan.fresh + sum(plan.absent.values(), [])),
                          **options)
            run_record.write(temporary, 'imported', record)
    return plan

"""One Horovod rank of test_multi_device.py: started by horovodrun, writes <out>/rank<N>.npz.

Part 1, the first step: this rank's batch from the sharded pipeline, the loss on it and the
gradients after hvd.DistributedOptimizer averaged them. The forward pass runs in inference
mode, where each example's loss does not depend on the others in the batch (training-mode
batch norm normalizes per rank, as the references do), so a single process given both
ranks' batches must find the same loss and gradients.
Part 2, training: the real model_fn's train op with its hooks, from different random
initial values on each rank; the broadcast from rank 0 and the averaged gradients must leave
every rank with the same variables.
"""
import os
import sys

import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import official
from common import (backend, config, input_pipeline, optimizer, preprocessing,
                    runtime, trainer)

NETWORK = 'densenet121'  # with one layer per dense block (conftest.TINY)
TRAIN_STEPS = 3


def make_config(log_dir, rank_size):
    return config.resolve(official.load(NETWORK), dict(
        device='cpu', rank_size=rank_size, batch_size=16, image_size=32, num_classes=10,
        block_config=(1, 1, 1, 1), log_dir=log_dir, display_every=10 ** 6))


def make_runtime(cfg, where):
    return runtime.fixed(cfg, device='cpu', rank=where.rank, rank_size=where.size,
                         local_rank=where.local_rank, local_size=where.local_size,
                         steps_per_epoch=44, total_steps=100, save_checkpoints_steps=10 ** 6)


def gradients(network, cfg, run, images, labels):
    """(loss, {variable name: gradient}) of the inference-mode forward pass; variables exist."""
    logits, _ = network.build(tf.constant(images), False, cfg.num_classes,
                              block_config=cfg.block_config)
    loss = tf.reduce_mean(tf.compat.v1.losses.softmax_cross_entropy(
        tf.one_hot(labels, cfg.num_classes), logits,
        label_smoothing=cfg.label_smoothing, reduction=tf.compat.v1.losses.Reduction.NONE))
    pairs = optimizer.make_optimizer(0.1, cfg, run).compute_gradients(loss)
    return loss, {v.op.name: g for g, v in pairs if g is not None}


def main(out_dir, data_dir):
    where = backend.detect('cpu', int(os.environ['HOROVOD_SIZE']))
    network = official.load(NETWORK)
    cfg = make_config(out_dir, where.size)
    run = make_runtime(cfg, where)
    files = input_pipeline.find_files(data_dir, 'train')
    train_pp = preprocessing.PREPROCESSINGS[cfg.preprocessing].train
    result = {}
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(7)  # the same initial values on both ranks for part 1
        batch = tf.compat.v1.data.make_one_shot_iterator(input_pipeline.train_dataset(
            files, train_pp, cfg, where.rank, where.size)).get_next()
        # One session: closing one while the pipeline's threads still prefetch crashed rank
        # processes now and then (a segfault in Session.close with Horovod loaded).
        with tf.compat.v1.Session() as sess:
            features, labels = sess.run(batch)
            loss, grads = gradients(network, cfg, run, features['image'], labels)
            sess.run(tf.compat.v1.global_variables_initializer())
            loss_value, grad_values = sess.run([loss, grads])
            initial = sess.run({v.op.name: v for v in tf.compat.v1.global_variables()})
        result.update(images=features['image'], labels=labels, loss=loss_value)
        result.update({'grad/' + k: v for k, v in grad_values.items()})
        result.update({'initial/' + k: v for k, v in initial.items()})

    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(100 + where.rank)  # different initial values per rank
        features, labels = tf.compat.v1.data.make_one_shot_iterator(input_pipeline.train_dataset(
            files, train_pp, cfg, where.rank, where.size)).get_next()
        model_fn = trainer.for_training(network.model_fn, cfg, run)
        spec = model_fn(features, labels, tf.estimator.ModeKeys.TRAIN,
                        dict(config=cfg, runtime=run))
        with tf.compat.v1.train.MonitoredSession(hooks=spec.training_hooks) as sess:
            for _ in range(TRAIN_STEPS):
                sess.run(spec.train_op)
            trained = sess.run({v.op.name: v for v in tf.compat.v1.trainable_variables()})
        result.update({'trained/' + k: v for k, v in trained.items()})
    np.savez(os.path.join(out_dir, 'rank%d.npz' % where.rank), **result)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])

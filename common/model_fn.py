"""The classification model_fn every network shares: logits -> loss -> train op | metrics |
predictions. It only models: hooks, savers and warm starts are the trainer's (common/trainer.py).

A network supplies build(images, is_training, num_classes, **arguments) -> (logits, end_points)
(end_points may hold 'aux_logits' of an auxiliary head). The Estimator's params are
{'config': Config, 'runtime': Runtime}; prediction needs no runtime. The training graph names
the tensors the log line reads (TRAINING_TENSORS).
"""
import tensorflow as tf

from common import backend, optimizer, schedules
from common.checkpoints import AVERAGE_SUFFIX

MODE_KEYS = tf.estimator.ModeKeys
# name in the training log -> tensor name in the training graph
TRAINING_TENSORS = {'loss': 'cross_entropy:0', 'total_loss': 'total_loss:0',
                    'lr': 'learning_rate:0'}


def weight_decay_variables(config):
    """Variables under weight decay: every trainable one (seed recipe) or conv/FC weights only."""
    variables = tf.compat.v1.trainable_variables()
    if config.weight_decay_scope == 'kernels':
        variables = [v for v in variables if v.shape.ndims > 1]
    return variables


def model_variables():
    """What a checkpoint of the model is: trainable variables and batch-norm moving statistics
    (not optimizer slots, weight averages or the global step)."""
    statistics = [v for v in tf.compat.v1.global_variables()
                  if v.op.name.endswith(('/moving_mean', '/moving_variance'))]
    return tf.compat.v1.trainable_variables() + statistics


def _average_loading_scaffold(config):
    """A scaffold whose saver loads the weight averages into the model's variables (and every
    other variable, the global step, from its own name)."""
    if not config.moving_average_decay:
        return None
    averaged = set(model_variables())
    names = {v.op.name + (AVERAGE_SUFFIX if v in averaged else ''): v
             for v in tf.compat.v1.global_variables()}
    return tf.compat.v1.train.Scaffold(saver=tf.compat.v1.train.Saver(names))


def _weight_averages(variables):
    """A weight average for each variable, named as tf.train.ExponentialMovingAverage names
    them, starting as the variable's initial value: the very tensor the variable's initializer
    assigns, so both get the same values in the one run that initializes them. (tf.train's
    start from initialized_value(), a conditional on each variable's state: in the largest
    network 17,800 of the training graph's 30,900 nodes and 20 s of the 54 before its first
    step; README, Speed.)"""
    averages = []
    with tf.compat.v1.init_scope(), tf.compat.v1.name_scope(None):
        for v in variables:
            with tf.compat.v1.colocate_with(v.op):  # on the variable's device, as tf.train's
                averages.append(tf.compat.v1.Variable(v.initial_value, trainable=False,
                                                      name=v.op.name + AVERAGE_SUFFIX))
    return averages


def _update_weight_averages(averages, variables, config):
    """tf.train.ExponentialMovingAverage's update with num_updates = the global step:
    average -= (1 - decay) * (average - variable), decay = min(moving_average_decay,
    (1 + step) / (10 + step)); variables and step read as they are when the update runs."""
    step = tf.cast(tf.compat.v1.train.get_global_step(), tf.float32)
    decay = tf.minimum(config.moving_average_decay, (1.0 + step) / (10.0 + step))
    return tf.group(*[tf.compat.v1.assign_sub(a, (a - v) * (1.0 - decay))
                      for a, v in zip(averages, variables)], name='update_weight_averages')


def _cross_entropy(labels, logits, config):
    """Per-example softmax cross-entropy with the recipe's label smoothing."""
    return tf.compat.v1.losses.softmax_cross_entropy(
        tf.one_hot(labels, config.num_classes), logits,
        label_smoothing=config.label_smoothing, reduction=tf.compat.v1.losses.Reduction.NONE)


def _summed(name, values):
    """A metric accumulator: this rank's running sum of `values` and its update op."""
    total = tf.compat.v1.Variable(
        0.0, trainable=False, name=name,
        collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES,
                     tf.compat.v1.GraphKeys.METRIC_VARIABLES])
    return total, tf.compat.v1.assign_add(total, tf.reduce_sum(values))


def eval_metrics(labels, logits, per_example_loss, weights, config, runtime):
    """top1, top5, val_loss and images: sums over every rank, divided once (no mean of means)."""
    k = min(5, config.num_classes)
    hits1 = tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels), tf.float32)
    hits5 = tf.cast(tf.nn.in_top_k(logits, labels, k), tf.float32)
    count, count_update = _summed('images', weights)
    images = backend.sum_across_ranks(count, runtime)
    metrics = {'images': (images, count_update)}
    for name, values in (('top1', hits1), ('top5', hits5), ('val_loss', per_example_loss)):
        total, update = _summed(name, values * weights)
        metrics[name] = (backend.sum_across_ranks(total, runtime) / tf.maximum(images, 1.0),
                         update)
    return metrics


def _train_op(total_loss, config, runtime):
    global_step = tf.compat.v1.train.get_global_step()
    learning_rate = schedules.learning_rate(global_step, config, runtime)
    opt = optimizer.make_optimizer(learning_rate, config, runtime)
    # Batch-norm moving averages update with every training step, before its gradients. One
    # gate for all of them: with the update ops themselves as dependencies, each gradient op
    # would get an edge from each (DenseNet-121: 165,000 edges, which grappler walks again for
    # every new Session.run signature).
    update_ops = tf.group(*tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS))
    with tf.control_dependencies([update_ops]):
        train_op = opt.minimize(total_loss)
    # The global step counts the batches trained on, a step whose update a loss-scale optimizer
    # skipped (an fp16 overflow on Ascend or GPU) included: the NPU runs whole loops of
    # iterations_per_loop steps, and a global step that lagged behind them would overshoot the
    # step at which training stops and checkpoints (and every rank waits for that checkpoint).
    with tf.control_dependencies([train_op]):
        train_op = tf.compat.v1.assign_add(global_step, 1).op
    if config.moving_average_decay:
        variables = model_variables()
        averages = _weight_averages(variables)
        with tf.control_dependencies([train_op]):
            train_op = _update_weight_averages(averages, variables, config)
    return train_op


def make_model_fn(build_network, options=(), arguments=None, aux_loss_weight=0.0):
    """Returns an Estimator model_fn for the architecture `build_network`.

    options: the network's own config.Option records, each given to build_network as the
    keyword of its name; arguments(config, runtime, global_step, is_training) replaces those
    whose value depends on the step (a drop-path schedule); aux_loss_weight weighs
    the auxiliary head's cross-entropy in the training loss.
    """

    def model_fn(features, labels, mode, params):
        config, runtime = params['config'], params.get('runtime')
        is_training = mode == MODE_KEYS.TRAIN
        global_step = tf.compat.v1.train.get_or_create_global_step()
        keywords = {o.name: getattr(config, o.name) for o in options}
        if arguments:
            keywords.update(arguments(config, runtime, global_step, is_training))
        logits, end_points = build_network(features['image'], is_training, config.num_classes,
                                           **keywords)
        logits = tf.cast(logits, tf.float32)
        predictions = {'classes': tf.argmax(logits, 1, output_type=tf.int32),
                       'probabilities': tf.nn.softmax(logits), 'logits': logits}
        if mode == MODE_KEYS.PREDICT:
            return tf.estimator.EstimatorSpec(
                mode, predictions=predictions, scaffold=_average_loading_scaffold(config),
                export_outputs={'serving_default': tf.estimator.export.PredictOutput(predictions)})

        per_example_loss = _cross_entropy(labels, logits, config)
        if mode == MODE_KEYS.EVAL:
            weights = features['weight']
            loss = tf.reduce_sum(per_example_loss * weights) / tf.maximum(
                tf.reduce_sum(weights), 1.0)
            return tf.estimator.EstimatorSpec(
                mode, loss=loss, scaffold=_average_loading_scaffold(config),
                eval_metric_ops=eval_metrics(labels, logits, per_example_loss, weights, config,
                                             runtime))

        cross_entropy = tf.reduce_mean(per_example_loss, name='cross_entropy')
        decay = config.weight_decay * tf.add_n(
            [tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in weight_decay_variables(config)])
        total_loss = cross_entropy + decay
        if 'aux_logits' in end_points:
            total_loss += aux_loss_weight * tf.reduce_mean(
                _cross_entropy(labels, tf.cast(end_points['aux_logits'], tf.float32), config))
        total_loss = tf.identity(total_loss, name='total_loss')
        return tf.estimator.EstimatorSpec(mode, loss=total_loss,
                                          train_op=_train_op(total_loss, config, runtime))

    return model_fn

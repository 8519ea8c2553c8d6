"""The classification model_fn every network shares: logits -> loss -> train op | metrics.

A network supplies build(images, is_training, num_classes, **options) -> logits, or
(logits, aux_logits) when it has an auxiliary head and is training. The model_fn reads nothing
but `params` (the resolved configuration plus rank and steps_per_epoch).
"""
import tensorflow as tf

from common import backend, checkpoints, hooks, optimizer, schedules

MODE_KEYS = tf.estimator.ModeKeys


def weight_decay_variables(params):
    """Variables under weight decay: every trainable one (seed recipe) or conv/FC weights only."""
    variables = tf.compat.v1.trainable_variables()
    if params['weight_decay_scope'] == 'kernels':
        variables = [v for v in variables if v.shape.ndims > 1]
    return variables


def moving_average_variables():
    """What the weight average covers: trainable variables and batch-norm moving statistics."""
    statistics = [v for v in tf.compat.v1.global_variables()
                  if v.op.name.endswith(('/moving_mean', '/moving_variance'))]
    return tf.compat.v1.trainable_variables() + statistics


def _moving_average(params):
    return tf.train.ExponentialMovingAverage(
        params['moving_average_decay'], num_updates=tf.compat.v1.train.get_global_step())


def _average_loading_scaffold(params):
    """A scaffold whose saver loads the weight averages into the model's variables."""
    if not params['moving_average_decay']:
        return None
    names = _moving_average(params).variables_to_restore(moving_average_variables())
    return tf.compat.v1.train.Scaffold(saver=tf.compat.v1.train.Saver(names))


def _cross_entropy(labels, logits, params):
    """Per-example softmax cross-entropy with the recipe's label smoothing."""
    return tf.compat.v1.losses.softmax_cross_entropy(
        tf.one_hot(labels, params['num_classes']), logits,
        label_smoothing=params['label_smoothing'], reduction=tf.compat.v1.losses.Reduction.NONE)


def _summed(name, values):
    """A metric accumulator: this rank's running sum of `values` and its update op."""
    total = tf.compat.v1.Variable(
        0.0, trainable=False, name=name,
        collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES,
                     tf.compat.v1.GraphKeys.METRIC_VARIABLES])
    return total, tf.compat.v1.assign_add(total, tf.reduce_sum(values))


def eval_metrics(labels, logits, per_example_loss, weights, params):
    """top1, top5, val_loss and images: sums over every rank, divided once (no mean of means)."""
    k = min(5, params['num_classes'])
    hits1 = tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels), tf.float32)
    hits5 = tf.cast(tf.nn.in_top_k(logits, labels, k), tf.float32)
    count, count_update = _summed('images', weights)
    images = backend.sum_across_ranks(count, params)
    metrics = {'images': (images, count_update)}
    for name, values in (('top1', hits1), ('top5', hits5), ('val_loss', per_example_loss)):
        total, update = _summed(name, values * weights)
        metrics[name] = (backend.sum_across_ranks(total, params) / tf.maximum(images, 1.0),
                         update)
    return metrics


def build(build_network, options=None, aux_loss_weight=0.0):
    """Returns an Estimator model_fn for the architecture `build_network`.

    options(params) gives build_network's architecture keywords; aux_loss_weight weighs the
    auxiliary head's cross-entropy in the training loss.
    """

    def model_fn(features, labels, mode, params):
        is_training = mode == MODE_KEYS.TRAIN
        outputs = build_network(features['image'], is_training, params['num_classes'],
                                **(options(params) if options else {}))
        logits, aux_logits = outputs if isinstance(outputs, tuple) else (outputs, None)
        logits = tf.cast(logits, tf.float32)
        if is_training and params['restore_path']:
            checkpoints.warm_start(params)
        predictions = {'classes': tf.argmax(logits, 1, output_type=tf.int32),
                       'probabilities': tf.nn.softmax(logits)}
        if mode == MODE_KEYS.PREDICT:
            return tf.estimator.EstimatorSpec(
                mode, predictions=predictions, scaffold=_average_loading_scaffold(params),
                export_outputs={'serving_default': tf.estimator.export.PredictOutput(predictions)})

        per_example_loss = _cross_entropy(labels, logits, params)
        if mode == MODE_KEYS.EVAL:
            weights = features['weight']
            loss = tf.reduce_sum(per_example_loss * weights) / tf.maximum(
                tf.reduce_sum(weights), 1.0)
            return tf.estimator.EstimatorSpec(
                mode, loss=loss, scaffold=_average_loading_scaffold(params),
                eval_metric_ops=eval_metrics(labels, logits, per_example_loss, weights, params))

        cross_entropy = tf.reduce_mean(per_example_loss, name='cross_entropy')
        decay = params['weight_decay'] * tf.add_n(
            [tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in weight_decay_variables(params)])
        total_loss = cross_entropy + decay
        if aux_logits is not None:
            total_loss += aux_loss_weight * tf.reduce_mean(
                _cross_entropy(labels, tf.cast(aux_logits, tf.float32), params))
        total_loss = tf.identity(total_loss, name='total_loss')
        global_step = tf.compat.v1.train.get_or_create_global_step()
        learning_rate = schedules.learning_rate(global_step, params)
        opt = optimizer.build(learning_rate, params)
        # Batch-norm moving averages update with every training step.
        with tf.control_dependencies(tf.compat.v1.get_collection(
                tf.compat.v1.GraphKeys.UPDATE_OPS)):
            train_op = opt.minimize(total_loss, global_step=global_step)
        if params['moving_average_decay']:
            with tf.control_dependencies([train_op]):
                train_op = _moving_average(params).apply(moving_average_variables())
        with tf.control_dependencies([train_op]):
            step_done = tf.identity(global_step)  # the step this run reached, read after update
        log_hook = hooks.TrainLogHook(
            {'step': step_done, 'loss': cross_entropy, 'total_loss': total_loss,
             'lr': learning_rate}, params)
        chief_hooks = []
        if params['device'] != 'npu' and params['rank'] == 0:
            chief_hooks.append(hooks.CheckpointSaver(
                params['log_dir'], save_steps=params['save_checkpoints_steps']))
        return tf.estimator.EstimatorSpec(mode, loss=total_loss, train_op=train_op,
                                          training_hooks=[log_hook]
                                          + backend.broadcast_hooks(params),
                                          training_chief_hooks=chief_hooks)

    return model_fn

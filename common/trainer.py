"""The run loop of the three modes (train | evaluate | train_and_evaluate) and what training
attaches to the model: the log line, the broadcast from rank 0, the saver, the warm start."""
import functools
import json
import os

import tensorflow as tf

from common import backend, checkpoints, estimator, input_pipeline, model_fn, preprocessing, report
from common.config import command_line
from common.hooks import CheckpointSaver, TrainLogHook, log
from common.runtime import HPARAMS_FILE, train_targets


def _describe_device(config, runtime):
    if runtime.device == 'cpu':
        return 'device: cpu, rank %d of %d, fp32 (--precision_mode=%s applies on npu/gpu only)' % (
            runtime.rank, runtime.rank_size, config.precision_mode)
    return 'device: %s, rank %d of %d, precision_mode %s' % (
        runtime.device, runtime.rank, runtime.rank_size, config.precision_mode)


def with_training_hooks(network_model_fn, config, runtime):
    """network_model_fn with the training log line, rank 0's broadcast and (off Ascend,
    rank 0) the checkpoint saver attached to its training spec."""

    def attached(features, labels, mode, params):
        spec = network_model_fn(features, labels, mode, params)
        if mode != tf.estimator.ModeKeys.TRAIN:
            return spec
        graph = tf.compat.v1.get_default_graph()
        tensors = {k: graph.get_tensor_by_name(v) for k, v in model_fn.TRAINING_TENSORS.items()}
        with tf.control_dependencies([spec.train_op]):
            # the step this run reached, read after the update
            tensors['step'] = tf.identity(tf.compat.v1.train.get_global_step())
        hooks = [TrainLogHook(tensors, config.batch_size * runtime.rank_size,
                              runtime.steps_per_epoch, config.display_every)]
        hooks += backend.broadcast_hooks(runtime)
        chief_hooks = []
        if runtime.device != 'npu' and runtime.rank == 0:
            chief_hooks.append(CheckpointSaver(config.log_dir,
                                               save_steps=runtime.save_checkpoints_steps))
        return spec._replace(training_hooks=list(spec.training_hooks) + hooks,
                             training_chief_hooks=list(spec.training_chief_hooks) + chief_hooks)

    return attached


def warm_start_fn(config, runtime):
    """The warm start from --restore_path for model_fn, or None: a run that resumes from its
    own checkpoint skips it (its checkpoint wins)."""
    if not runtime.restore_prefix or checkpoints.latest_step(config.log_dir) is not None:
        return None
    return functools.partial(_warm_start, runtime.restore_prefix, config.restore_exclude)


def _warm_start(prefix, exclude):
    checkpoints.warm_start(prefix, exclude, model_fn.model_variables())


def _input_fns(config, runtime):
    train_pp, eval_pp = preprocessing.PREPROCESSING[config.preprocessing]
    rank, size = runtime.rank, runtime.rank_size
    train_fn = eval_fn = None
    if config.mode != 'evaluate':
        files = input_pipeline.find_files(config.data_dir, 'train')
        train_fn = functools.partial(input_pipeline.train_dataset, files, train_pp, config,
                                     rank=rank, size=size)
    if config.mode != 'train':
        files = input_pipeline.find_files(config.data_dir, 'validation')
        num = input_pipeline.count_records(files)
        eval_fn = (functools.partial(input_pipeline.eval_dataset, files, num, eval_pp, config,
                                     rank=rank, size=size),
                   input_pipeline.eval_steps(num, config.batch_size, size), num)
    return train_fn, eval_fn


def _evaluate(classifier, eval_fn, step, prefix, config, runtime):
    input_fn, steps, _ = eval_fn
    checkpoints.check_moving_averages(prefix, config.moving_average_decay)
    result = classifier.evaluate(input_fn, steps=steps, checkpoint_path=prefix)
    return report.row(step, runtime.steps_per_epoch, result, os.path.getmtime(prefix + '.index'))


def write_hparams(config, runtime):
    """Rank 0 records the configuration and the runtime (one flat mapping) in log_dir."""
    if runtime.rank != 0:
        return
    os.makedirs(config.log_dir, exist_ok=True)
    record = dict(config.as_dict(), **runtime._asdict())
    record['command'] = command_line()
    with open(os.path.join(config.log_dir, HPARAMS_FILE), 'w') as f:
        json.dump(record, f, indent=2, sort_keys=True)


def evaluate_all(classifier, eval_fn, config, runtime):
    """Evaluates every checkpoint in eval_dir (or the one prefix) and prints the table."""
    listed = checkpoints.list_checkpoints(config.eval_dir)
    log.info('Evaluating %d checkpoint(s) in %s on %d validation images',
             len(listed), config.eval_dir, eval_fn[2])
    rows = [_evaluate(classifier, eval_fn, step, prefix, config, runtime)
            for step, prefix in listed]
    report.log_rows(rows)
    report.log_summary(rows)


def train(classifier, evaluator, train_fn, eval_fn, config, runtime):
    """Trains to each target step in turn, evaluating after each when eval_fn is given."""
    targets = train_targets(config, runtime.steps_per_epoch)
    start = checkpoints.latest_step(config.log_dir)
    if start is not None and start >= targets[-1]:
        log.info('training already finished: step %d >= %d in %s', start, targets[-1],
                 config.log_dir)
        return
    if start:
        log.info('resumed at step %d', start)
    for target in targets:
        if start is not None and start >= target:
            continue
        log.info('Starting a training cycle: to step %d (epoch %.1f)', target,
                 target / runtime.steps_per_epoch)
        classifier.train(train_fn, max_steps=target)
        if eval_fn:
            # Training stops exactly at the target; rank 0 writes that checkpoint, the other
            # ranks wait for it, so that every rank evaluates the same weights.
            prefix = checkpoints.wait_for(config.log_dir, target)
            log.info('Starting to evaluate')
            log.info('Validation dataset size: %d', eval_fn[2])
            report.log_rows([_evaluate(evaluator, eval_fn, target, prefix, config, runtime)])


def run(network, config, runtime):
    """Runs config.mode for a network record (official.load)."""
    log.info('network: %s  mode: %s  %s', network.name, config.mode,
             _describe_device(config, runtime))
    if config.mode != 'evaluate':
        write_hparams(config, runtime)
    train_fn, eval_fn = _input_fns(config, runtime)
    evaluator = estimator.build(network.model_fn, config, runtime, for_evaluation=True)
    if config.mode == 'evaluate':
        evaluate_all(evaluator, eval_fn, config, runtime)
    else:
        classifier = estimator.build(with_training_hooks(network.model_fn, config, runtime),
                                     config, runtime, warm_start=warm_start_fn(config, runtime))
        train(classifier, evaluator, train_fn, eval_fn, config, runtime)

"""The run loop of the three modes (train | evaluate | train_and_evaluate) and what training
attaches to the model: the log line, the broadcast from rank 0, the saver, the warm start."""
import collections
import functools
import os
import sys

import tensorflow as tf

from common import (backend, checkpoints, estimator, inference, input_pipeline,
                    model_fn, preprocessing, report, run_directory, run_record)
from common.errors import UsageError
from common.hooks import CheckpointSaver, TrainLogHook
from common.logs import log
from common.runtime import record_fields, train_targets


def _describe_device(config, runtime):
    if runtime.device == 'cpu':
        return 'device: cpu, rank %d of %d, fp32 (--precision_mode=%s applies on npu/gpu only)' % (
            runtime.rank, runtime.rank_size, config.precision_mode)
    return 'device: %s, rank %d of %d, precision_mode %s' % (
        runtime.device, runtime.rank, runtime.rank_size, config.precision_mode)


def for_training(network_model_fn, config, runtime, warm_start_from=None):
    """network_model_fn with what training adds to its training spec: the log line, rank 0's
    broadcast, (off Ascend, rank 0) the checkpoint saver, and the warm start from checkpoint
    prefix warm_start_from (--restore_path)."""

    def attached(features, labels, mode, params):
        spec = network_model_fn(features, labels, mode, params)
        if mode != tf.estimator.ModeKeys.TRAIN:
            return spec
        if warm_start_from:
            _warm_start(warm_start_from, config.restore_exclude)
        graph = tf.compat.v1.get_default_graph()
        tensors = {k: graph.get_tensor_by_name(v) for k, v in model_fn.TRAINING_TENSORS.items()}
        with tf.control_dependencies([spec.train_op]):
            # the step this run reached, read after the update
            tensors['step'] = tf.identity(tf.compat.v1.train.get_global_step())
        # TensorBoard scalars on rank 0 off Ascend; NPUEstimator keeps the seeds' setting
        # (save_summary_steps=0).
        summaries = runtime.rank == 0 and runtime.device != 'npu'
        hooks = [TrainLogHook(tensors, config.batch_size * runtime.rank_size,
                              runtime.steps_per_epoch, config.display_every,
                              summary_dir=config.log_dir if summaries else None)]
        hooks += backend.broadcast_hooks(runtime)
        chief_hooks = [_HparamsWriter(config, runtime)] if runtime.rank == 0 else []
        if runtime.device != 'npu' and runtime.rank == 0:
            chief_hooks.append(CheckpointSaver(config.log_dir,
                                               save_steps=runtime.save_checkpoints_steps))
        return spec._replace(training_hooks=list(spec.training_hooks) + hooks,
                             training_chief_hooks=list(spec.training_chief_hooks) + chief_hooks)

    return attached


def _warm_start(prefix, exclude):
    """The model's variables from checkpoint `prefix`, once model_fn has built them and their
    weight averages (which start from the same values)."""
    checkpoints.warm_start(prefix, exclude, model_fn.model_variables())


# The evaluation input: its input_fn, the steps that read every record once, and their number.
EvalInput = collections.namedtuple('EvalInput', ['input_fn', 'steps', 'num_records'])


def _input_fns(config, runtime):
    """(training input_fn or None, EvalInput or None) for the mode."""
    record = preprocessing.PREPROCESSINGS[config.preprocessing]
    rank, size = runtime.rank, runtime.rank_size
    train_fn = eval_input = None
    if config.mode != 'evaluate':
        train_fn = functools.partial(input_pipeline.train_dataset, list(runtime.train_files),
                                     record.train, config, rank=rank, size=size)
    if config.mode != 'train':
        files = input_pipeline.find_files(config.data_dir, 'validation')
        num = input_pipeline.count_records(files)
        eval_input = EvalInput(
            functools.partial(input_pipeline.eval_dataset, files, num, record.evaluate, config,
                              rank=rank, size=size),
            input_pipeline.eval_steps(num, config.batch_size, size), num)
    return train_fn, eval_input


def model_shapes(network, config):
    """{variable name: shape} of the model as evaluation builds it (a scratch graph)."""
    with tf.Graph().as_default():
        size = config.image_size
        images = tf.compat.v1.placeholder(tf.float32, [1, size, size, 3])
        network.model_fn({'image': images}, None, tf.estimator.ModeKeys.PREDICT,
                         dict(config=config))
        return {v.op.name: v.shape.as_list() for v in model_fn.model_variables()}


VANISHED = 'removed before it could be read (a training run keeps only its newest 5)'


def _evaluate(classifier, eval_input, step, prefix, config, runtime):
    try:
        mtime = os.path.getmtime(prefix + '.index')
        checkpoints.check_moving_averages(prefix, config.moving_average_decay)
        result = classifier.evaluate(eval_input.input_fn, steps=eval_input.steps,
                                     checkpoint_path=prefix)
    except (OSError, ValueError, tf.errors.OpError) as e:
        # ValueError: Saver.restore's "not a valid checkpoint" once the index is gone
        if not os.path.exists(prefix + '.index'):  # a training deleted it meanwhile
            return report.skipped_row(step, runtime.steps_per_epoch, '%s: %s' % (
                os.path.basename(prefix), VANISHED))
        failure = checkpoints.restore_failure(e) if isinstance(e, tf.errors.OpError) else None
        if failure is None:
            raise  # not the checkpoint's fault: the data's
        return report.failed_row(step, runtime.steps_per_epoch,
                                 '%s: %s' % (os.path.basename(prefix), failure), mtime)
    return report.row(step, runtime.steps_per_epoch, result, mtime)


def write_hparams(config, runtime):
    """Records the configuration, the runtime (one flat mapping) and the command line in
    log_dir; a different record already there is kept as hparams.previous.json."""
    record = dict(config.as_dict(), command=' '.join(sys.argv), **record_fields(runtime))
    run_record.write(config.log_dir, 'training', record, keep_previous=True)
    # The class names travel with the checkpoints (export and predict read them).
    names = inference.dataset_class_names(config, (config.data_dir,))
    if names:
        run_record.write_labels(config.log_dir, names)


class _HparamsWriter(tf.estimator.SessionRunHook):
    """Writes hparams.json once the training session exists: the graph is built and the
    variables are restored or warm-started, so a run that fails to start leaves the previous
    record as it was."""

    def __init__(self, config, runtime):
        self._config, self._runtime = config, runtime

    def after_create_session(self, session, coord):
        write_hparams(self._config, self._runtime)


def evaluate_all(network, classifier, eval_input, config, runtime):
    """Evaluates every checkpoint in eval_dir (or the one prefix) and prints the table."""
    listed = run_directory.checkpoints_to_evaluate(config.eval_dir)
    shapes = model_shapes(network, config)
    for _, prefix in listed:
        try:
            checkpoints.check_fits(prefix, shapes, config.network)
        except UsageError:
            if os.path.exists(prefix + '.index'):
                raise  # else gone meanwhile: its row says so
    log.info('Evaluating %d checkpoint(s) in %s on %d validation images',
             len(listed), config.eval_dir, eval_input.num_records)
    rows = [_evaluate(classifier, eval_input, step, prefix, config, runtime)
            for step, prefix in listed]
    report.log_rows(rows)
    report.log_summary(rows)
    failed = [r['error'] for r in rows if 'error' in r]
    if failed:
        raise UsageError('%d of %d checkpoints could not be read (%s)'
                         % (len(failed), len(rows), '; '.join(failed)))


def _evaluate_and_record(evaluator, eval_input, target, prefix, config, runtime):
    log.info('Starting to evaluate')
    log.info('Validation dataset size: %d', eval_input.num_records)
    row = _evaluate(evaluator, eval_input, target, prefix, config, runtime)
    report.log_rows([row])
    if runtime.rank == 0:
        run_directory.record_evaluation(config.log_dir, row)


def _redo_interrupted_evaluations(evaluator, eval_input, targets, start, config, runtime):
    """Evaluates the reached targets whose table row was never written (a run stopped during
    its evaluation), when their checkpoint is still there."""
    done = run_directory.evaluated_steps(config.log_dir)
    for target in targets:
        if target <= start and target not in done:
            prefix = os.path.join(config.log_dir, 'model.ckpt-%d' % target)
            if os.path.exists(prefix + '.index'):
                log.info('model.ckpt-%d was never evaluated (interrupted): evaluating it now',
                         target)
                _evaluate_and_record(evaluator, eval_input, target, prefix, config, runtime)


def _train_to(classifier, train_fn, target, config, runtime):
    """classifier.train to `target`; a checkpoint that cannot be restored is named."""
    try:
        classifier.train(train_fn, max_steps=target)
    except tf.errors.OpError as e:
        failure = checkpoints.restore_failure(e)
        if failure is None:
            raise
        source = tf.train.latest_checkpoint(config.log_dir) or runtime.restore_prefix
        raise UsageError('cannot restore checkpoint %s: %s' % (source, failure)) from None


def train(classifier, evaluator, train_fn, eval_input, config, runtime, start):
    """Trains from step `start` (None: a new run) to each target step in turn, evaluating
    after each when eval_input is given."""
    targets = train_targets(config, runtime.steps_per_epoch)
    if start is not None and eval_input:
        _redo_interrupted_evaluations(evaluator, eval_input, targets, start, config, runtime)
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
        _train_to(classifier, train_fn, target, config, runtime)
        if eval_input:
            # Training stops exactly at the target; rank 0 writes that checkpoint, the other
            # ranks wait for it, so that every rank evaluates the same weights.
            _evaluate_and_record(evaluator, eval_input, target,
                                 run_directory.wait_for(config.log_dir, target), config, runtime)


# Flags that only the NPU uses, with the value that means "off".
NPU_ONLY_FLAGS = dict(over_dump=False, over_dump_path=None, data_dump_flag=False,
                      data_dump_path=None, profiling=False, profiling_dump_path=None,
                      op_select_implmode=None, op_compiler_cache_dir=None)
# Where NPUEstimator warm-starts from on its own (npu_common.py job info, then
# npu_estimator.py): LOCAL_CHECKPOINT_DIR before RESTORE_FROM, when the caller passes none.
NPU_WARM_START_VARIABLES = ('LOCAL_CHECKPOINT_DIR', 'RESTORE_FROM')


def _prepare_device(config, runtime, resuming):
    """Off Ascend: names the NPU-only flags given, which are ignored. On Ascend: sets the job
    environment NPUEstimator needs, and says (or refuses, when it conflicts with this run) the
    warm start NPUEstimator takes by itself from the environment."""
    if runtime.device != 'npu':
        given = sorted(name for name, off in NPU_ONLY_FLAGS.items()
                       if getattr(config, name) != off)
        if given:
            log.info('%s: Ascend only, ignored on %s', ', '.join('--' + n for n in given),
                     runtime.device)
        return
    added = backend.set_npu_job_environment(runtime)
    if added:
        log.info('set for NPUEstimator, as the ModelZoo\'s scripts do: %s',
                 ' '.join('%s=%s' % kv for kv in sorted(added.items())))
    variable = next((v for v in NPU_WARM_START_VARIABLES if os.environ.get(v)), None)
    if variable is None or config.mode == 'evaluate':
        return
    source = os.environ[variable]
    if not (os.path.exists(source + '.index') or (
            os.path.isdir(source) and tf.train.latest_checkpoint(source))):
        raise UsageError('%s=%s in the environment makes NPUEstimator warm-start from it, but it '
                         'is no checkpoint (a model.ckpt-N prefix or a directory of them)'
                         % (variable, source))
    if config.restore_path:
        raise UsageError('%s=%s in the environment makes NPUEstimator warm-start from it, and '
                         '--restore_path=%s asks for another start; unset %s or leave out '
                         '--restore_path' % (variable, source, config.restore_path, variable))
    if resuming:
        raise UsageError('%s=%s in the environment asks NPUEstimator to warm-start, but %s '
                         'already holds this run\'s checkpoints, which it resumes from; unset '
                         '%s or choose another --log_dir' % (variable, source, config.log_dir,
                                                            variable))
    log.info('NPUEstimator warm-starts from %s (environment variable %s): the trainable '
             'variables only (tf.estimator\'s default); batch-norm statistics start afresh, '
             'unlike --restore_path', source, variable)


def run(network, config, runtime):
    """Runs config.mode for a network record (official.load)."""
    log.info('network: %s  mode: %s  %s', network.name, config.mode,
             _describe_device(config, runtime))
    start = None  # the step a training resumes from
    if config.mode != 'evaluate':
        if runtime.rank == 0:
            run_directory.prepare_to_resume(config.log_dir, runtime.device)
        latest = tf.train.latest_checkpoint(config.log_dir)
        if latest:  # the run directory's checkpoint must fit the model
            start = checkpoints.step_of(latest)
            checkpoints.check_fits(latest, model_shapes(network, config),
                                   config.network)
    # Step 0 resumes nothing (the initial weights; rank 0 may be removing them right now).
    _prepare_device(config, runtime, resuming=bool(start))
    train_fn, eval_input = _input_fns(config, runtime)
    evaluator = None  # not built in --mode=train
    if eval_input:
        evaluator = estimator.make_estimator(network.model_fn, config, runtime, for_evaluation=True)
    if config.mode == 'evaluate':
        evaluate_all(network, evaluator, eval_input, config, runtime)
    else:
        # a run that resumes from its own checkpoint skips --restore_path (its checkpoint wins)
        warm_start_from = runtime.restore_prefix if start is None else None
        classifier = estimator.make_estimator(
            for_training(network.model_fn, config, runtime, warm_start_from), config, runtime)
        train(classifier, evaluator, train_fn, eval_input, config, runtime, start)

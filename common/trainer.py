"""The three modes (train | evaluate | train_and_evaluate), start-up checks and the eval table."""
import functools
import json
import math
import os
import time

import tensorflow as tf

from common import backend, checkpoints, estimator, flags, input_pipeline, preprocessing
from common.errors import UsageError
from common.hooks import log

TABLE_HEADER = ' step  epoch  top1    top5     loss   checkpoint_time(UTC)'
TABLE_ROW = '{:5d}  {:5.1f}  {:5.3f}  {:6.2f}  {:6.2f}  {time}'
HPARAMS_FILE = 'hparams.json'


def _largest_divisor_up_to(n, limit):
    return max(d for d in range(1, limit + 1) if n % d == 0)


def train_targets(params):
    """Global steps at which training stops (and, in train_and_evaluate, evaluates)."""
    spe = params['steps_per_epoch']
    if params['mode'] == 'train':
        if params['max_train_steps']:
            return [params['max_train_steps']]
        return [params['max_epochs'] * spe]
    if params['max_train_steps']:
        raise UsageError('--max_train_steps is for --mode=train; train_and_evaluate runs '
                         '--max_epochs epochs')
    epochs = list(range(params['epochs_between_evals'], params['max_epochs'],
                        params['epochs_between_evals'])) + [params['max_epochs']]
    return [e * spe for e in epochs]


def check_npu_settings(params, targets):
    """The NPU runs whole loops of iterations_per_loop steps: reject what it cannot do."""
    loop = params['iterations_per_loop']
    if params['save_checkpoints_steps'] % loop:
        raise UsageError('--save_checkpoints_steps=%d is not a multiple of --iterations_per_loop=%d'
                         '; use %d' % (params['save_checkpoints_steps'], loop,
                                       max(loop, params['save_checkpoints_steps'] // loop * loop)))
    for target in targets:
        if target % loop:
            divisor = _largest_divisor_up_to(functools.reduce(math.gcd, targets), loop)
            raise UsageError('training stops at step %d (steps per epoch: %d), not a multiple of '
                             '--iterations_per_loop=%d; use --iterations_per_loop=%d'
                             % (target, params['steps_per_epoch'], loop, divisor))


def _steps_per_epoch(params):
    """(records in the train split, steps per epoch) or (None, None) in evaluate mode without
    training data; evaluate mode then takes them from the checkpoint directory's hparams.json."""
    try:
        files = input_pipeline.find_files(params['data_dir'], 'train')
    except UsageError:
        if params['mode'] != 'evaluate':
            raise
        try:
            with open(os.path.join(params['eval_dir'], HPARAMS_FILE)) as f:
                saved = json.load(f)
            return saved['num_train_images'], saved['steps_per_epoch']
        except (OSError, ValueError, KeyError):
            return None, None
    num = input_pipeline.count_records(files)
    global_batch = params['batch_size'] * params['rank_size']
    if num < global_batch:
        raise UsageError('the global batch (--batch_size=%d x %d ranks) is larger than the %d '
                         'training images in %s' % (params['batch_size'], params['rank_size'],
                                                    num, params['data_dir']))
    return num, num // global_batch


def prepare(params):
    """Adds what the run needs besides flags (backend, rank, data sizes) and checks it."""
    where = backend.detect(params['device'], params['rank_size'])
    params.update(device=where.device, rank=where.rank, rank_size=where.size,
                  local_rank=where.local_rank, local_size=where.local_size)
    if params['eval_dir'] is None:
        params['eval_dir'] = params['log_dir']
    if params['restore_path']:
        params['restore_path'] = checkpoints.resolve_restore_path(params['restore_path'])
    num_train, spe = _steps_per_epoch(params)
    params.update(num_train_images=num_train, steps_per_epoch=spe)
    if params['mode'] != 'evaluate':
        if params['save_checkpoints_steps'] is None:  # once an epoch, in whole NPU loops
            loop = params['iterations_per_loop'] if params['device'] == 'npu' else 1
            params['save_checkpoints_steps'] = max(loop, spe // loop * loop)
        if params['max_epochs'] is None and not params['max_train_steps']:
            raise UsageError('give --max_epochs or --max_train_steps')
        targets = train_targets(params)
        params['total_steps'] = targets[-1]
        if params['device'] == 'npu':
            check_npu_settings(params, targets)
    return params


def _describe_device(params):
    if params['device'] == 'cpu':
        return 'device: cpu, rank %d of %d, fp32 (--precision_mode=%s applies on npu/gpu only)' % (
            params['rank'], params['rank_size'], params['precision_mode'])
    return 'device: %s, rank %d of %d, precision_mode %s' % (
        params['device'], params['rank'], params['rank_size'], params['precision_mode'])


def _input_fns(params):
    train_pp, eval_pp = preprocessing.PREPROCESSING[params['preprocessing']]
    rank, size = params['rank'], params['rank_size']
    train_fn = eval_fn = None
    if params['mode'] != 'evaluate':
        files = input_pipeline.find_files(params['data_dir'], 'train')
        train_fn = functools.partial(input_pipeline.train_dataset, files, train_pp, rank=rank,
                                     size=size)
    if params['mode'] != 'train':
        files = input_pipeline.find_files(params['data_dir'], 'validation')
        num = input_pipeline.count_records(files)
        eval_fn = (functools.partial(input_pipeline.eval_dataset, files, num, eval_pp, rank=rank,
                                     size=size), input_pipeline.eval_steps(num, params), num)
    return train_fn, eval_fn


def _evaluate(classifier, eval_fn, step, prefix, params):
    input_fn, steps, _ = eval_fn
    checkpoints.check_moving_averages(prefix, params)
    result = classifier.evaluate(input_fn, steps=steps, checkpoint_path=prefix)
    mtime = os.path.getmtime(prefix + '.index')
    spe = params['steps_per_epoch']
    return dict(step=step, epoch=step / spe if spe else float('nan'), top1=result['top1'],
                top5=result['top5'], loss=result['val_loss'], images=int(result['images']),
                time=time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(mtime)))


def _log_rows(rows):
    log.info(TABLE_HEADER)
    for row in rows:
        log.info(TABLE_ROW.format(row['step'], row['epoch'], row['top1'] * 100,
                                  row['top5'] * 100, row['loss'], time=row['time']))


def _write_hparams(params):
    if params['rank'] == 0:
        os.makedirs(params['log_dir'], exist_ok=True)
        with open(os.path.join(params['log_dir'], HPARAMS_FILE), 'w') as f:
            json.dump(params, f, indent=2, sort_keys=True)


def evaluate_all(classifier, eval_fn, params):
    """Evaluates every checkpoint in eval_dir (or the one prefix) and prints the table."""
    listed = checkpoints.list_checkpoints(params['eval_dir'])
    log.info('Evaluating %d checkpoint(s) in %s on %d validation images',
             len(listed), params['eval_dir'], eval_fn[2])
    rows = [_evaluate(classifier, eval_fn, step, prefix, params) for step, prefix in listed]
    _log_rows(rows)
    best = max(rows, key=lambda r: r['top1'])
    log.info('images evaluated: %d', rows[-1]['images'])
    log.info('best: step %d  top1 %.3f  top5 %.2f', best['step'], best['top1'] * 100,
             best['top5'] * 100)
    log.info('Finished evaluation')


def train(classifier, evaluator, train_fn, eval_fn, params):
    """Trains to each target step in turn, evaluating after each when eval_fn is given."""
    targets = train_targets(params)
    start = checkpoints.latest_step(params['log_dir'])
    if start is not None and start >= targets[-1]:
        log.info('training already finished: step %d >= %d in %s', start, targets[-1],
                 params['log_dir'])
        return
    if start:
        log.info('resumed at step %d', start)
    for target in targets:
        if start is not None and start >= target:
            continue
        log.info('Starting a training cycle: to step %d (epoch %.1f)', target,
                 target / params['steps_per_epoch'])
        classifier.train(train_fn, max_steps=target)
        if eval_fn:
            # Training stops exactly at the target; rank 0 writes that checkpoint, the other
            # ranks wait for it, so that every rank evaluates the same weights.
            prefix = checkpoints.wait_for(params['log_dir'], target)
            log.info('Starting to evaluate')
            log.info('Validation dataset size: %d', eval_fn[2])
            _log_rows([_evaluate(evaluator, eval_fn, target, prefix, params)])


def _multiply_adds(graph):
    """Multiply-adds of the convolutions and matrix products (what papers call FLOPs)."""
    total = 0
    for op in graph.get_operations():
        if op.type in ('Conv2D', 'DepthwiseConv2dNative'):
            height, width, channels, _ = op.inputs[1].shape.as_list()
            per_output = height * width * (channels if op.type == 'Conv2D' else 1)
            total += op.outputs[0].shape.num_elements() * per_output
        elif op.type == 'MatMul':
            total += op.outputs[0].shape.num_elements() * int(op.inputs[0].shape[1])
    return total


def network_size(network, num_classes=1000, image_size=224):
    """(trainable parameters, multiply-adds for one image) of the inference graph."""
    with tf.Graph().as_default() as graph:
        images = tf.compat.v1.placeholder(tf.float32, [1, image_size, image_size, 3])
        network.build(images, False, num_classes)
        params = sum(v.shape.num_elements() for v in tf.compat.v1.trainable_variables())
        return params, _multiply_adds(graph)


def describe_recipe(recipe):
    d = dict(flags.COMMON_DEFAULTS, **recipe)
    schedule = d['lr_schedule']
    if 'cosine' in schedule:
        schedule += ' T_max %d' % d['T_max']
    if 'exponential' in schedule:
        schedule += ' %g' % d['lr_decay_rate']
    if d['lr_warmup_epochs']:
        schedule += ', warm-up %g epochs' % d['lr_warmup_epochs']
    lr = '%g' % d['lr'] + (' at global batch %d' % d['lr_batch'] if d['lr_batch'] else '')
    return ('batch %d/device, %s lr %s (%s), momentum %g%s, wd %g on %s, label smoothing %g, '
            '%d epochs, %d px, %s' % (
                d['batch_size'], d['optimizer'], lr, schedule, d['momentum'],
                ' nesterov' if d['use_nesterov'] else '', d['weight_decay'],
                d['weight_decay_scope'], d['label_smoothing'], d['max_epochs'], d['image_size'],
                d['preprocessing'])
            + (', weights averaged (decay %g) for evaluation' % d['moving_average_decay']
               if d['moving_average_decay'] else ''))


def run(network, params):
    """Runs params['mode'] for a network record (official.load)."""
    log.info('network: %s  mode: %s  %s', network.name, params['mode'], _describe_device(params))
    if params['mode'] != 'evaluate':
        _write_hparams(params)
    train_fn, eval_fn = _input_fns(params)
    evaluator = estimator.build(network.model_fn, params, for_evaluation=True)
    if params['mode'] == 'evaluate':
        evaluate_all(evaluator, eval_fn, params)
    else:
        train(estimator.build(network.model_fn, params), evaluator, train_fn, eval_fn, params)

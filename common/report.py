"""What the zoo prints besides the training line: the evaluation table (seed format) and the
--list_networks report (parameters, multiply-adds, recipe)."""
import time

import tensorflow as tf

from common.logs import log

TABLE_HEADER = ' step  epoch  top1    top5     loss   checkpoint_time(UTC)'
TABLE_ROW = '{:5d}  {:5.1f}  {:5.3f}  {:6.2f}  {:6.2f}  {time}'


def row(step, steps_per_epoch, result, mtime):
    """One table row from an Estimator evaluation result of the checkpoint at `step`."""
    return dict(step=step, epoch=step / steps_per_epoch if steps_per_epoch else float('nan'),
                top1=float(result['top1']), top5=float(result['top5']),
                loss=float(result['val_loss']),
                images=int(result['images']),
                time=time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(mtime)))


def failed_row(step, steps_per_epoch, error, mtime):
    """A table row for a checkpoint that could not be evaluated."""
    return dict(row(step, steps_per_epoch, dict(top1=0.0, top5=0.0, val_loss=0.0, images=0),
                    mtime), error=error)


def skipped_row(step, steps_per_epoch, reason):
    """A table row for a checkpoint that is no longer there (not an error)."""
    return dict(row(step, steps_per_epoch, dict(top1=0.0, top5=0.0, val_loss=0.0, images=0),
                    time.time()), skipped=reason)


def log_rows(rows):
    log.info(TABLE_HEADER)
    for r in rows:
        if 'error' in r:
            log.info('{:5d}  {:5.1f}  unreadable: {}'.format(r['step'], r['epoch'], r['error']))
            continue
        if 'skipped' in r:
            log.info('{:5d}  {:5.1f}  skipped: {}'.format(r['step'], r['epoch'], r['skipped']))
            continue
        log.info(TABLE_ROW.format(r['step'], r['epoch'], r['top1'] * 100, r['top5'] * 100,
                                  r['loss'], time=r['time']))


def log_summary(rows):
    rows = [r for r in rows if 'error' not in r and 'skipped' not in r]
    if not rows:
        return
    best = max(rows, key=lambda r: r['top1'])
    log.info('images evaluated: %d', rows[-1]['images'])
    log.info('best: step %d  top1 %.3f  top5 %.2f', best['step'], best['top1'] * 100,
             best['top5'] * 100)
    log.info('Finished evaluation')


def multiply_adds(graph):
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
        count = sum(v.shape.num_elements() for v in tf.compat.v1.trainable_variables())
        return count, multiply_adds(graph)


def describe_recipe(config):
    """One line: the training recipe of a resolved configuration."""
    schedule = config.lr_schedule
    if 'cosine' in schedule:
        schedule += ' T_max %d' % config.T_max
    if 'exponential' in schedule:
        schedule += ' %g' % config.lr_decay_rate
    if config.lr_warmup_epochs:
        schedule += ', warm-up %g epochs' % config.lr_warmup_epochs
    lr = '%g' % config.lr + (' at global batch %d' % config.lr_batch if config.lr_batch else '')
    return ('batch %d/device, %s lr %s (%s), momentum %g%s, wd %g on %s, label smoothing %g, '
            '%d epochs, %d px, %s' % (
                config.batch_size, config.optimizer, lr, schedule, config.momentum,
                ' nesterov' if config.use_nesterov else '', config.weight_decay,
                config.weight_decay_scope, config.label_smoothing, config.max_epochs,
                config.image_size, config.preprocessing)
            + (', weights averaged (decay %g) for evaluation' % config.moving_average_decay
               if config.moving_average_decay else ''))


def list_networks(networks, resolve):
    """Prints every network's size and recipe; resolve(network) gives its Config."""
    for network in networks:
        count, macs = network_size(network)
        print('%-14s %11s params %9.2fM mult-adds  %s' % (
            network.name, format(count, ','), macs / 1e6, describe_recipe(resolve(network))))

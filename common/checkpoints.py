"""One checkpoint: its step, whether it fits the model, why it failed to restore, and the warm
start for fine-tuning with shape checks and exclusions. Directories of them are
common/run_directory.py's."""
import re

import tensorflow as tf

from common.errors import UsageError
from common.logs import log

_STEP = re.compile(r'model\.ckpt-(\d+)$')
# A weight average's name in a checkpoint: the variable's name + this (tf.train's EMA).
AVERAGE_SUFFIX = '/ExponentialMovingAverage'


def step_of(prefix):
    """The global step of a checkpoint prefix: from its name, else from the checkpoint."""
    match = _STEP.search(prefix)
    if match:
        return int(match.group(1))
    try:
        return int(tf.train.load_variable(prefix, 'global_step'))
    except (tf.errors.OpError, ValueError):
        raise UsageError('cannot read global_step from checkpoint %s' % prefix) from None


RESTORE_FAILED = 'Restoring from checkpoint failed'


RESTORE_OPS = ('RestoreV2', 'Restore', 'RestoreSlice')


def restore_failure(error):
    """The telling line of a TensorFlow error raised while restoring a checkpoint (a missing
    key, another shape, a truncated or damaged file), or None for any other error."""
    lines = [line.strip() for line in error.message.splitlines() if line.strip()]
    if error.op is not None and error.op.type in RESTORE_OPS and lines:
        return lines[0]
    if not lines or not lines[0].startswith(RESTORE_FAILED):
        return None
    original = [line for line in lines[1:] if not line.startswith(('[[', 'Original error',
                                                                   'Errors may have'))]
    return original[0] if original else lines[0]


def check_fits(prefix, shapes, network):
    """Stops with the variable's name (and both shapes) when checkpoint `prefix` does not hold
    every variable of the model, {name: shape}: another network, num_classes or option."""
    try:
        stored = dict(tf.train.list_variables(prefix))
    except tf.errors.OpError as e:
        raise UsageError('cannot read checkpoint %s: %s' % (prefix, e.message.splitlines()[0]))
    for name, shape in sorted(shapes.items()):
        if name not in stored:
            raise UsageError('checkpoint %s does not fit --network=%s: it has no variable %s '
                             '(a checkpoint of another network or with other options?)'
                             % (prefix, network, name))
        if list(stored[name]) != list(shape):
            raise UsageError('checkpoint %s does not fit this model: variable %s has shape %s '
                             'there but %s here (another --num_classes or option?)'
                             % (prefix, name, list(stored[name]), list(shape)))


def check_moving_averages(prefix, moving_average_decay):
    """Evaluating with --moving_average_decay needs a checkpoint that holds the averages."""
    if moving_average_decay and not any(
            name.endswith(AVERAGE_SUFFIX) for name, _ in
            tf.train.list_variables(prefix)):
        raise UsageError('%s holds no moving averages of the weights; evaluate its raw weights '
                         'with --moving_average_decay=0' % prefix)


def _excluded(name, scopes):
    return any(name == s.rstrip('/') or name.startswith(s.rstrip('/') + '/') for s in scopes)


def warm_start(path, exclude, variables):
    """Initializes `variables` (the model's) from checkpoint `path`, except `exclude` scopes:
    batch-norm moving statistics come along; optimizer slots start fresh; the weight averages
    of restored variables already in the graph start from the restored values.
    """
    stored = dict(tf.train.list_variables(path))
    assignment, skipped = {}, []
    for var in variables:
        name = var.op.name
        if _excluded(name, exclude):
            skipped.append(name)
            continue
        if name not in stored:
            raise UsageError('--restore_path=%s has no variable %s (exclude its scope with '
                             '--restore_exclude, or give the network options it was trained '
                             'with)' % (path, name))
        if list(stored[name]) != var.shape.as_list():
            raise UsageError('--restore_path=%s: variable %s has shape %s in the checkpoint but '
                             '%s in the model (exclude its scope with --restore_exclude)'
                             % (path, name, list(stored[name]), var.shape.as_list()))
        assignment[name] = var
    tf.compat.v1.train.init_from_checkpoint(path, assignment)
    graph = {v.op.name: v for v in tf.compat.v1.global_variables()}
    shadows = {name: graph[name + AVERAGE_SUFFIX] for name in assignment
               if name + AVERAGE_SUFFIX in graph}
    if shadows:  # a checkpoint name maps to one variable a call
        tf.compat.v1.train.init_from_checkpoint(path, shadows)
    log.info('restored %d variables (weights and batch-norm statistics) from %s',
             len(assignment), path)
    log.info('not restored (--restore_exclude=%s): %s', ','.join(exclude),
             ', '.join(skipped) or 'none')
    if shadows:
        log.info('weight averages of the %d restored variables start from their restored '
                 'values', len(shadows))

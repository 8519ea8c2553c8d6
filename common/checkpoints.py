"""Checkpoint listing and repair, and warm start for fine-tuning with shape checks and
exclusions."""
import glob
import os
import re
import shutil
import time

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


def run_directory(path):
    """The directory of a checkpoint path: itself, or the folder of a model.ckpt-N prefix."""
    return path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))


def list_checkpoints(path):
    """[(step, prefix)] sorted by step, for a directory of model.ckpt-N or one prefix."""
    if os.path.exists(path + '.index'):
        return [(step_of(path), path)]
    if not os.path.isdir(path):
        raise UsageError('%s is neither a checkpoint directory nor a checkpoint prefix' % path)
    found = [p[:-len('.index')] for p in glob.glob(os.path.join(path, 'model.ckpt-*.index'))]
    if not found:
        raise UsageError('no model.ckpt-N checkpoints in %s' % path)
    return sorted((step_of(p), p) for p in found)


def _complete(prefix):
    """Whether a checkpoint's index and every data shard are present."""
    shards = glob.glob(prefix + '.data-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]')
    return (os.path.exists(prefix + '.index') and bool(shards)
            and len(shards) == int(shards[0][-5:]))


def remove_session_start(log_dir):
    """Removes model.ckpt-0 when it is a training directory's only checkpoint (rank 0, before
    repair): NPUEstimator's saver writes the initial weights when the session starts, so a
    run that failed before its first step leaves one. Resuming from it would skip this run's
    warm start, and evaluation would list weights nobody trained."""
    if not os.path.isdir(log_dir):
        return
    steps = {step_of(p[:-len('.index')])
             for p in glob.glob(os.path.join(log_dir, 'model.ckpt-*.index'))}
    if steps != {0}:
        return
    for path in glob.glob(os.path.join(log_dir, 'model.ckpt-0.*')) + [
            os.path.join(log_dir, 'checkpoint')]:
        if os.path.isfile(path):
            os.remove(path)
    log.info('removed model.ckpt-0 from %s: the initial weights of a run that stopped before '
             'its first step', log_dir)


def repair(log_dir):
    """Makes a run directory safe to resume from, before training starts (rank 0).

    Removes model.ckpt-N_temp_* left by a kill during a save, and rewrites the `checkpoint`
    index file when it is missing or names a checkpoint that is not there: the run then
    resumes from the newest complete checkpoint instead of starting at step 0 and
    overwriting the ones present.
    """
    if not os.path.isdir(log_dir):
        return
    for temp in sorted(glob.glob(os.path.join(log_dir, 'model.ckpt-*_temp_*'))):
        if os.path.isdir(temp):
            shutil.rmtree(temp)
        else:
            os.remove(temp)
        log.info('removed %s, left by an interrupted save', temp)
    found = glob.glob(os.path.join(log_dir, 'model.ckpt-*.index'))
    complete = sorted((step_of(p[:-len('.index')]), p[:-len('.index')]) for p in found
                      if _complete(p[:-len('.index')]))
    if not complete:
        if found:
            raise UsageError('%s holds only incomplete checkpoints (%s); move them away or '
                             'choose another --log_dir' % (log_dir, ', '.join(
                                 os.path.basename(p) for p in sorted(found))))
        return
    state = tf.train.get_checkpoint_state(log_dir)
    if state and _complete(state.model_checkpoint_path):
        return
    newest = complete[-1][1]
    tf.compat.v1.train.update_checkpoint_state(
        log_dir, newest, all_model_checkpoint_paths=[p for _, p in complete])
    log.info('the checkpoint index file of %s was missing or stale: rewritten, resuming from %s',
             log_dir, os.path.basename(newest))


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


def wait_for(model_dir, step, timeout=1800):
    """The prefix of model.ckpt-<step> once it is complete (rank 0 may still be writing it)."""
    prefix = os.path.join(model_dir, 'model.ckpt-%d' % step)
    deadline = time.time() + timeout
    while latest_step(model_dir) != step or not os.path.exists(prefix + '.index'):
        if time.time() > deadline:
            raise UsageError('waited %d s for %s, which rank 0 writes; is --log_dir shared by '
                             'all ranks?' % (timeout, prefix))
        time.sleep(1)
    return prefix


def latest_step(model_dir):
    """Global step of the newest checkpoint in model_dir, or None."""
    latest = tf.train.latest_checkpoint(model_dir) if os.path.isdir(model_dir) else None
    return step_of(latest) if latest else None


def resolve_restore_path(path):
    """A checkpoint prefix for --restore_path (a prefix, or a directory's newest checkpoint)."""
    if os.path.isdir(path):
        return list_checkpoints(path)[-1][1]
    if not os.path.exists(path + '.index'):
        raise UsageError('--restore_path=%s: no such checkpoint (give a model.ckpt-N prefix or '
                         'a directory of them)' % path)
    return path


def _excluded(name, scopes):
    return any(name == s.rstrip('/') or name.startswith(s.rstrip('/') + '/') for s in scopes)


def warm_start(path, exclude, variables, averages=None):
    """Initializes `variables` (the model's) from checkpoint `path`, except `exclude` scopes:
    batch-norm moving statistics come along; optimizer slots start fresh. averages: {model
    variable name: its weight average's variable}, which start from the restored values.
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
                             '--restore_exclude)' % (path, name))
        if list(stored[name]) != var.shape.as_list():
            raise UsageError('--restore_path=%s: variable %s has shape %s in the checkpoint but '
                             '%s in the model (exclude its scope with --restore_exclude)'
                             % (path, name, list(stored[name]), var.shape.as_list()))
        assignment[name] = var
    tf.compat.v1.train.init_from_checkpoint(path, assignment)
    shadows = {name: (averages or {})[name] for name in assignment if name in (averages or {})}
    if shadows:  # a checkpoint name maps to one variable a call
        tf.compat.v1.train.init_from_checkpoint(path, shadows)
    log.info('restored %d variables (weights and batch-norm statistics) from %s',
             len(assignment), path)
    log.info('not restored (--restore_exclude=%s): %s', ','.join(exclude),
             ', '.join(skipped) or 'none')

"""A run directory (--log_dir, or the directory --eval_dir names): the one module that walks
one. The lock a training holds on it; its checkpoints (listing, the latest step, waiting for
one, repair before a resume, NPUEstimator's session-start checkpoint); the record of its
evaluations (evaluations.jsonl); its hparams.json as the trainer reads it (files:
common/run_record.py).

The lock: an flock on <log_dir>/.lock, held for the process's life, so that a second training
on the same --log_dir stops at start instead of overwriting checkpoints, events and the log of
the first. The OS releases it when the process ends in any way (kill -9 included), so a lock
is never stale. The holder writes its PID and host into the file, for the second one's
message. Evaluation takes no lock: it reads a directory that a training may be writing.
"""
import contextlib
import errno
import fcntl
import glob
import json
import os
import shutil
import socket
import time

import tensorflow as tf

from common import run_record
from common.checkpoints import step_of
from common.errors import UsageError
from common.logs import UNWRITABLE, log

LOCK_FILE = '.lock'


@contextlib.contextmanager
def held(log_dir):
    """Holds the run directory's lock for the block, which gets None, or a warning to log when
    the file system takes no locks (Lustre, NFS without lockd: the run goes on unlocked);
    UsageError naming the holder if another process has it."""
    path = os.path.join(log_dir, LOCK_FILE)
    try:
        os.makedirs(log_dir, exist_ok=True)
        handle = open(path, 'a+')
    except OSError as e:
        raise UsageError(UNWRITABLE % (log_dir, e.strerror or e)) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                yield ('warning: %s cannot be locked (%s): nothing stops a second training in '
                       'this --log_dir' % (path, e.strerror or e))
                return
            handle.seek(0)
            holder = handle.read().strip() or 'another process'
            raise UsageError('%s is in use by a training run (%s); wait for it to end, or give '
                             'another --log_dir' % (log_dir, holder)) from None
        handle.seek(0)
        handle.truncate()
        handle.write('pid %d on %s' % (os.getpid(), socket.gethostname()))
        handle.flush()
        yield None


def of(path):
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


def resolve_restore_path(path):
    """A checkpoint prefix for --restore_path (a prefix, or a directory's newest checkpoint)."""
    if os.path.isdir(path):
        return list_checkpoints(path)[-1][1]
    if not os.path.exists(path + '.index'):
        raise UsageError('--restore_path=%s: no such checkpoint (give a model.ckpt-N prefix or '
                         'a directory of them)' % path)
    return path


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


def prepare_to_resume(log_dir, device):
    """Makes log_dir safe for a training to resume from (rank 0, before the others look): on
    Ascend a lone session-start model.ckpt-0 removed (not an imported directory's), leftovers
    of a killed save removed, the checkpoint index rewritten."""
    if device == 'npu' and run_record.kind_of(record(log_dir)) != 'imported':
        remove_session_start(log_dir)
    repair(log_dir)


def record(directory):
    """A run directory's hparams.json, {} when it has none or a damaged one (training rewrites
    it; evaluation and export say so)."""
    try:
        return run_record.read(directory) or {}
    except UsageError:
        return {}


def trained_on_ascend(directory):
    """Whether a run directory's record says it was trained on Ascend, whose NPUEstimator saver
    writes model.ckpt-0, the initial weights, when the session starts (an imported directory's
    model.ckpt-0 is its weights, and other backends never write one)."""
    saved = record(directory)
    return saved.get('device') == 'npu' and run_record.kind_of(saved) == 'training'


def checkpoints_to_evaluate(path):
    """[(step, prefix)] of a checkpoint directory or prefix; an Ascend training directory's
    model.ckpt-0, the initial weights its saver wrote before the first step, left out."""
    listed = list_checkpoints(path)
    if not (os.path.isdir(path) and trained_on_ascend(path)):
        return listed
    trained = [(step, prefix) for step, prefix in listed if step > 0]
    if len(trained) == len(listed):
        return listed
    if not trained:
        raise UsageError('%s holds only model.ckpt-0, the initial weights that the NPU saver '
                         'writes before the first step: no trained checkpoint to evaluate'
                         % path)
    log.info('model.ckpt-0 not evaluated: the initial weights, written before the first step')
    return trained


EVALUATIONS_FILE = 'evaluations.jsonl'


def record_evaluation(log_dir, r):
    """Appends a training run's table row to log_dir/evaluations.jsonl (rank 0)."""
    with open(os.path.join(log_dir, EVALUATIONS_FILE), 'a') as f:
        f.write(json.dumps(r, sort_keys=True) + '\n')


def evaluated_steps(log_dir):
    """Steps whose row a training run has written."""
    try:
        with open(os.path.join(log_dir, EVALUATIONS_FILE)) as f:
            return {json.loads(line)['step'] for line in f if line.strip()}
    except (OSError, ValueError, KeyError):
        return set()

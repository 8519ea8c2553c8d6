"""NPUEstimator's hooks (real: estimator/npu/npu_hook.py, r1.2.0:46-154, master:72-185).

NPUBroadcastGlobalVariablesHook builds, in begin(), one HcomBroadcast and one assign per variable
(broadcast_global_variables, r1.2.0:139-154 over tf.global_variables(); master:170-185 over
tf.trainable_variables()) and runs them after the session is created. r1.2.0 always does
(r1.2.0:67-73); master only when its RANK_SIZE (or CM_WORKER_SIZE) is above 1 (master:80-108).

NPUCheckpointSaverHook (r1.2.0:76-119, master:111-140) is TensorFlow's CheckpointSaverHook with an
extra global-step read in after_run: at session start TensorFlow's after_create_session writes
graph.pbtxt and model.ckpt-<step> into checkpoint_dir, before any step runs.

SetIterationsVarHook (r1.2.0:121-137, master:143-167) creates the int64 local resource variables
npu_runconfig/{iterations_per_loop,loop_cond,zero,one} (util.create_or_get_var) and loads
iterations_per_loop - 1 into the first.
"""
import tensorflow as tf

from npu_bridge import MASTER
from npu_bridge.estimator.npu import npu_common
from npu_bridge.hccl import hccl_ops


def broadcast_global_variables(root_rank, index=None):
    variables = (tf.compat.v1.trainable_variables() if MASTER
                 else tf.compat.v1.global_variables())
    ops = []
    for var in variables:
        outputs = hccl_ops.broadcast(tensor=[var], root_rank=root_rank)
        if outputs is not None:
            ops.append(outputs[0].op)
            ops.append(tf.compat.v1.assign(var, outputs[0]))
    return tf.group(ops)


class NPUBroadcastGlobalVariablesHook(tf.estimator.SessionRunHook):
    def __init__(self, root_rank=None, index=None):
        self._root_rank = root_rank
        self._index = index
        self._bcast_op = None
        rank_size = npu_common.get_ranksize() if MASTER else None
        self._rank_size = int(rank_size) if rank_size and rank_size.isdigit() else 1

    def begin(self):
        graph = tf.compat.v1.get_default_graph()
        if (not self._bcast_op or self._bcast_op.graph != graph) and (
                not MASTER or self._rank_size > 1):
            self._bcast_op = broadcast_global_variables(self._root_rank)

    def after_create_session(self, session, coord):
        if not MASTER or self._rank_size > 1:
            session.run(self._bcast_op)


class NPUCheckpointSaverHook(tf.estimator.CheckpointSaverHook):
    def __init__(self, checkpoint_dir, save_secs=None, save_steps=None, saver=None,
                 checkpoint_basename='model.ckpt', scaffold=None, listeners=None):
        super().__init__(checkpoint_dir, save_secs=save_secs, save_steps=save_steps,
                         saver=saver, checkpoint_basename=checkpoint_basename,
                         scaffold=scaffold, listeners=listeners)

    def after_run(self, run_context, run_values):
        run_context.session.run(self._global_step_tensor)
        super().after_run(run_context, run_values)


def _npu_runconfig_variable(name):
    """util.create_or_get_var (r1.2.0 util.py:139-159, master:173-194)."""
    collection = 'npu_runconfig_' + name
    found = tf.compat.v1.get_collection(collection)
    if len(found) > 1:
        raise RuntimeError('Multiple var in collection.')
    if found:
        return found[0]
    with tf.compat.v1.variable_scope('npu_runconfig', reuse=tf.compat.v1.AUTO_REUSE):
        return tf.compat.v1.get_variable(
            name, initializer=tf.compat.v1.zeros_initializer(), shape=[], dtype=tf.int64,
            trainable=False, collections=[collection, tf.compat.v1.GraphKeys.LOCAL_VARIABLES],
            use_resource=True)


class SetIterationsVarHook(tf.estimator.SessionRunHook):
    def __init__(self, iterations_per_loop=None):
        self._iterations_per_loop = iterations_per_loop

    def begin(self):
        self._variables = [_npu_runconfig_variable(n)
                           for n in ('iterations_per_loop', 'loop_cond', 'zero', 'one')]

    def after_create_session(self, session, coord):
        for var, value in zip(self._variables, (self._iterations_per_loop - 1, 0, 0, 1)):
            var.load(value, session)

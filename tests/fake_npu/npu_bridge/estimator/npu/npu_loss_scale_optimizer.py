"""NPULossScaleOptimizer (real: estimator/npu/npu_loss_scale_optimizer.py; r1.2.0:24-184 an
Optimizer, master:38-98 a tf.contrib.mixed_precision LossScaleOptimizer).

compute_gradients scales the loss by the manager's scale and unscales the gradients; it never
averages them over ranks, is_distributed or not. apply_gradients reads the device's overflow
flag after the gradients (r1.2.0 NpuGetFloatStatus/NpuClearFloatStatus, 140-156; master
NpuGetFloatStatusV2/NpuClearFloatStatusV2, 58-79), sums it over the ranks when is_distributed,
and skips the whole update, global step included, on overflow, while the manager still updates
(r1.2.0:158-173, master:83-92). Its name is always 'NPULossScaleOptimizermodule' (the real code
formats the type of a module).

Stand-in for the flag: the device computes the loss-scaled gradients in fp16 under mixed
precision, so the flag rises when a gradient times the loss scale leaves fp16's range (65504)
or is not finite. With the usual initial scale of 2^32 the first steps overflow, as on the
device.
"""
import tensorflow as tf

from npu_bridge import MASTER
from npu_bridge.hccl import hccl_ops

if MASTER:
    from tensorflow.contrib.mixed_precision.python import loss_scale_optimizer as lso

FLOAT_STATUS_OP = 'NpuGetFloatStatusV2' if MASTER else 'NpuGetFloatStatus'


FP16_MAX = 65504.0


def float_status_is_finite(grads, loss_scale, is_distributed):
    """The overflow check: true when no rank saw an overflow while computing `grads` (the
    unscaled gradients of a loss scaled by loss_scale)."""
    with tf.control_dependencies(grads):
        scale = tf.cast(loss_scale, tf.float32)
        fits = [tf.reduce_all(tf.math.is_finite(g)) & tf.less_equal(
            tf.reduce_max(tf.abs(tf.cast(g, tf.float32))) * scale, FP16_MAX) for g in grads]
        status = tf.cast(tf.logical_not(tf.reduce_all(fits)), tf.float32, name=FLOAT_STATUS_OP)
    if is_distributed:
        status = hccl_ops.allreduce([status], 'sum', fusion=0)
    return tf.reduce_all(tf.equal(status, 0.0), name='overflow_status_reduce_all')


def apply_unless_overflow(opt, manager, is_distributed, grads_and_vars, global_step, name):
    """opt's update (global step included) when no rank overflowed, and the manager's update
    in every step (NPUOptimizer does the same, npu_optimizer.py r1.2.0:163-186)."""
    grads_and_vars = list(grads_and_vars)
    finite = float_status_is_finite([g for g, _ in grads_and_vars if g is not None],
                                    manager.get_loss_scale(), is_distributed)
    update = tf.cond(finite, lambda: opt.apply_gradients(grads_and_vars, global_step, name),
                     tf.no_op)
    return tf.group(update, manager.update_loss_scale(finite))


class _Apply:
    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        return apply_unless_overflow(self._opt, self._loss_scale_manager, self._is_distributed,
                                     grads_and_vars, global_step, name)


if MASTER:
    class NPULossScaleOptimizer(_Apply, lso.LossScaleOptimizer):
        def __init__(self, opt, loss_scale_manager, is_distributed=False):
            self._opt = opt
            self._loss_scale_manager = loss_scale_manager
            self._is_distributed = is_distributed
            self._name = 'NPULossScaleOptimizermodule'
            super().__init__(opt=opt, loss_scale_manager=loss_scale_manager)

        def __getattr__(self, attr):
            return getattr(self._opt, attr)
else:
    class NPULossScaleOptimizer(_Apply, tf.compat.v1.train.Optimizer):
        def __init__(self, opt, loss_scale_manager, is_distributed=False):
            self._opt = opt
            self._loss_scale_manager = loss_scale_manager
            self._is_distributed = is_distributed
            super().__init__(name='NPULossScaleOptimizermodule', use_locking=False)

        def compute_gradients(self, loss, var_list=None, gate_gradients=1,
                              aggregation_method=None, colocate_gradients_with_ops=False,
                              grad_loss=None):
            scale = self._loss_scale_manager.get_loss_scale()
            grads_and_vars = self._opt.compute_gradients(
                loss * tf.cast(scale, loss.dtype.base_dtype), var_list=var_list,
                gate_gradients=gate_gradients, aggregation_method=aggregation_method,
                colocate_gradients_with_ops=colocate_gradients_with_ops, grad_loss=grad_loss)
            inverse = tf.math.reciprocal(scale)
            return [(g if g is None else g * tf.cast(inverse, g.dtype.base_dtype), v)
                    for g, v in grads_and_vars]

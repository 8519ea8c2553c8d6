"""NPUDistributedOptimizer, NPUOptimizer and allreduce (real: estimator/npu/npu_optimizer.py;
r1.2.0:26-285, master:44-383).

allreduce sums over the ranks (HcomAllReduce) and divides by NPUBasics("").size(), so it needs
JOB_ID like NPUEstimator: r1.2.0 allreduce(tensor, var, average=True) (var unused, 26-71);
master allreduce(tensor, average=True) (44-88). NPUDistributedOptimizer averages each gradient
with it in compute_gradients when RANK_SIZE (master: get_ranksize()) is above 1, and passes
apply_gradients through (r1.2.0:226-285, master:269-331; master's weight-update sharding reads
DEVICE_ID, 372-383). NPUOptimizer is its own class (r1.2.0:73-223, master:128-266): optional loss
scaling with the float-status overflow check (r1.2.0 NpuAlloc/Get/ClearFloatStatus, master the V2
ops), optional gradient allreduce (is_distributed), the overflow step skipped.
"""
import os

import tensorflow as tf

from npu_bridge import MASTER
from npu_bridge.estimator.npu import npu_common
from npu_bridge.estimator.npu.npu_loss_scale_optimizer import apply_unless_overflow
from npu_bridge.hccl import hccl_ops


def _allreduce(tensor, average):
    size = npu_common.NPUBasics('').size()
    if isinstance(tensor, tf.IndexedSlices):
        values = hccl_ops.allgather(tensor.values, size)
        indices = hccl_ops.allgather(tensor.indices, size)
        if average:
            values = tf.compat.v1.div(values, tf.cast(size, values.dtype))
        return tf.IndexedSlices(values, indices, dense_shape=tensor.dense_shape)
    summed = hccl_ops.allreduce(tensor, 'sum')
    return tf.compat.v1.div(summed, tf.cast(size, tensor.dtype)) if average else summed


if MASTER:
    def allreduce(tensor, average=True):
        return _allreduce(tensor, average)
else:
    def allreduce(tensor, var, average=True):
        del var
        return _allreduce(tensor, average)


def _rank_size():
    if MASTER:
        return int(npu_common.get_ranksize())
    rank_size = os.getenv('RANK_SIZE')
    return 1 if rank_size is None else int(rank_size)


def _averaged(grads_and_vars, name):
    averaged = []
    with tf.name_scope(name + '_Allreduce'):
        for grad, var in grads_and_vars:
            reduced = None if grad is None else (
                allreduce(grad, True) if MASTER else allreduce(grad, var, True))
            averaged.append((reduced, var))
    return averaged


class _Wrapper(tf.compat.v1.train.Optimizer):
    """The delegation both wrappers have (get_slot, get_slot_names, variables)."""

    def get_slot(self, *args, **kwargs):
        return self._optimizer.get_slot(*args, **kwargs)

    def get_slot_names(self, *args, **kwargs):
        return self._optimizer.get_slot_names(*args, **kwargs)

    def variables(self):
        return self._optimizer.variables()


class NPUDistributedOptimizer(_Wrapper):
    if MASTER:
        def __init__(self, optimizer, is_weight_update_sharding=False, name=None):
            if name is None:
                name = 'Distributed{}'.format(type(optimizer).__name__)
            super().__init__(name=name, use_locking=False)
            self._optimizer = optimizer
            self._is_weight_update_sharding = is_weight_update_sharding
    else:
        def __init__(self, optimizer, name=None):
            if name is None:
                name = 'Distributed{}'.format(type(optimizer).__name__)
            super().__init__(name=name, use_locking=False)
            self._optimizer = optimizer

    def compute_gradients(self, *args, **kwargs):
        gradients = self._optimizer.compute_gradients(*args, **kwargs)
        if _rank_size() <= 1:
            return gradients
        if getattr(self, '_is_weight_update_sharding', False):
            raise NotImplementedError('the fake has no weight-update sharding')
        return _averaged(gradients, self._name)

    def apply_gradients(self, *args, **kwargs):
        return self._optimizer.apply_gradients(*args, **kwargs)


class NPUOptimizer(_Wrapper):
    def __init__(self, opt, loss_scale_manager=None, is_distributed=False, is_loss_scale=False,
                 is_tailing_optimization=False, name=None):
        self._opt = self._optimizer = opt
        self._loss_scale_manager = loss_scale_manager
        self._is_distributed = is_distributed
        self._is_loss_scale = is_loss_scale
        self._is_tailing_optimization = is_tailing_optimization
        if is_loss_scale and loss_scale_manager is None:
            raise ValueError('is_loss_scale is True, loss_scale_manager can not be None')
        name = name or 'NPUOptimizer{}'.format(type(opt).__name__)
        super().__init__(name=name, use_locking=False)

    def compute_gradients(self, loss, var_list=None, gate_gradients=1, aggregation_method=None,
                          colocate_gradients_with_ops=False, grad_loss=None):
        loss_scale = None
        if self._is_loss_scale:
            loss_scale = self._loss_scale_manager.get_loss_scale()
            loss = loss * tf.cast(loss_scale, loss.dtype.base_dtype)
        grads_and_vars = self._opt.compute_gradients(
            loss, var_list=var_list, gate_gradients=gate_gradients,
            aggregation_method=aggregation_method,
            colocate_gradients_with_ops=colocate_gradients_with_ops, grad_loss=grad_loss)
        if self._is_distributed:
            grads_and_vars = _averaged(grads_and_vars, self._name)
        if loss_scale is None:
            return grads_and_vars
        inverse = tf.math.reciprocal(loss_scale)
        return [(g if g is None else g * tf.cast(inverse, g.dtype.base_dtype), v)
                for g, v in grads_and_vars]

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        if not self._is_loss_scale:
            return self._opt.apply_gradients(grads_and_vars, global_step, name)
        return apply_unless_overflow(self._opt, self._loss_scale_manager, self._is_distributed,
                                     grads_and_vars, global_step, name)

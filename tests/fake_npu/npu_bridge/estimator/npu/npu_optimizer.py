"""Fake NPUDistributedOptimizer, NPUOptimizer and allreduce (one rank)."""
import os

import tensorflow as tf


def _rank_size():
    return int(os.environ.get('RANK_SIZE', '1'))


def allreduce(tensor, var, average=True):
    if _rank_size() > 1:
        raise NotImplementedError('the fake npu_bridge has one rank')
    return tensor


class NPUDistributedOptimizer(tf.compat.v1.train.Optimizer):
    """Averages gradients over ranks in compute_gradients (a no-op with one rank)."""

    def __init__(self, optimizer, is_weight_update_sharding=False, name=None):
        super().__init__(use_locking=False, name=name or 'NPUDistributedOptimizer')
        if _rank_size() > 1 and 'DEVICE_ID' not in os.environ:
            raise ValueError('DEVICE_ID is required when RANK_SIZE > 1')
        self._optimizer = optimizer
        self._is_weight_update_sharding = is_weight_update_sharding

    def compute_gradients(self, *args, **kwargs):
        grads_and_vars = self._optimizer.compute_gradients(*args, **kwargs)
        return [(g if g is None else allreduce(g, v), v) for g, v in grads_and_vars]

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        return self._optimizer.apply_gradients(grads_and_vars, global_step, name)

    def get_slot(self, *args, **kwargs):
        return self._optimizer.get_slot(*args, **kwargs)

    def get_slot_names(self, *args, **kwargs):
        return self._optimizer.get_slot_names(*args, **kwargs)

    def variables(self):
        return self._optimizer.variables()


NPUOptimizer = NPUDistributedOptimizer

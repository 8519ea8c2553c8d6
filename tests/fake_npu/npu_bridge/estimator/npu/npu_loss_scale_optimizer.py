"""Fake NPULossScaleOptimizer: scales the loss, unscales gradients, skips overflowing steps."""
import tensorflow as tf


class NPULossScaleOptimizer(tf.compat.v1.train.Optimizer):
    def __init__(self, opt, loss_scale_manager, is_distributed=False):
        super().__init__(use_locking=False, name='NPULossScaleOptimizer')
        self._opt = opt
        self._loss_scale_manager = loss_scale_manager
        self._is_distributed = is_distributed

    def compute_gradients(self, loss, *args, **kwargs):
        scale = self._loss_scale_manager.get_loss_scale()
        grads_and_vars = self._opt.compute_gradients(loss * scale, *args, **kwargs)
        return [(g if g is None else g / scale, v) for g, v in grads_and_vars]

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        grads_and_vars = list(grads_and_vars)
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g))
                                for g, _ in grads_and_vars if g is not None])
        update = self._loss_scale_manager.update_loss_scale(finite)
        with tf.control_dependencies([update]):
            return tf.cond(finite,
                           lambda: tf.group(self._opt.apply_gradients(grads_and_vars,
                                                                      global_step, name)),
                           tf.no_op)

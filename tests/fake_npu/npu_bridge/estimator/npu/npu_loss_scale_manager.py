"""Fake FixedLossScaleManager and ExponentialUpdateLossScaleManager."""
import tensorflow as tf


class FixedLossScaleManager:
    def __init__(self, loss_scale):
        if loss_scale < 1:
            raise ValueError('loss_scale must be at least 1')
        self._loss_scale = float(loss_scale)

    def get_loss_scale(self):
        return tf.constant(self._loss_scale)

    def update_loss_scale(self, finite_grads):
        del finite_grads
        return tf.no_op()


class ExponentialUpdateLossScaleManager:
    def __init__(self, init_loss_scale, incr_every_n_steps, decr_every_n_nan_or_inf=2,
                 incr_ratio=2, decr_ratio=0.8):
        self._incr_every_n_steps = incr_every_n_steps
        self._decr_every_n_nan_or_inf = decr_every_n_nan_or_inf
        self._incr_ratio = float(incr_ratio)
        self._decr_ratio = float(decr_ratio)
        with tf.compat.v1.variable_scope('loss_scale', reuse=tf.compat.v1.AUTO_REUSE):
            self._scale = tf.compat.v1.get_variable(
                'scale', initializer=float(init_loss_scale), trainable=False)
            self._good = tf.compat.v1.get_variable('good_steps', initializer=0, trainable=False)
            self._bad = tf.compat.v1.get_variable('bad_steps', initializer=0, trainable=False)

    def get_loss_scale(self):
        return self._scale.read_value()

    def update_loss_scale(self, finite_grads):
        def grow():
            good = self._good + 1
            full = good >= self._incr_every_n_steps
            return tf.group(
                self._scale.assign(tf.where(full, self._scale * self._incr_ratio, self._scale)),
                self._good.assign(tf.where(full, 0, good)), self._bad.assign(0))

        def shrink():
            bad = self._bad + 1
            full = bad >= self._decr_every_n_nan_or_inf
            return tf.group(
                self._scale.assign(tf.where(full, tf.maximum(self._scale * self._decr_ratio,
                                                             1.0), self._scale)),
                self._bad.assign(tf.where(full, 0, bad)), self._good.assign(0))

        return tf.cond(finite_grads, grow, shrink)

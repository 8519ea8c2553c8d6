"""FixedLossScaleManager and ExponentialUpdateLossScaleManager (real:
estimator/npu/npu_loss_scale_manager.py; r1.2.0:73-200 its own copies, master:30-96 subclasses of
tf.contrib.mixed_precision's).

The exponential manager creates three top-level, non-trainable global variables with
tf.Variable: `loss_scale` (float32, the initial scale), `good_steps` and `bad_steps` (int32, 0)
(r1.2.0:140-148; master through the contrib base), and get_loss_scale() returns the variable.
Update (r1.2.0:159-200, master:67-96): after incr_every_n_steps finite steps in a row the scale
grows by incr_ratio while below 3.4e38 / incr_ratio; after decr_every_n_nan_or_inf overflowing
steps it becomes max(1, scale * decr_ratio); either resets both counters. A finite step leaves
bad_steps as it is; an overflowing one resets good_steps.
FixedLossScaleManager: a scale below 1 is `ValueError('loss scale must be at least 1.')`;
master adds enable_overflow_check=True (30-45).
"""
import tensorflow as tf

from npu_bridge import MASTER

if MASTER:
    from tensorflow.contrib.mixed_precision.python import loss_scale_manager as lsm_lib


def _update(manager, finite_grads):
    scale, good, bad = manager._loss_scale, manager._num_good_steps, manager._num_bad_steps

    def reset():
        return tf.group(tf.compat.v1.assign(good, 0), tf.compat.v1.assign(bad, 0))

    def finite():
        def grow():
            limit = 3.4e+38 / manager._incr_ratio
            new = tf.cond(tf.less(scale, limit), lambda: scale * manager._incr_ratio,
                          lambda: scale)
            return tf.group(tf.compat.v1.assign(scale, new), reset())

        return tf.cond(good + 1 >= manager._incr_every_n_steps, grow,
                       lambda: tf.compat.v1.assign_add(good, 1).op)

    def overflow():
        def shrink():
            new = tf.maximum(1., scale * manager._decr_ratio)
            return tf.group(tf.compat.v1.assign(scale, new), reset())

        return tf.cond(bad + 1 >= manager._decr_every_n_nan_or_inf, shrink,
                       lambda: tf.group(tf.compat.v1.assign_add(bad, 1),
                                        tf.compat.v1.assign(good, 0)))

    return tf.cond(finite_grads, finite, overflow)


if MASTER:
    class FixedLossScaleManager(lsm_lib.FixedLossScaleManager):
        def __init__(self, loss_scale, enable_overflow_check=True):
            if loss_scale < 1:
                raise ValueError('loss scale must be at least 1.')
            self._enable_overflow_check = enable_overflow_check
            super().__init__(loss_scale=loss_scale)

        def get_enable_overflow_check(self):
            return self._enable_overflow_check

    class ExponentialUpdateLossScaleManager(lsm_lib.ExponentialUpdateLossScaleManager):
        def __init__(self, init_loss_scale, incr_every_n_steps, decr_every_n_nan_or_inf=2,
                     incr_ratio=2, decr_ratio=0.8):
            super().__init__(init_loss_scale, incr_every_n_steps, decr_every_n_nan_or_inf,
                             incr_ratio, decr_ratio)

        def update_loss_scale(self, finite_grads):
            return _update(self, finite_grads)
else:
    class FixedLossScaleManager:
        def __init__(self, loss_scale):
            if loss_scale < 1:
                raise ValueError('loss scale must be at least 1.')
            self._loss_scale = tf.convert_to_tensor(loss_scale, dtype=tf.float32)

        def get_loss_scale(self):
            return self._loss_scale

        def update_loss_scale(self, finite_grads):
            del finite_grads
            return tf.no_op()

    class ExponentialUpdateLossScaleManager:
        def __init__(self, init_loss_scale, incr_every_n_steps, decr_every_n_nan_or_inf=2,
                     incr_ratio=2, decr_ratio=0.8):
            self._incr_every_n_steps = incr_every_n_steps
            self._decr_every_n_nan_or_inf = decr_every_n_nan_or_inf
            self._incr_ratio = incr_ratio
            self._decr_ratio = decr_ratio
            self._loss_scale = tf.compat.v1.Variable(
                tf.convert_to_tensor(init_loss_scale, tf.float32), name='loss_scale',
                dtype=tf.float32, trainable=False)
            self._num_good_steps = tf.compat.v1.Variable(0, name='good_steps', dtype=tf.int32,
                                                         trainable=False)
            self._num_bad_steps = tf.compat.v1.Variable(0, name='bad_steps', dtype=tf.int32,
                                                        trainable=False)

        def get_loss_scale(self):
            return self._loss_scale

        def update_loss_scale(self, finite_grads):
            return _update(self, finite_grads)

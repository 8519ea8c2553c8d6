"""The optimizer and its wrapping for the backend: gradient averaging and loss scaling.

Ascend: NPUDistributedOptimizer (HCCL allreduce) under NPULossScaleOptimizer when mixed
precision is on. Elsewhere hvd.DistributedOptimizer when there are several ranks; on GPU under
the automatic mixed precision graph rewrite with dynamic loss scaling; CPU is fp32.
"""
import tensorflow as tf

from common import backend

# Huawei's usual NPU settings: overflowing steps are skipped and the scale halves.
NPU_LOSS_SCALE = dict(init_loss_scale=2 ** 32, incr_every_n_steps=1000,
                      decr_every_n_nan_or_inf=2, decr_ratio=0.5)


# AmoebaNet's RMSProp (tensorflow/tpu): epsilon 1.0 inside the square root damps the
# normalization, so early steps behave like momentum SGD.
RMSPROP_DECAY = 0.9
RMSPROP_EPSILON = 1.0


def base_optimizer(learning_rate, params):
    if params['optimizer'] == 'momentum':
        return tf.compat.v1.train.MomentumOptimizer(
            learning_rate, params['momentum'], use_nesterov=params['use_nesterov'])
    if params['optimizer'] == 'rmsprop':
        return tf.compat.v1.train.RMSPropOptimizer(
            learning_rate, RMSPROP_DECAY, momentum=params['momentum'], epsilon=RMSPROP_EPSILON)
    raise ValueError('unknown optimizer %r; known: momentum, rmsprop' % params['optimizer'])


def build(learning_rate, params):
    """Returns the optimizer to call minimize() on, wrapped for params['device']."""
    opt = base_optimizer(learning_rate, params)
    if params['device'] == 'npu':
        from npu_bridge.estimator.npu.npu_optimizer import NPUDistributedOptimizer  # pylint: disable=import-outside-toplevel
        opt = NPUDistributedOptimizer(opt)
        if backend.mixed_precision(params):
            from npu_bridge.estimator.npu.npu_loss_scale_manager import ExponentialUpdateLossScaleManager  # pylint: disable=import-outside-toplevel
            from npu_bridge.estimator.npu.npu_loss_scale_optimizer import NPULossScaleOptimizer  # pylint: disable=import-outside-toplevel
            manager = ExponentialUpdateLossScaleManager(**NPU_LOSS_SCALE)
            opt = NPULossScaleOptimizer(opt, manager, is_distributed=params['rank_size'] > 1)
        return opt
    if backend.uses_horovod(params):
        import horovod.tensorflow as hvd  # pylint: disable=import-outside-toplevel
        opt = hvd.DistributedOptimizer(opt)  # averages gradients over the ranks
    if backend.mixed_precision(params):  # GPU; loss scaling outside the allreduce
        opt = tf.compat.v1.train.experimental.enable_mixed_precision_graph_rewrite(opt, 'dynamic')
    return opt

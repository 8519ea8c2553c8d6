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


def _momentum(learning_rate, config):
    return tf.compat.v1.train.MomentumOptimizer(learning_rate, config.momentum,
                                                use_nesterov=config.use_nesterov)


def _rmsprop(learning_rate, config):
    return tf.compat.v1.train.RMSPropOptimizer(learning_rate, config.rmsprop_decay,
                                               momentum=config.momentum,
                                               epsilon=config.rmsprop_epsilon)


def _adam(learning_rate, config):
    # TensorFlow's (and PyTorch's) defaults: beta1 0.9, beta2 0.999, epsilon 1e-8.
    del config
    return tf.compat.v1.train.AdamOptimizer(learning_rate)


OPTIMIZERS = {'momentum': _momentum, 'rmsprop': _rmsprop, 'adam': _adam}


def make_optimizer(learning_rate, config, runtime):
    """Returns the optimizer to call minimize() on, wrapped for the runtime's device."""
    opt = OPTIMIZERS[config.optimizer](learning_rate, config)
    mixed = backend.mixed_precision(runtime.device, config.precision_mode)
    if runtime.device == 'npu':
        from npu_bridge.estimator.npu.npu_optimizer import NPUDistributedOptimizer
        opt = NPUDistributedOptimizer(opt)
        if mixed:
            from npu_bridge.estimator.npu.npu_loss_scale_manager import (
                ExponentialUpdateLossScaleManager)
            from npu_bridge.estimator.npu.npu_loss_scale_optimizer import NPULossScaleOptimizer
            manager = ExponentialUpdateLossScaleManager(**NPU_LOSS_SCALE)
            opt = NPULossScaleOptimizer(opt, manager, is_distributed=runtime.rank_size > 1)
        return opt
    if backend.uses_horovod(runtime):
        import horovod.tensorflow as hvd
        opt = hvd.DistributedOptimizer(opt)  # averages gradients over the ranks
    if mixed:  # GPU; loss scaling outside the allreduce
        opt = tf.compat.v1.train.experimental.enable_mixed_precision_graph_rewrite(opt, 'dynamic')
    return opt

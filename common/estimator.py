"""The Estimator for the backend: NPUEstimator + NPURunConfig on Ascend, tf.estimator elsewhere.

Both get the same model_fn, params and checkpoint settings (model.ckpt-N, keep 5).
"""
import tensorflow as tf

KEEP_CHECKPOINT_MAX = 5


def build(model_fn, params):
    session_config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
    if params['device'] == 'gpu':
        session_config.gpu_options.allow_growth = True
    common = dict(model_dir=params['log_dir'], tf_random_seed=params['seed'],
                  save_checkpoints_steps=params['save_checkpoints_steps'],
                  session_config=session_config, keep_checkpoint_max=KEEP_CHECKPOINT_MAX,
                  log_step_count_steps=None)
    if params['device'] == 'npu':
        from npu_bridge.estimator.npu.npu_config import NPURunConfig  # pylint: disable=import-outside-toplevel
        from npu_bridge.estimator.npu.npu_estimator import NPUEstimator  # pylint: disable=import-outside-toplevel
        config = NPURunConfig(
            iterations_per_loop=params['iterations_per_loop'], save_summary_steps=0,
            enable_data_pre_proc=True, precision_mode=params['precision_mode'],
            hcom_parallel=True, **common)
        return NPUEstimator(model_fn=model_fn, model_dir=params['log_dir'], config=config,
                            params=params)
    config = tf.estimator.RunConfig(**common)
    return tf.estimator.Estimator(model_fn=model_fn, config=config, params=params)

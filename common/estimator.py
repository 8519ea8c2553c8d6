"""The Estimator for the backend: NPUEstimator + NPURunConfig on Ascend, tf.estimator elsewhere.

Both get the same model_fn, params and checkpoint settings (model.ckpt-N, keep 5).
"""
import os
import tempfile

import tensorflow as tf

KEEP_CHECKPOINT_MAX = 5


# Evaluation directories of ranks other than 0, removed when the process exits.
_SCRATCH = []


def _model_dir(params, for_evaluation):
    """log_dir, shared by all ranks. Ranks other than 0 evaluate (always an explicit checkpoint)
    with a private temporary model_dir, so that only rank 0 writes evaluation summaries."""
    if not for_evaluation or params['rank'] == 0:
        return params['log_dir']
    _SCRATCH.append(tempfile.TemporaryDirectory(prefix='zoo_eval_rank%d_' % params['rank']))
    return _SCRATCH[-1].name


def build(model_fn, params, for_evaluation=False):
    session_config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
    if params['device'] == 'gpu':
        session_config.gpu_options.allow_growth = True
        session_config.gpu_options.visible_device_list = str(params['local_rank'])
    if params['device'] == 'cpu' and params['local_size'] > 1:  # share the cores
        session_config.intra_op_parallelism_threads = max(
            1, (os.cpu_count() or 1) // params['local_size'])
    chief = params['rank'] == 0
    # All ranks share log_dir: only rank 0 writes checkpoints and summaries there.
    model_dir = _model_dir(params, for_evaluation)
    common = dict(model_dir=model_dir, tf_random_seed=params['seed'],
                  save_checkpoints_steps=params['save_checkpoints_steps'] if chief else None,
                  save_checkpoints_secs=None, session_config=session_config,
                  keep_checkpoint_max=KEEP_CHECKPOINT_MAX, log_step_count_steps=None)
    if not chief:
        common['save_summary_steps'] = None
    if params['device'] == 'npu':
        from npu_bridge.estimator.npu.npu_config import NPURunConfig  # pylint: disable=import-outside-toplevel
        from npu_bridge.estimator.npu.npu_estimator import NPUEstimator  # pylint: disable=import-outside-toplevel
        config = NPURunConfig(
            iterations_per_loop=params['iterations_per_loop'], enable_data_pre_proc=True,
            precision_mode=params['precision_mode'], hcom_parallel=True,
            **dict(common, save_summary_steps=0))
        return NPUEstimator(model_fn=model_fn, model_dir=model_dir, config=config, params=params)
    config = tf.estimator.RunConfig(**common)
    return tf.estimator.Estimator(model_fn=model_fn, config=config, params=params)

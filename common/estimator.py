"""The Estimator for the backend: NPUEstimator + NPURunConfig on Ascend, tf.estimator elsewhere.

Both get the same model_fn, params ({'config', 'runtime', 'warm_start'}, model_fn.py) and
checkpoint settings (model.ckpt-N, keep 5).
"""
import os
import tempfile

import tensorflow as tf

KEEP_CHECKPOINT_MAX = 5


# Evaluation directories of ranks other than 0, removed when the process exits.
_SCRATCH = []


def _model_dir(config, runtime, for_evaluation):
    """log_dir, shared by all ranks. Ranks other than 0 evaluate (always an explicit checkpoint)
    with a private temporary model_dir, so that only rank 0 writes evaluation summaries."""
    if not for_evaluation or runtime.rank == 0:
        return config.log_dir
    _SCRATCH.append(tempfile.TemporaryDirectory(prefix='zoo_eval_rank%d_' % runtime.rank))
    return _SCRATCH[-1].name


def session_config(runtime):
    """Soft placement; on GPU this process's local GPU; on CPU the cores shared by the local
    processes, one op at a time.

    One op at a time on CPU (inter-op threads 1, Intel's setting for oneDNN builds on one
    socket): each oneDNN op already uses every core, and two at once oversubscribe them
    (README, Speed: ShuffleNetV2 20.1 -> 25.6 images/s on 2 cores; DenseNet-121 6.1 -> 5.6).
    """
    config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
    if runtime.device == 'gpu':
        config.gpu_options.allow_growth = True
        config.gpu_options.visible_device_list = str(runtime.local_rank)
    if runtime.device == 'cpu':
        config.inter_op_parallelism_threads = 1
        config.intra_op_parallelism_threads = max(1, (os.cpu_count() or 1) // runtime.local_size)
    return config


def build(model_fn, config, runtime, for_evaluation=False, warm_start=None):
    """The Estimator for the runtime's device; warm_start: see model_fn.py."""
    chief = runtime.rank == 0
    # All ranks share log_dir: only rank 0 writes checkpoints and summaries there.
    model_dir = _model_dir(config, runtime, for_evaluation)
    params = dict(config=config, runtime=runtime, warm_start=warm_start)
    common = dict(model_dir=model_dir, tf_random_seed=config.seed,
                  save_checkpoints_steps=runtime.save_checkpoints_steps if chief else None,
                  save_checkpoints_secs=None, session_config=session_config(runtime),
                  keep_checkpoint_max=KEEP_CHECKPOINT_MAX, log_step_count_steps=None,
                  # No summary hook: the training log hook writes the scalars itself. The hook's
                  # extra fetch every 100 steps is another Session.run signature, and each new
                  # one costs a graph rewrite (oneDNN passes): 30 s for DenseNet-121.
                  save_summary_steps=None)
    if runtime.device == 'npu':
        from npu_bridge.estimator.npu.npu_config import NPURunConfig  # pylint: disable=import-outside-toplevel
        from npu_bridge.estimator.npu.npu_estimator import NPUEstimator  # pylint: disable=import-outside-toplevel
        run_config = NPURunConfig(
            iterations_per_loop=config.iterations_per_loop, enable_data_pre_proc=True,
            precision_mode=config.precision_mode, hcom_parallel=True,
            **dict(common, save_summary_steps=0))
        return NPUEstimator(model_fn=model_fn, model_dir=model_dir, config=run_config,
                            params=params)
    return tf.estimator.Estimator(model_fn=model_fn, config=tf.estimator.RunConfig(**common),
                                  params=params)

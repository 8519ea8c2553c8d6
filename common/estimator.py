"""The Estimator for the backend: NPUEstimator + NPURunConfig on Ascend, tf.estimator elsewhere.

Both get the same model_fn, params ({'config', 'runtime'}, model_fn.py) and
checkpoint settings (model.ckpt-N, keep 5).
"""
import inspect
import json
import os
import tempfile

import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from common.errors import UsageError

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
        # Grappler's memory optimizer swaps to host memory (GPU only) and estimates the peak
        # memory of every new Session.run signature to schedule AddN ops: on the CPU that
        # estimate took 1.4 s of the largest network's 21 s first step and changed nothing
        # measurable (README, Speed).
        config.graph_options.rewrite_options.memory_optimization = (
            rewriter_config_pb2.RewriterConfig.NO_MEM_OPT)
    return config


def make_estimator(model_fn, config, runtime, for_evaluation=False):
    """The Estimator for the runtime's device."""
    chief = runtime.rank == 0
    # All ranks share log_dir: only rank 0 writes checkpoints and summaries there.
    model_dir = _model_dir(config, runtime, for_evaluation)
    params = dict(config=config, runtime=runtime)
    common = dict(model_dir=model_dir, tf_random_seed=config.seed,
                  save_checkpoints_steps=runtime.save_checkpoints_steps if chief else None,
                  save_checkpoints_secs=None, session_config=session_config(runtime),
                  keep_checkpoint_max=KEEP_CHECKPOINT_MAX, log_step_count_steps=None,
                  # No summary hook: the training log hook writes the scalars itself. The hook's
                  # extra fetch every 100 steps is another Session.run signature, and each new
                  # one costs a graph rewrite (oneDNN passes): 30 s for DenseNet-121.
                  save_summary_steps=None)
    if runtime.device == 'npu':
        from npu_bridge.estimator.npu.npu_estimator import NPUEstimator
        return NPUEstimator(model_fn=model_fn, model_dir=model_dir,
                            config=npu_run_config(config, runtime, common), params=params)
    return tf.estimator.Estimator(model_fn=model_fn, config=tf.estimator.RunConfig(**common),
                                  params=params)


def npu_switch_paths(config, runtime):
    """{switch: directory} of the NPU's debugging outputs this run turns on, under log_dir
    unless given; one subdirectory per rank when several ranks write."""
    wanted = {'over_dump': (config.over_dump, config.over_dump_path, 'overflow_dump'),
              'data_dump_flag': (config.data_dump_flag, config.data_dump_path, 'data_dump'),
              'profiling': (config.profiling, config.profiling_dump_path, 'profiling'),
              'op_compiler_cache_dir': (True, config.op_compiler_cache_dir, 'op_compiler_cache')}
    paths = {}
    for switch, (on, path, default) in wanted.items():
        if on:
            path = os.path.abspath(path or os.path.join(config.log_dir, default))
            paths[switch] = (path if runtime.rank_size == 1
                             else os.path.join(path, 'rank_%d' % runtime.rank))
    return paths


def npu_run_config(config, runtime, common):
    """The NPURunConfig of a run: the Estimator settings, the device loop, the precision mode
    and the ModelZoo's switches (README, Debugging on Ascend). A switch this npu_bridge release
    does not take is refused; the operator-compile cache, on by default, is left out there."""
    from npu_bridge.estimator.npu.npu_config import DumpConfig, NPURunConfig, ProfilingConfig
    paths = npu_switch_paths(config, runtime)
    # "Never" is 0 here, not None: NPURunConfig turns None into every 100 steps, and the ranks
    # other than 0 would all save into the shared log_dir.
    kwargs = dict(common, save_checkpoints_steps=common['save_checkpoints_steps'] or 0,
                  save_summary_steps=0, iterations_per_loop=config.iterations_per_loop,
                  enable_data_pre_proc=True, precision_mode=config.precision_mode,
                  hcom_parallel=True)
    if config.over_dump and config.data_dump_flag:
        raise UsageError('--over_dump and --data_dump_flag both dump through one DumpConfig; '
                         'give one of them')
    if config.over_dump:
        kwargs['dump_config'] = DumpConfig(enable_dump_debug=True, dump_path=paths['over_dump'],
                                           dump_debug_mode='all')
    if config.data_dump_flag:
        kwargs['dump_config'] = DumpConfig(enable_dump=True, dump_path=paths['data_dump_flag'],
                                           dump_step=config.data_dump_step, dump_mode='all')
    if config.profiling:
        kwargs['profiling_config'] = ProfilingConfig(
            enable_profiling=True, profiling_options=json.dumps(
                {'output': paths['profiling'], 'training_trace': 'on', 'task_trace': 'on',
                 'fp_point': '', 'bp_point': '', 'aicpu': 'on'}))
    if config.op_select_implmode:
        kwargs['op_select_implmode'] = config.op_select_implmode
    accepted = inspect.signature(NPURunConfig.__init__).parameters
    cache = dict(op_compiler_cache_mode='enable',
                 op_compiler_cache_dir=paths['op_compiler_cache_dir'])
    if all(name in accepted for name in cache):
        kwargs.update(cache)
    elif config.op_compiler_cache_dir:
        raise UsageError('--op_compiler_cache_dir: this npu_bridge\'s NPURunConfig has no '
                         'operator-compile cache')
    for name in kwargs:
        if name not in accepted:
            raise UsageError('this npu_bridge\'s NPURunConfig does not take %s (needed for '
                             '--%s)' % (name, SWITCH_FLAGS.get(name, name)))
    for path in paths.values():
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise UsageError('cannot create %s: %s' % (path, e.strerror or e)) from None
    return NPURunConfig(**kwargs)


# NPURunConfig keyword -> the flag that asks for it, for the refusal above.
SWITCH_FLAGS = {'dump_config': 'over_dump or --data_dump_flag', 'profiling_config': 'profiling'}

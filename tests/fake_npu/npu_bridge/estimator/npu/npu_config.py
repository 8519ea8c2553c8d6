"""Fake NPURunConfig, ProfilingConfig, DumpConfig."""
import tensorflow as tf


class ProfilingConfig:
    def __init__(self, enable_profiling=False, profiling_options=None):
        self._enable_profiling = enable_profiling
        self._profiling_options = profiling_options


class DumpConfig:
    def __init__(self, enable_dump=False, dump_path=None, dump_step=None, dump_mode='output',
                 enable_dump_debug=False, dump_debug_mode='all'):
        self._enable_dump = enable_dump
        self._dump_path = dump_path
        self._dump_step = dump_step
        self._dump_mode = dump_mode
        self._enable_dump_debug = enable_dump_debug
        self._dump_debug_mode = dump_debug_mode


class NPURunConfig(tf.estimator.RunConfig):
    """Core keywords only; the NPU-specific ones are kept as the real class keeps them."""

    def __init__(self, iterations_per_loop=1, model_dir=None, tf_random_seed=None,
                 save_summary_steps=0, save_checkpoints_steps=None, save_checkpoints_secs=None,
                 session_config=None, keep_checkpoint_max=5,
                 keep_checkpoint_every_n_hours=10000, log_step_count_steps=100,
                 enable_data_pre_proc=True, precision_mode=None, hcom_parallel=False,
                 profiling_config=None, dump_config=None):
        self._iterations_per_loop = iterations_per_loop
        self._enable_data_pre_proc = enable_data_pre_proc
        self._precision_mode = precision_mode
        self._hcom_parallel = hcom_parallel
        self._profiling_config = profiling_config
        self._dump_config = dump_config
        super().__init__(model_dir=model_dir, tf_random_seed=tf_random_seed,
                         save_summary_steps=save_summary_steps,
                         save_checkpoints_steps=save_checkpoints_steps,
                         save_checkpoints_secs=save_checkpoints_secs,
                         session_config=session_config, keep_checkpoint_max=keep_checkpoint_max,
                         keep_checkpoint_every_n_hours=keep_checkpoint_every_n_hours,
                         log_step_count_steps=log_step_count_steps)

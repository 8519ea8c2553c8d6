"""NPURunConfig, ProfilingConfig, DumpConfig (real: estimator/npu/npu_config.py; r1.2.0:19-251,
master:35-393).

NPURunConfig takes exactly the release's keywords with its defaults (r1.2.0:22-65, 42 of them;
master:38-115, 76: hcom_parallel True, enable_exception_dump 2, op_debug_level and
variable_format_optimize None, aoe_mode instead of auto_tune_mode/mstune_mode), keeps each as the
real class does (public or with a leading underscore, r1.2.0:143-196, master:197-270), and checks
what the real one checks in Python (r1.2.0:128-185, master:181-229; a TF_CONFIG cluster needs a
ParameterServerStrategy and mix_compile_mode, r1.2.0:134-141, master:189-196). Neither release
checks precision_mode, op_select_implmode or op_compiler_cache_mode values in Python (the C++
does, at session creation). Both checkpoint settings None means every 100 steps (r1.2.0:147-148,
master:286-289).
"""
import inspect
import json
import os

import tensorflow as tf
from tensorflow.python.distribute.parameter_server_strategy import ParameterServerStrategy

from npu_bridge import MASTER

_COMMON_HEAD = (
    ('iterations_per_loop', 1), ('profiling_config', None), ('model_dir', None),
    ('tf_random_seed', None), ('save_summary_steps', 0), ('save_checkpoints_steps', None),
    ('save_checkpoints_secs', None), ('session_config', None), ('keep_checkpoint_max', 5),
    ('keep_checkpoint_every_n_hours', 10000), ('log_step_count_steps', 100),
    ('distribute', None), ('enable_data_pre_proc', True), ('precision_mode', None),
    ('enable_reduce_precision', False))
R1_2_0_KEYWORDS = _COMMON_HEAD + (
    ('variable_format_optimize', True), ('mix_compile_mode', False), ('hcom_parallel', False),
    ('graph_memory_max_size', None), ('variable_memory_max_size', None),
    ('auto_tune_mode', None), ('dump_config', None), ('stream_max_parallel_num', None),
    ('is_tailing_optimization', False), ('horovod_mode', False), ('graph_run_mode', 1),
    ('op_debug_level', 0), ('enable_scope_fusion_passes', None), ('enable_exception_dump', 0),
    ('op_select_implmode', None), ('optypelist_for_implmode', None),
    ('dynamic_input_config', None), ('mstune_mode', None), ('work_path', None),
    ('buffer_optimize', 'l2_optimize'), ('enable_small_channel', 0),
    ('fusion_switch_file', None), ('enable_compress_weight', False),
    ('compress_weight_conf', None), ('op_compiler_cache_mode', None),
    ('op_compiler_cache_dir', None), ('debug_dir', None))
MASTER_KEYWORDS = _COMMON_HEAD + (
    ('variable_format_optimize', None), ('mix_compile_mode', False), ('hcom_parallel', True),
    ('graph_memory_max_size', None), ('variable_memory_max_size', None), ('dump_config', None),
    ('stream_max_parallel_num', None), ('is_tailing_optimization', False),
    ('horovod_mode', False), ('graph_run_mode', 1), ('op_debug_level', None),
    ('enable_scope_fusion_passes', None), ('enable_exception_dump', 2),
    ('op_select_implmode', None), ('optypelist_for_implmode', None),
    ('dynamic_input_config', None), ('aoe_mode', None), ('work_path', None),
    ('buffer_optimize', 'l2_optimize'), ('enable_small_channel', 0),
    ('fusion_switch_file', None), ('enable_compress_weight', False),
    ('compress_weight_conf', None), ('op_compiler_cache_mode', None),
    ('op_compiler_cache_dir', None), ('debug_dir', None), ('hcom_multi_mode', False),
    ('dynamic_input', None), ('dynamic_graph_execute_mode', 'dynamic_execute'),
    ('dynamic_inputs_shape_range', None), ('train_distribute', None),
    ('eval_distribute', None), ('local_rank_id', None), ('local_device_list', None),
    ('session_device_id', None), ('distribute_config', None), ('modify_mixlist', None),
    ('op_precision_mode', None), ('device_type', 'default_device_type'), ('soc_config', None),
    ('hccl_timeout', None), ('op_wait_timeout', None), ('op_execute_timeout', None),
    ('HCCL_algorithm', None), ('customize_dtypes', None), ('op_debug_config', None),
    ('memory_config', None), ('experimental_config', None), ('topo_sorting_mode', None),
    ('aoe_config_file', None), ('insert_op_file', None), ('stream_sync_timeout', -1),
    ('event_sync_timeout', -1), ('external_weight', False), ('es_cluster_config', None),
    ('deterministic', 0), ('frozen_variable', False), ('variable_placement', 'Device'),
    ('jit_compile', 'auto'), ('precision_mode_v2', None), ('ac_parallel_enable', None))
KEYWORDS = MASTER_KEYWORDS if MASTER else R1_2_0_KEYWORDS
# Kept without a leading underscore (r1.2.0:143-196, master:197-270); every other keyword
# the release has is kept as _<name>. The RunConfig ones go to RunConfig.
_PUBLIC = ('iterations_per_loop', 'mix_compile_mode', 'enable_data_pre_proc',
           'is_tailing_optimization', 'horovod_mode', 'graph_run_mode', 'op_debug_level',
           'enable_scope_fusion_passes', 'enable_exception_dump') + (
    ('variable_format_optimize', 'topo_sorting_mode', 'aoe_config_file', 'insert_op_file',
     'stream_sync_timeout', 'event_sync_timeout', 'es_cluster_config') if MASTER else ())
_RUN_CONFIG = ('model_dir', 'tf_random_seed', 'save_summary_steps', 'save_checkpoints_steps',
               'save_checkpoints_secs', 'session_config', 'keep_checkpoint_max',
               'keep_checkpoint_every_n_hours', 'log_step_count_steps', 'distribute') + (
    ('train_distribute', 'eval_distribute') if MASTER else ())


def _check_positive_integer(value, name):
    """util.py r1.2.0:22-53, master:47-73."""
    if not isinstance(value, int):
        raise TypeError('%s must be int, got %s' % (name, type(value)))
    if value <= 0:
        raise ValueError('%s must be positive, got %s' % (name, value))


def _check_nonnegative_integer(value, name):
    if not isinstance(value, int):
        raise TypeError('%s must be int, got %s' % (name, type(value)))
    if value < 0:
        raise ValueError('%s must be nonnegative, got %s' % (name, value))


class NPURunConfig(tf.estimator.RunConfig):
    def __init__(self, *args, **kwargs):
        values = _SIGNATURE.bind(self, *args, **kwargs)
        values.apply_defaults()
        v = dict(values.arguments)
        del v['self']
        _check_positive_integer(v['iterations_per_loop'], 'iterations_per_loop')
        cluster = json.loads(os.environ.get('TF_CONFIG') or '{}').get('cluster', {})
        if bool(cluster) != isinstance(v['distribute'], ParameterServerStrategy):
            raise ValueError('"cluster" and "distribute" must all be set in ps mode')
        if cluster and v['mix_compile_mode'] is False:
            raise ValueError('"mix_compile_mode" can only be True with "cluster" is set')
        if not isinstance(v['mix_compile_mode'], bool):
            error = TypeError if MASTER else ValueError  # master:182-183, r1.2.0:129-130
            raise error('"mix_compile_mode" type must be bool')
        if v['mix_compile_mode'] is True and v['iterations_per_loop'] != 1:
            raise ValueError('"iterations_per_loop" must be 1 with "mix_compile_mode" is True')
        if v['save_checkpoints_secs'] is None and v['save_checkpoints_steps'] is None:
            v['save_checkpoints_steps'] = 100
        if v['dump_config'] is not None and not isinstance(v['dump_config'], DumpConfig):
            raise ValueError('`dump_config` must be provided with type `DumpConfig`')
        if not isinstance(v['horovod_mode'], bool):
            raise ValueError('"horovod_mode" type must be bool')
        _check_nonnegative_integer(v['graph_run_mode'], 'graph_run_mode')
        if v['graph_run_mode'] > 1:
            raise ValueError('"graph_run_mode" value must be 0 or 1')
        _check_nonnegative_integer(v['enable_exception_dump'], 'enable_exception_dump')
        for name, value in v.items():
            if name not in _RUN_CONFIG:
                setattr(self, name if name in _PUBLIC else '_' + name, value)
        run_config = {k: v[k] for k in _RUN_CONFIG if k != 'distribute'}
        super().__init__(**run_config)


_SIGNATURE = inspect.Signature(
    [inspect.Parameter('self', inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    + [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)
       for name, default in KEYWORDS])
NPURunConfig.__init__.__signature__ = _SIGNATURE


class ProfilingConfig:
    """r1.2.0:210-224, master:325-339: stored, not checked."""

    def __init__(self, enable_profiling=False, profiling_options=None):
        self._enable_profiling = enable_profiling
        self._profiling_options = profiling_options


class DumpConfig:
    """r1.2.0:226-251, master:363-393 (master adds dump_data, dump_layer, kept public): stored,
    not checked."""

    if MASTER:
        def __init__(self, enable_dump=False, dump_path=None, dump_step=None,
                     dump_mode='output', enable_dump_debug=False, dump_debug_mode='all',
                     dump_data='tensor', dump_layer=None):
            self._store(enable_dump, dump_path, dump_step, dump_mode, enable_dump_debug,
                        dump_debug_mode)
            self.dump_data = dump_data
            self.dump_layer = dump_layer
    else:
        def __init__(self, enable_dump=False, dump_path=None, dump_step=None,
                     dump_mode='output', enable_dump_debug=False, dump_debug_mode='all'):
            self._store(enable_dump, dump_path, dump_step, dump_mode, enable_dump_debug,
                        dump_debug_mode)

    def _store(self, enable_dump, dump_path, dump_step, dump_mode, enable_dump_debug,
               dump_debug_mode):
        self._enable_dump = enable_dump
        self._dump_path = dump_path
        self._dump_step = dump_step
        self._dump_mode = dump_mode
        self._enable_dump_debug = enable_dump_debug
        self._dump_debug_mode = dump_debug_mode

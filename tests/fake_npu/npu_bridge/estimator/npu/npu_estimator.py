"""NPUEstimator and NPUEstimatorSpec (real: estimator/npu/npu_estimator.py; r1.2.0:195-796,
master:215-875).

__init__ in the real order (r1.2.0:365-403, master:310-350): NPURunConfig required; the model_fn's
arguments checked; the session config given the `NpuOptimizer` custom optimizer, whose
parameter_map is built from NPURunConfig (_load_graph_optimizers; r1.2.0:676-754, master:705-835;
a caller's session_config is changed in place) and used by every mode; the job info loaded
(npu_common.NPUBasics): on master no JOB_ID is `ValueError('Load job info failed ...')`
(master:323-325), on r1.2.0 the result is ignored and the warm start below fails with
AttributeError on _NPUEstimator__job_info (r1.2.0:378, 388); the warm start is warm_start_from,
else the job info's LOCAL_CHECKPOINT_DIR, else the environment's RESTORE_FROM (r1.2.0:386-393,
master:333-340).

Training specs get, before their own hooks (r1.2.0:430-472, master:378-423): an
NPUBroadcastGlobalVariablesHook when RANK_SIZE (master: get_ranksize()) is a number above 1 and
not horovod_mode; an NPUCheckpointSaverHook when save_checkpoints_steps or _secs is set (master
passes saver=NPUSaver(max_to_keep=keep_checkpoint_max)); with iterations_per_loop > 1 a
SetIterationsVarHook and the train op regrouped as `IterationOp`. Evaluation and prediction
specs are returned as they are (no NPUEstimatorSpec host calls here).

Imitated, not mirrored: the device loop. The real train op runs iterations_per_loop steps per
Session.run; here each step is a Session.run, and the model's own training hooks are shown one
run per loop.
"""
import json
import os

import tensorflow as tf
from tensorflow.python.estimator import estimator as estimator_lib
from tensorflow.python.estimator import model_fn as model_fn_lib
from tensorflow.python.util import function_utils

from npu_bridge import MASTER
from npu_bridge.estimator.npu import npu_common
from npu_bridge.estimator.npu.npu_config import NPURunConfig
from npu_bridge.estimator.npu.npu_hook import (NPUBroadcastGlobalVariablesHook,
                                               NPUCheckpointSaverHook, SetIterationsVarHook)


class NPUEstimatorSpec(model_fn_lib.EstimatorSpec):
    """r1.2.0:195-330, master:215-273: an EstimatorSpec with host_call."""

    def __new__(cls, mode, predictions=None, loss=None, train_op=None, eval_metric_ops=None,
                export_outputs=None, training_chief_hooks=None, training_hooks=None,
                scaffold=None, evaluation_hooks=None, prediction_hooks=None, host_call=None):
        spec = super().__new__(cls, mode, predictions, loss, train_op, eval_metric_ops,
                               export_outputs, training_chief_hooks, training_hooks, scaffold,
                               evaluation_hooks, prediction_hooks)
        spec._host_call = host_call
        return spec


class _OncePerLoop(tf.estimator.SessionRunHook):
    """Shows a hook one Session.run per loop, as the real device loop does."""

    def __init__(self, hook, loop):
        self._hook, self._loop, self._runs, self._shown = hook, loop, 0, False

    def begin(self):
        self._hook.begin()

    def after_create_session(self, session, coord):
        self._hook.after_create_session(session, coord)

    def before_run(self, run_context):
        self._runs += 1
        self._shown = self._runs % self._loop == 0
        return self._hook.before_run(run_context) if self._shown else None

    def after_run(self, run_context, run_values):
        if self._shown:
            self._hook.after_run(run_context, run_values)

    def end(self, session):
        self._hook.end(session)


# parameter_map entries set directly from the config: (key, field, attribute, when), when is
# 'always' or 'set' (not None). r1.2.0:696-725; master:726-799.
_DIRECT_COMMON = (
    ('enable_data_pre_proc', 'b', 'enable_data_pre_proc', 'always'),
    ('mix_compile_mode', 'b', 'mix_compile_mode', 'always'),
    ('use_off_line', 'b', True, 'const'),
    ('iterations_per_loop', 'i', 'iterations_per_loop', 'always'),
    ('is_tailing_optimization', 'b', 'is_tailing_optimization', 'always'),
    ('min_group_size', 'b', 1, 'const'),
    ('hcom_parallel', 'b', '_hcom_parallel', 'always'),
    ('graph_memory_max_size', 'str', '_graph_memory_max_size', 'set'),
    ('variable_memory_max_size', 'str', '_variable_memory_max_size', 'set'),
    ('graph_run_mode', 'i', 'graph_run_mode', 'always'),
    ('op_debug_level', 'i', 'op_debug_level', 'set' if MASTER else 'always'),
    ('enable_scope_fusion_passes', 's', 'enable_scope_fusion_passes', 'set'),
    ('enable_exception_dump', 'i', 'enable_exception_dump', 'always'),
    ('buffer_optimize', 's', '_buffer_optimize', 'set'),
    ('enable_small_channel', 'i', '_enable_small_channel', 'always'),
    ('fusion_switch_file', 's', '_fusion_switch_file', 'set'),
    ('enable_compress_weight', 'b', '_enable_compress_weight', 'always'),
    ('compress_weight_conf', 's', '_compress_weight_conf', 'set'),
    ('op_compiler_cache_mode', 's', '_op_compiler_cache_mode', 'set'),
    ('op_compiler_cache_dir', 's', '_op_compiler_cache_dir', 'set'),
    ('debug_dir', 's', '_debug_dir', 'set'))
_DIRECT_MASTER = _DIRECT_COMMON + (
    ('deterministic', 'i', '_deterministic', 'always'),
    ('hcom_multi_mode', 'b', '_hcom_multi_mode', 'always'),
    ('dynamic_input', 'b', '_dynamic_input', 'set'),
    ('dynamic_graph_execute_mode', 's', '_dynamic_graph_execute_mode', 'set'),
    ('dynamic_inputs_shape_range', 's', '_dynamic_inputs_shape_range', 'set'),
    ('local_rank_id', 'i', '_local_rank_id', 'set'),
    ('local_device_list', 's', '_local_device_list', 'set'),
    ('device_type', 's', '_device_type', 'always'),
    ('soc_config', 's', '_soc_config', 'set'),
    ('hccl_timeout', 'i', '_hccl_timeout', 'set'),
    ('op_wait_timeout', 'i', '_op_wait_timeout', 'set'),
    ('op_execute_timeout', 'i', '_op_execute_timeout', 'set'),
    ('HCCL_algorithm', 's', '_HCCL_algorithm', 'set'),
    ('customize_dtypes', 's', '_customize_dtypes', 'set'),
    ('op_debug_config', 's', '_op_debug_config', 'set'),
    ('topo_sorting_mode', 'i', 'topo_sorting_mode', 'set'),
    ('insert_op_file', 's', 'insert_op_file', 'set'),
    ('es_cluster_config', 's', 'es_cluster_config', 'set'),
    ('jit_compile', 's', '_jit_compile', 'always'),
    ('stream_sync_timeout', 'i', 'stream_sync_timeout', 'always'),
    ('event_sync_timeout', 'i', 'event_sync_timeout', 'always'),
    ('external_weight', 'b', '_external_weight', 'always'),
    ('frozen_variable', 'b', '_frozen_variable', 'always'),
    ('variable_placement', 's', '_variable_placement', 'always'),
    ('session_device_id', 'i', '_session_device_id', 'set'),
    ('modify_mixlist', 's', '_modify_mixlist', 'set'),
    ('op_precision_mode', 's', '_op_precision_mode', 'set'))
# master drops 'memory' from the rewrite optimizers (r1.2.0:683-692, master:714-722).
_REWRITERS = ('pruning', 'function', 'constfold', 'shape', 'arithmetic', 'loop', 'dependency',
              'layout') + (() if MASTER else ('memory',)) + ('GradFusionOptimizer',)


def _put(parameter_map, key, field, value):
    entry = parameter_map[key]
    if field == 'b':
        entry.b = value
    elif field == 'i':
        entry.i = value
    elif field == 'str':
        entry.s = tf.compat.as_bytes(str(value))
    else:
        entry.s = tf.compat.as_bytes(value)


class NPUEstimator(estimator_lib.Estimator):
    def __init__(self, model_fn=None, model_dir=None, config=None, params=None,
                 job_start_file='', warm_start_from=None):
        if config is None or not isinstance(config, NPURunConfig):
            raise ValueError('`config` must be provided with type `NPUConfigs`')
        estimator_lib._verify_model_fn_args(model_fn, params)
        config = self._load_graph_optimizers(config)
        basic = npu_common.NPUBasics(job_start_file)
        if basic.jobinfo is not None:
            self.__job_info = basic.jobinfo
            self.__device_info = basic.jobinfo._device_info
        elif MASTER:
            raise ValueError('Load job info failed, please check whether `JOB_ID` is set in '
                             'environment variable')
        model_dir = self._check_model_dir(model_dir, config)
        model_function = self._augment_model_fn(model_fn, model_dir, config)
        if not warm_start_from:
            restore_from = self.__job_info._local_checkpoint_dir
            if restore_from is None or restore_from == '':
                restore_from = os.getenv('RESTORE_FROM')
        else:
            restore_from = warm_start_from
        check = estimator_lib.Estimator._assert_members_are_not_overridden
        # no_check_override (r1.2.0:39-48): subclasses may override Estimator's members
        estimator_lib.Estimator._assert_members_are_not_overridden = lambda _: None
        try:
            super().__init__(model_fn=model_function, model_dir=model_dir, config=config,
                             params=params or {}, warm_start_from=restore_from)
        finally:
            estimator_lib.Estimator._assert_members_are_not_overridden = check

    def _augment_model_fn(self, model_fn, model_dir, config):
        device_info = getattr(self, '_NPUEstimator__device_info', None)

        def _model_fn(features, labels, mode, params):
            given = dict(labels=labels, mode=mode, params=params, config=config)
            spec = model_fn(features=features, **{k: v for k, v in given.items()
                                                  if k in function_utils.fn_args(model_fn)})
            if mode != tf.estimator.ModeKeys.TRAIN:
                return spec
            if not isinstance(spec, model_fn_lib.EstimatorSpec):
                raise RuntimeError('estimator_spec used by NPU train must have type '
                                   '`NPUEstimatorSpec` or `EstimatorSpec`. Got %s' % type(spec))
            npu_hooks = []
            rank_size = npu_common.get_ranksize() if MASTER else os.getenv('RANK_SIZE')
            if rank_size is not None and rank_size.isdigit() and int(rank_size) > 1 and (
                    not config.horovod_mode):
                npu_hooks.append(NPUBroadcastGlobalVariablesHook(device_info._root_rank,
                                                                 device_info._index))
            if config.save_checkpoints_steps or config.save_checkpoints_secs:
                saver = {}
                if MASTER:
                    from npu_bridge.estimator.npu.npu_saver import NPUSaver
                    saver = dict(saver=NPUSaver(max_to_keep=config.keep_checkpoint_max))
                npu_hooks.append(NPUCheckpointSaverHook(
                    checkpoint_dir=model_dir, save_secs=config.save_checkpoints_secs,
                    save_steps=config.save_checkpoints_steps, **saver))
            loop = config.iterations_per_loop
            own = list(spec.training_hooks or [])
            if loop > 1:
                npu_hooks.append(SetIterationsVarHook(loop))
                spec = spec._replace(train_op=tf.group(spec.train_op, name='IterationOp'))
                own = [_OncePerLoop(h, loop) for h in own]
            return spec._replace(training_hooks=tuple(npu_hooks + own))

        return _model_fn

    @staticmethod
    def _check_model_dir(model_dir, config):
        """r1.2.0:769-796, master:849-875 (no temporary directory here: the zoo gives one)."""
        if model_dir is not None and config.model_dir is not None and (
                model_dir != config.model_dir):
            raise ValueError('model_dir are set both in NPUEstimator and NPURunConfig, but with '
                             "different values. In constructor: '{}', in NPURunConfig: '{}' "
                             .format(model_dir, config.model_dir))
        model_dir = model_dir or config.model_dir
        if model_dir is None:
            raise NotImplementedError('the fake needs a model_dir')
        return model_dir

    @staticmethod
    def _load_graph_optimizers(config):
        if config.session_config is None:
            config = config.replace(session_config=tf.compat.v1.ConfigProto())
        rewrite = config.session_config.graph_options.rewrite_options
        rewrite.optimizers.extend(_REWRITERS)
        custom_op = rewrite.custom_optimizers.add()
        custom_op.name = 'NpuOptimizer'
        parameters = custom_op.parameter_map
        for key, field, source, when in (_DIRECT_MASTER if MASTER else _DIRECT_COMMON):
            value = source if when == 'const' else getattr(config, source)
            if when != 'set' or value is not None:
                _put(parameters, key, field, value)
        _load_profiling(config, parameters)
        _load_precision(config, parameters)
        _load_dump(config, parameters)
        for key in ('stream_max_parallel_num',) + (('ac_parallel_enable',) if MASTER else (
                'auto_tune_mode',)):
            if getattr(config, '_' + key) is not None:
                _put(parameters, key, 's', getattr(config, '_' + key))
        _load_ps_mode(parameters)
        for key in ('op_select_implmode', 'optypelist_for_implmode'):
            if getattr(config, '_' + key) is not None:
                _put(parameters, key, 's', getattr(config, '_' + key))
        if MASTER:
            if config._aoe_mode is not None:
                _put(parameters, 'aoe_mode', 's', config._aoe_mode)
                _put(parameters, 'work_path', 's', config._work_path or './')
            if config._experimental_config is None:
                _put(parameters, 'experimental_logical_device_cluster_deploy_mode', 's', 'LB')
        elif config._mstune_mode is not None:
            if config._work_path is None:
                raise ValueError('work_path must be set when use mstune_mode')
            _put(parameters, 'mstune_mode', 's', config._mstune_mode)
            _put(parameters, 'work_path', 's', config._work_path)
        return config


def _load_profiling(config, parameters):
    """r1.2.0:533-545: options required when enabled; master:497-509: None becomes ''."""
    profiling = config._profiling_config
    if profiling is None:
        return
    _put(parameters, 'profiling_mode', 'b', profiling._enable_profiling)
    if profiling._enable_profiling:
        if profiling._profiling_options is None:
            if not MASTER:
                raise ValueError('profiling_options must be set when use profiling')
            profiling._profiling_options = ''
        _put(parameters, 'profiling_options', 's', profiling._profiling_options)


def _load_precision(config, parameters):
    """r1.2.0:547-561: always set, by default allow_fp32_to_fp16 (graph_run_mode 1) or
    force_fp16; master:531-542: only when given, and precision_mode_v2 beside it."""
    if config._precision_mode is not None:
        _put(parameters, 'precision_mode', 's', config._precision_mode)
    elif not MASTER:
        _put(parameters, 'precision_mode', 's',
             'allow_fp32_to_fp16' if config.graph_run_mode else 'force_fp16')
    if MASTER and config._precision_mode_v2 is not None:
        _put(parameters, 'precision_mode_v2', 's', config._precision_mode_v2)
    _put(parameters, 'enable_reduce_precision', 'b', config._enable_reduce_precision)
    optimize = config.variable_format_optimize if MASTER else config._variable_format_optimize
    if not MASTER or optimize is not None:
        _put(parameters, 'variable_format_optimize', 'b', optimize)


def _load_dump(config, parameters):
    """r1.2.0:582-606, master:553-581; dump_debug_mode is written when dump_mode is set (the
    real condition)."""
    dump = config._dump_config
    if dump is None:
        _put(parameters, 'enable_dump', 'b', False)
        _put(parameters, 'enable_dump_debug', 'b', False)
        return
    _put(parameters, 'enable_dump', 'b', dump._enable_dump)
    _put(parameters, 'enable_dump_debug', 'b', dump._enable_dump_debug)
    for key in ('dump_path', 'dump_step', 'dump_mode'):
        if getattr(dump, '_' + key) is not None:
            _put(parameters, key, 's', getattr(dump, '_' + key))
    if dump._dump_mode is not None:
        _put(parameters, 'dump_debug_mode', 's', dump._dump_debug_mode)
    if MASTER:
        for key in ('dump_data', 'dump_layer'):
            if getattr(dump, key) is not None:
                _put(parameters, key, 's', getattr(dump, key))


def _load_ps_mode(parameters):
    """r1.2.0:617-635, master:643-660: job and task index from TF_CONFIG, else localhost/0."""
    task = json.loads(os.environ.get('TF_CONFIG') or '{}').get('task', {})
    if task.get('type'):
        _put(parameters, 'job', 's', task['type'])
        _put(parameters, 'task_index', 'i', int(task.get('index', 0)))
    else:
        _put(parameters, 'job', 's', 'localhost')
        _put(parameters, 'task_index', 'i', 0)

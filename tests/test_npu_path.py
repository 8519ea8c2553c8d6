"""The Ascend path through the npu_bridge fake (tests/fake_npu), for both releases it imitates
(r1.2.0 and master), and the GPU wiring.

Only this module puts the fake on sys.path, for its own tests (the fixture below): elsewhere
`--device=auto` must not find an NPU.
"""
import importlib
import inspect
import json
import os
import sys
import types

import pytest
import tensorflow as tf

import official
from common import (backend, estimator, logs, optimizer, run_directory, runtime, trainer)
from common.errors import UsageError
from conftest import (FAKE_NPU, NPU_JOB_VARIABLES, TINY, checkpoint_steps,
                      make_config, run_train, table_rows, train_lines)

RELEASES = ('r1.2.0', 'master')
CONFIG = make_config(precision_mode='allow_mix_precision', iterations_per_loop=100,
                     log_dir='/tmp/unused', save_checkpoints_steps=1000)
NPU = runtime.fixed(CONFIG, device='npu', save_checkpoints_steps=1000)
NPU_MODULES = ('npu_common', 'npu_config', 'npu_estimator', 'npu_hook', 'npu_optimizer',
               'npu_loss_scale_manager', 'npu_loss_scale_optimizer')


def _forget_npu_bridge():
    for name in [m for m in sys.modules if m.split('.')[0] == 'npu_bridge']:
        del sys.modules[name]


@pytest.fixture(scope='module', params=RELEASES)
def npu(request):
    """The fake's modules as the release request.param has them, importable while this
    module's tests of that release run."""
    os.environ['FAKE_NPU_RELEASE'] = request.param
    sys.path.insert(0, FAKE_NPU)
    try:
        modules = {name: importlib.import_module('npu_bridge.estimator.npu.' + name)
                   for name in NPU_MODULES}
        modules['hccl_ops'] = importlib.import_module('npu_bridge.hccl.hccl_ops')
        yield types.SimpleNamespace(release=request.param, master=request.param == 'master',
                                    **modules)
    finally:
        sys.path.remove(FAKE_NPU)
        del os.environ['FAKE_NPU_RELEASE']
        _forget_npu_bridge()


@pytest.fixture
def job(npu, monkeypatch):
    """A clean job environment (restored afterwards, whatever the zoo set), and NPUBasics'
    cached job info forgotten (a process-wide singleton in the real package: the first
    NPUEstimator fixes it)."""
    for name in NPU_JOB_VARIABLES:
        monkeypatch.setenv(name, '')  # registers the original value for restoring
        monkeypatch.delenv(name)
    npu.npu_common.NPUBasics._NPUBasics__instance = None
    yield monkeypatch
    npu.npu_common.NPUBasics._NPUBasics__instance = None


def _no_model(features, labels, mode, params):
    del features, labels, mode, params


def _parameters(function):
    return inspect.signature(function).parameters


def test_fake_has_each_releases_signatures(npu):
    """What the zoo relies on, as each release's sources have it (tests/fake_npu docstrings)."""
    run_config = _parameters(npu.npu_config.NPURunConfig.__init__)
    assert run_config['hcom_parallel'].default is npu.master
    assert run_config['save_summary_steps'].default == 0
    assert run_config['enable_exception_dump'].default == (2 if npu.master else 0)
    for name in ('profiling_config', 'dump_config', 'op_select_implmode', 'precision_mode',
                 'op_compiler_cache_mode', 'op_compiler_cache_dir', 'enable_data_pre_proc'):
        assert name in run_config
    assert ('aoe_mode' in run_config, 'auto_tune_mode' in run_config) == (npu.master,
                                                                          not npu.master)
    assert len(run_config) - 1 == (76 if npu.master else 42)
    with pytest.raises(TypeError):
        npu.npu_config.NPURunConfig(no_such_keyword=1)
    assert list(_parameters(npu.npu_estimator.NPUEstimator.__init__)) == [
        'self', 'model_fn', 'model_dir', 'config', 'params', 'job_start_file', 'warm_start_from']
    assert list(_parameters(npu.npu_optimizer.allreduce)) == (
        ['tensor', 'average'] if npu.master else ['tensor', 'var', 'average'])
    assert list(_parameters(npu.npu_optimizer.NPUDistributedOptimizer.__init__)) == (
        ['self', 'optimizer'] + (['is_weight_update_sharding'] if npu.master else []) + ['name'])
    assert list(_parameters(npu.npu_optimizer.NPUOptimizer.__init__)) == [
        'self', 'opt', 'loss_scale_manager', 'is_distributed', 'is_loss_scale',
        'is_tailing_optimization', 'name']
    broadcast = _parameters(npu.hccl_ops.broadcast)
    assert (broadcast['fusion'].default, broadcast['fusion_id'].default) == (
        (2, 0) if npu.master else (0, -1))
    assert ('enable_overflow_check' in _parameters(
        npu.npu_loss_scale_manager.FixedLossScaleManager.__init__)) is npu.master
    assert list(_parameters(npu.npu_config.DumpConfig.__init__))[1:7] == [
        'enable_dump', 'dump_path', 'dump_step', 'dump_mode', 'enable_dump_debug',
        'dump_debug_mode']


def test_npu_estimator_needs_the_job_environment_the_zoo_sets(npu, job, tmp_path):
    """Without JOB_ID the real NPUEstimator stops (master: ValueError; r1.2.0: AttributeError
    on its job info); r1.2.0 also needs RANK_SIZE. The zoo sets both on one device."""
    run_config = dict(model_dir=str(tmp_path))
    error = ValueError if npu.master else AttributeError
    with pytest.raises(error, match='JOB_ID' if npu.master else '_NPUEstimator__job_info'):
        npu.npu_estimator.NPUEstimator(_no_model, config=npu.npu_config.NPURunConfig(
            **run_config))
    if not npu.master:
        job.setenv('JOB_ID', '1')
        npu.npu_common.NPUBasics._NPUBasics__instance = None
        with pytest.raises(AttributeError, match='isdigit'):
            npu.npu_estimator.NPUEstimator(_no_model, config=npu.npu_config.NPURunConfig(
                **run_config))
        job.delenv('JOB_ID')
    # The failed load is cached by the singleton, as in the real package: the zoo sets the
    # environment before its first NPUEstimator.
    npu.npu_common.NPUBasics._NPUBasics__instance = None
    assert backend.set_npu_job_environment(NPU) == {'JOB_ID': '10087', 'RANK_SIZE': '1',
                                                    'RANK_ID': '0'}
    assert backend.set_npu_job_environment(NPU) == {}  # never overrides what is set
    classifier = estimator.make_estimator(_no_model, make_config(log_dir=str(tmp_path)), NPU)
    assert isinstance(classifier, npu.npu_estimator.NPUEstimator)


def _npu_parameters(classifier):
    """The NpuOptimizer parameter_map NPUEstimator built from the NPURunConfig."""
    rewrite = classifier.config.session_config.graph_options.rewrite_options
    [custom] = [c for c in rewrite.custom_optimizers if c.name == 'NpuOptimizer']
    return custom.parameter_map


def test_switches_reach_the_npu_optimizer_parameter_map(npu, job, tmp_path):
    job.setenv('JOB_ID', '1')
    job.setenv('RANK_SIZE', '1')
    log_dir = str(tmp_path / 'run')
    cfg = make_config(log_dir=log_dir, over_dump=True, profiling=True,
                      op_select_implmode='high_precision', precision_mode='must_keep_origin_dtype',
                      iterations_per_loop=10)
    parameters = _npu_parameters(estimator.make_estimator(_no_model, cfg, NPU))
    assert parameters['enable_dump_debug'].b and not parameters['enable_dump'].b
    assert parameters['dump_path'].s.decode() == os.path.join(log_dir, 'overflow_dump')
    assert parameters['dump_debug_mode'].s == b'all'
    assert parameters['profiling_mode'].b
    options = json.loads(parameters['profiling_options'].s)
    assert options['output'] == os.path.join(log_dir, 'profiling')
    assert options['task_trace'] == 'on' and options['training_trace'] == 'on'
    assert parameters['op_select_implmode'].s == b'high_precision'
    assert parameters['precision_mode'].s == b'must_keep_origin_dtype'
    assert parameters['op_compiler_cache_mode'].s == b'enable'
    assert parameters['op_compiler_cache_dir'].s.decode() == os.path.join(
        log_dir, 'op_compiler_cache')
    assert parameters['iterations_per_loop'].i == 10 and parameters['hcom_parallel'].b
    for name in ('overflow_dump', 'profiling', 'op_compiler_cache'):
        assert os.path.isdir(os.path.join(log_dir, name))

    dump_dir = str(tmp_path / 'dump')
    cfg = make_config(log_dir=log_dir, data_dump_flag=True, data_dump_step='0|5|10-12',
                      data_dump_path=dump_dir, op_compiler_cache_dir=str(tmp_path / 'cache'))
    parameters = _npu_parameters(estimator.make_estimator(_no_model, cfg, NPU._replace(rank=1,
                                                                              rank_size=2)))
    assert parameters['enable_dump'].b and not parameters['enable_dump_debug'].b
    assert parameters['dump_path'].s.decode() == os.path.join(dump_dir, 'rank_1')
    assert (parameters['dump_step'].s, parameters['dump_mode'].s) == (b'0|5|10-12', b'all')
    assert parameters['op_compiler_cache_dir'].s.decode() == str(tmp_path / 'cache' / 'rank_1')
    assert 'profiling_mode' not in parameters and 'op_select_implmode' not in parameters
    with pytest.raises(UsageError, match='give one of them'):
        estimator.make_estimator(_no_model, make_config(log_dir=log_dir, data_dump_flag=True,
                                               over_dump=True), NPU)
    for step in ('5,6', '10-5', '|'.join(['1'] * 101)):
        with pytest.raises(UsageError, match='--data_dump_step=.* is not a list of at most 100'):
            make_config(data_dump_step=step)


def test_a_switch_this_release_lacks_is_refused(npu, job, tmp_path):
    """An older npu_bridge without op_select_implmode or the compile cache: the asked-for
    switch is one error; the default cache is left out."""
    job.setenv('JOB_ID', '1')
    job.setenv('RANK_SIZE', '1')
    init = npu.npu_config.NPURunConfig.__init__
    older = inspect.signature(init).replace(parameters=[
        p for name, p in _parameters(init).items()
        if name not in ('op_select_implmode', 'op_compiler_cache_mode', 'op_compiler_cache_dir')])
    job.setattr(init, '__signature__', older)
    log_dir = str(tmp_path)
    parameters = _npu_parameters(estimator.make_estimator(_no_model, make_config(log_dir=log_dir),
                                                          NPU))
    assert 'op_compiler_cache_mode' not in parameters
    with pytest.raises(UsageError, match='does not take op_select_implmode'):
        estimator.make_estimator(_no_model, make_config(
            log_dir=log_dir, op_select_implmode='high_precision'), NPU)
    with pytest.raises(UsageError, match='--op_compiler_cache_dir: this npu_bridge'):
        estimator.make_estimator(_no_model, make_config(log_dir=log_dir,
                                                        op_compiler_cache_dir=log_dir), NPU)


def test_npu_run_config_gets_precision_loop_and_checkpoints(npu, job, tmp_path):
    job.setenv('JOB_ID', '1')
    job.setenv('RANK_SIZE', '1')
    cfg = make_config(precision_mode='allow_mix_precision', iterations_per_loop=100,
                      log_dir=str(tmp_path))
    classifier = estimator.make_estimator(_no_model, cfg, NPU)
    assert isinstance(classifier.config, npu.npu_config.NPURunConfig)
    parameters = _npu_parameters(classifier)
    assert parameters['precision_mode'].s == b'allow_mix_precision'
    assert parameters['iterations_per_loop'].i == 100
    assert parameters['enable_data_pre_proc'].b and parameters['hcom_parallel'].b
    assert classifier.config.keep_checkpoint_max == 5
    assert classifier.config.save_checkpoints_steps == 1000
    # Other ranks save nothing: NPURunConfig would turn None into every 100 steps.
    rank3 = NPU._replace(rank=3, rank_size=8)
    assert estimator.make_estimator(_no_model, cfg, rank3).config.save_checkpoints_steps == 0


@pytest.mark.parametrize('precision_mode, loss_scaled', [
    ('allow_mix_precision', True), ('force_fp16', True), ('force_fp32', False)])
def test_npu_optimizer_is_distributed_and_loss_scaled(precision_mode, loss_scaled, npu, job):
    with tf.Graph().as_default():
        opt = optimizer.make_optimizer(0.1, make_config(precision_mode=precision_mode), NPU)
        if loss_scaled:
            assert isinstance(opt, npu.npu_loss_scale_optimizer.NPULossScaleOptimizer)
            assert isinstance(opt._loss_scale_manager,
                              npu.npu_loss_scale_manager.ExponentialUpdateLossScaleManager)
            assert sorted(v.op.name for v in tf.compat.v1.global_variables()) == [
                'bad_steps', 'good_steps', 'loss_scale']
            opt = opt._opt
        assert isinstance(opt, npu.npu_optimizer.NPUDistributedOptimizer)
        inner = opt._optimizer
        assert isinstance(inner, tf.compat.v1.train.MomentumOptimizer)
        assert inner._use_nesterov


@pytest.mark.parametrize('wrapper', ['NPULossScaleOptimizer', 'NPUOptimizer'])
def test_an_overflowing_step_is_skipped_global_step_included(wrapper, npu, job):
    """The real loss-scale optimizers skip the whole update on overflow, the global step's
    increment with it, and the manager counts the step (decr after 2: scale halves)."""
    job.setenv('JOB_ID', '1')
    with tf.Graph().as_default():
        step = tf.compat.v1.train.get_or_create_global_step()
        weight = tf.compat.v1.Variable(1.0, name='w')
        x = tf.compat.v1.placeholder(tf.float32, [])
        manager = npu.npu_loss_scale_manager.ExponentialUpdateLossScaleManager(
            **dict(optimizer.NPU_LOSS_SCALE, init_loss_scale=1024))
        sgd = tf.compat.v1.train.GradientDescentOptimizer(0.5)
        if wrapper == 'NPULossScaleOptimizer':
            opt = npu.npu_loss_scale_optimizer.NPULossScaleOptimizer(sgd, manager)
        else:
            opt = npu.npu_optimizer.NPUOptimizer(sgd, manager, is_loss_scale=True)
        train_op = opt.minimize(weight * x, global_step=step)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for value in (float('inf'), float('inf'), 1.0):
                session.run(train_op, {x: value})
            assert session.run([step, weight, manager.get_loss_scale()]) == [1, 0.5, 512.0]


def test_two_ranks_broadcast_each_variable_once(npu, job, tmp_path):
    """NPUEstimator adds its own broadcast hook when RANK_SIZE > 1 (r1.2.0: every global
    variable; master: every trainable one); the zoo adds none on Ascend."""
    for name, value in dict(JOB_ID='1', RANK_SIZE='2', RANK_ID='0', DEVICE_ID='0').items():
        job.setenv(name, value)
    network = official.load('shufflenet_v2')
    cfg = make_config('shufflenet_v2', num_classes=10, image_size=32, log_dir=str(tmp_path))
    rank0 = NPU._replace(rank_size=2)
    assert backend.broadcast_hooks(rank0) == []
    classifier = estimator.make_estimator(trainer.for_training(network.model_fn, cfg, rank0), cfg,
                                 rank0)
    with tf.Graph().as_default() as graph:
        tf.compat.v1.train.get_or_create_global_step()
        features = {'image': tf.zeros([2, 32, 32, 3])}
        spec = classifier._call_model_fn(
            features, tf.zeros([2], tf.int32), tf.estimator.ModeKeys.TRAIN, classifier.config)
        hooks_ = [h for h in spec.training_hooks
                  if isinstance(h, npu.npu_hook.NPUBroadcastGlobalVariablesHook)]
        assert len(hooks_) == 1
        for hook in spec.training_hooks:
            hook.begin()
        broadcasts = [op for op in graph.get_operations() if op.type == 'IdentityN'
                      and op.name.split('/')[-1].startswith('HcomBroadcast')]
        variables = (tf.compat.v1.trainable_variables() if npu.master
                     else tf.compat.v1.global_variables())
        broadcast = sorted(op.inputs[0].op.name[:-len('/read')] for op in broadcasts)
        assert broadcast == sorted(v.op.name for v in variables)
        assert len(broadcasts) > 100
        assert any(isinstance(h, npu.npu_hook.NPUCheckpointSaverHook) for h in spec.training_hooks)
    rank1 = rank0._replace(rank=1)  # saves nothing: no saver at all
    classifier = estimator.make_estimator(trainer.for_training(network.model_fn, cfg, rank1), cfg,
                                 rank1)
    with tf.Graph().as_default():
        tf.compat.v1.train.get_or_create_global_step()
        spec = classifier._call_model_fn(
            {'image': tf.zeros([2, 32, 32, 3])}, tf.zeros([2], tf.int32),
            tf.estimator.ModeKeys.TRAIN, classifier.config)
        assert not any(isinstance(h, tf.estimator.CheckpointSaverHook)
                       for h in list(spec.training_hooks) + list(spec.training_chief_hooks))


def test_npu_warm_start_from_the_environment_is_said_or_refused(npu, job, tmp_path, capsys):
    """NPUEstimator warm-starts by itself from LOCAL_CHECKPOINT_DIR, else RESTORE_FROM: said,
    or refused where it conflicts with the run; and it does warm-start."""
    log_dir = str(tmp_path / 'run')
    source = str(tmp_path / 'source')
    _save_checkpoint(os.path.join(source, 'model.ckpt'), 5)
    logs.setup_logging(None, None, 0)
    job.setenv('RESTORE_FROM', source + '/model.ckpt-5')
    cfg = make_config(mode='train', log_dir=log_dir)
    trainer._prepare_device(cfg, NPU, resuming=False)
    assert 'NPUEstimator warm-starts from %s/model.ckpt-5 (environment variable ' \
           'RESTORE_FROM)' % source in capsys.readouterr().out
    with pytest.raises(UsageError, match='RESTORE_FROM=.* --restore_path'):
        trainer._prepare_device(make_config(mode='train', log_dir=log_dir,
                                            restore_path='/other'), NPU, resuming=False)
    classifier = estimator.make_estimator(_no_model, cfg, NPU)
    assert classifier._warm_start_settings.ckpt_to_initialize_from == (
        source + '/model.ckpt-5')
    job.setenv('LOCAL_CHECKPOINT_DIR', source)  # the job info's wins over RESTORE_FROM
    with pytest.raises(UsageError, match='LOCAL_CHECKPOINT_DIR=%s .* already holds' % source):
        trainer._prepare_device(cfg, NPU, resuming=True)
    job.setenv('LOCAL_CHECKPOINT_DIR', str(tmp_path / 'nothing'))
    with pytest.raises(UsageError, match='LOCAL_CHECKPOINT_DIR=.*nothing .* is no checkpoint'):
        trainer._prepare_device(cfg, NPU, resuming=False)


def test_npu_only_flags_are_said_once_off_ascend(capsys):
    logs.setup_logging(None, None, 0)
    cfg = make_config(over_dump=True, profiling=True, op_select_implmode='high_performance')
    trainer._prepare_device(cfg, runtime.fixed(cfg), resuming=False)
    assert capsys.readouterr().out.splitlines() == [
        '--op_select_implmode, --over_dump, --profiling: Ascend only, ignored on cpu']


def _save_checkpoint(prefix, step):
    with tf.Graph().as_default():
        tf.compat.v1.Variable(1.0, name='w')
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver().save(session, prefix, global_step=step)


def test_session_start_checkpoint_is_removed_before_a_rerun(tmp_path, capsys):
    """model.ckpt-0 alone (a run that failed before its first step) is removed, so the rerun
    starts afresh and warm-starts; beside a trained checkpoint it stays (evaluation leaves it
    out: the README commands' test)."""
    logs.setup_logging(None, None, 0)
    run = str(tmp_path / 'run')
    _save_checkpoint(os.path.join(run, 'model.ckpt'), 0)
    assert checkpoint_steps(run) == [0]
    run_directory.remove_session_start(run)
    assert os.listdir(run) == [] and 'removed model.ckpt-0' in capsys.readouterr().out
    _save_checkpoint(os.path.join(run, 'model.ckpt'), 0)
    _save_checkpoint(os.path.join(run, 'model.ckpt'), 10)
    run_directory.remove_session_start(run)
    assert checkpoint_steps(run) == [0, 10]


def test_gpu_uses_automatic_mixed_precision_with_dynamic_loss_scale():
    with tf.Graph().as_default():
        gpu = runtime.fixed(CONFIG, device='gpu')
        opt = optimizer.make_optimizer(0.1, CONFIG, gpu)
        try:
            assert type(opt).__name__ == 'MixedPrecisionLossScaleOptimizer'
            assert 'DynamicLossScale' in type(opt._loss_scale).__name__
        finally:
            tf.compat.v1.train.experimental.disable_mixed_precision_graph_rewrite()
        assert not isinstance(optimizer.make_optimizer(
            0.1, make_config(precision_mode='force_fp32'), gpu), type(opt))
        assert not backend.mixed_precision('cpu', 'allow_mix_precision')


def test_gpu_processes_are_pinned_to_their_local_gpu():
    gpu = runtime.fixed(CONFIG, device='gpu', rank=5, rank_size=8, local_rank=1, local_size=4,
                        save_checkpoints_steps=1000)
    run_config = estimator.make_estimator(_no_model, CONFIG, gpu).config
    assert run_config.session_config.gpu_options.visible_device_list == '1'
    assert run_config.save_checkpoints_steps is None and run_config.save_summary_steps is None


def test_npu_detection_needs_rank_environment(monkeypatch):
    monkeypatch.setenv('RANK_SIZE', '8')
    monkeypatch.delenv('RANK_ID', raising=False)
    with pytest.raises(UsageError, match='RANK_ID is not set'):
        backend.detect('npu', 8)
    monkeypatch.setenv('RANK_ID', '3')
    monkeypatch.setenv('DEVICE_ID', '3')
    monkeypatch.setenv('RANK_TABLE_FILE', 'scripts/8p.json')
    assert backend.detect('npu', 8) == backend.Backend('npu', 3, 8, 0, 1)
    with pytest.raises(UsageError, match='--rank_size=1 but RANK_SIZE=8'):
        backend.detect('npu', 1)


@pytest.mark.parametrize('release', RELEASES)
def test_readme_commands_on_one_ascend_device_in_a_clean_environment(release, demo_dir,
                                                                     tmp_path):
    """`python train.py ...` as README types it, with none of JOB_ID, RANK_SIZE, RANK_ID,
    DEVICE_ID set: train_and_evaluate with device loops of 4 (the log hook sees one
    Session.run per loop), then evaluate with --eval_dir. NPUEstimator's saver writes
    model.ckpt-0 when the session starts; evaluation leaves it out, and the run's record of
    evaluations holds only trained steps. The loss-scale variables are the real names."""
    log_dir = str(tmp_path / 'npu')
    common = ['--device=npu', '--data_dir=' + demo_dir] + TINY
    result = run_train(common + ['--mode=train_and_evaluate', '--max_epochs=1',
                                 '--batch_size=32', '--iterations_per_loop=4',
                                 '--display_every=8', '--log_dir=' + log_dir], npu=release)
    assert result.returncode == 0, result.stderr
    assert 'device: npu, rank 0 of 1, precision_mode allow_mix_precision' in result.stdout
    assert 'set for NPUEstimator, as the ModelZoo\'s scripts do: JOB_ID=10087 RANK_ID=0 ' \
           'RANK_SIZE=1' in result.stdout
    assert [int(line[0]) for line in train_lines(result.stdout)] == list(range(8, 41, 8)) + [44]
    assert checkpoint_steps(log_dir) == [0, 44]
    assert os.path.exists(os.path.join(log_dir, 'graph.pbtxt'))
    with open(os.path.join(log_dir, 'evaluations.jsonl')) as f:
        assert [json.loads(line)['step'] for line in f] == [44]
    # The first steps overflow fp16 at a loss scale of 2^32 and are skipped, the scale halving
    # every second one; the global step counts them all, so training stops, saves and
    # evaluates exactly at the epoch's end.
    reader = tf.train.load_checkpoint(os.path.join(log_dir, 'model.ckpt-44'))
    assert reader.get_tensor('loss_scale') < 2.0 ** 32
    assert reader.get_tensor('global_step') == 44

    evaluation = run_train(common + ['--mode=evaluate', '--eval_dir=' + log_dir], npu=release)
    assert evaluation.returncode == 0, evaluation.stderr
    assert [int(r[0]) for r in table_rows(evaluation.stdout)] == [44]
    assert 'model.ckpt-0 not evaluated' in evaluation.stdout

    # export and predict build plain sessions: npu_bridge importable changes nothing
    export_dir = str(tmp_path / 'export')
    exported = run_train(['--mode=export', '--eval_dir=' + log_dir, '--export_dir=' + export_dir,
                          '--export_formats=saved_model,frozen_graph'], npu=release)
    assert exported.returncode == 0, exported.stderr
    predictions = str(tmp_path / 'predictions.csv')
    predicted = run_train(['--mode=predict', '--eval_dir=' + export_dir, '--output=' + predictions,
                           '--images=' + os.path.join(demo_dir, 'samples')], npu=release)
    assert predicted.returncode == 0, predicted.stderr
    with open(predictions) as f:
        assert len(f.read().splitlines()) == 1 + 20  # a header, two images of each class


def test_only_an_ascend_training_directory_hides_model_ckpt_0(tmp_path):
    """Only NPUEstimator's saver writes model.ckpt-0 at session start: a directory trained
    elsewhere, or imported weights, keep it as a checkpoint like any other."""
    for device, imported, hidden in (('npu', False, True), ('cpu', False, False),
                                     ('npu', True, False)):
        directory = tmp_path / ('%s_%s' % (device, imported))
        directory.mkdir()
        record = dict(device=device, **({'imported_from': 'x.pth'} if imported else {}))
        (directory / 'hparams.json').write_text(json.dumps(record))
        assert run_directory.trained_on_ascend(str(directory)) is hidden

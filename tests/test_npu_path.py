"""The Ascend path through the npu_bridge fake (tests/fake_npu), and the GPU wiring.

Only this module puts the fake on sys.path, for its own tests (the fixture below): elsewhere
`--device=auto` must not find an NPU.
"""
import importlib
import inspect
import os
import sys
import types

import pytest
import tensorflow as tf

import official
from common import backend, config, estimator, optimizer, runtime
from common.errors import UsageError
from conftest import FAKE_NPU, SMALL, checkpoint_steps, make_config, run_train, train_lines

CONFIG = make_config(precision_mode='allow_mix_precision', iterations_per_loop=100,
                     log_dir='/tmp/unused', save_checkpoints_steps=1000)
NPU = runtime.fixed(CONFIG, device='npu', save_checkpoints_steps=1000)
NPU_MODULES = ('npu_config', 'npu_estimator', 'npu_hook', 'npu_optimizer',
               'npu_loss_scale_manager', 'npu_loss_scale_optimizer')


@pytest.fixture(scope='module', autouse=True)
def npu():
    """The fake's modules, importable while this module's tests run."""
    sys.path.insert(0, FAKE_NPU)
    try:
        modules = {name: importlib.import_module('npu_bridge.estimator.npu.' + name)
                   for name in NPU_MODULES}
        modules['hccl_ops'] = importlib.import_module('npu_bridge.hccl.hccl_ops')
        yield types.SimpleNamespace(**modules)
    finally:
        sys.path.remove(FAKE_NPU)
        for name in [m for m in sys.modules if m.split('.')[0] == 'npu_bridge']:
            del sys.modules[name]


def _no_model(features, labels, mode, params):
    del features, labels, mode, params


def _signature(function):
    return str(inspect.signature(function))


def test_fake_signatures_are_those_of_the_api_document(npu):
    """The fake must not accept more than the real API (shared/NPU_BRIDGE_API.md)."""
    assert _signature(npu.npu_config.NPURunConfig.__init__) == (
        '(self, iterations_per_loop=1, model_dir=None, tf_random_seed=None, '
        'save_summary_steps=0, save_checkpoints_steps=None, save_checkpoints_secs=None, '
        'session_config=None, keep_checkpoint_max=5, keep_checkpoint_every_n_hours=10000, '
        'log_step_count_steps=100, enable_data_pre_proc=True, precision_mode=None, '
        'hcom_parallel=False, profiling_config=None, dump_config=None)')
    assert _signature(npu.npu_estimator.NPUEstimator.__init__) == (
        "(self, model_fn=None, model_dir=None, config=None, params=None, job_start_file='', "
        'warm_start_from=None)')
    assert _signature(npu.npu_optimizer.NPUDistributedOptimizer.__init__) == (
        '(self, optimizer, is_weight_update_sharding=False, name=None)')
    assert _signature(npu.npu_loss_scale_optimizer.NPULossScaleOptimizer.__init__) == (
        '(self, opt, loss_scale_manager, is_distributed=False)')
    assert _signature(npu.npu_loss_scale_manager.ExponentialUpdateLossScaleManager.__init__) == (
        '(self, init_loss_scale, incr_every_n_steps, decr_every_n_nan_or_inf=2, incr_ratio=2, '
        'decr_ratio=0.8)')
    assert _signature(npu.npu_hook.NPUBroadcastGlobalVariablesHook.__init__) == (
        '(self, root_rank=None, index=None)')
    assert _signature(npu.hccl_ops.allreduce) == (
        "(tensor, reduction, fusion=1, fusion_id=-1, group='hccl_world_group')")


def test_npu_run_config_gets_precision_loop_and_hcom(npu):
    classifier = estimator.build(_no_model, CONFIG, NPU)
    assert isinstance(classifier, npu.npu_estimator.NPUEstimator)
    config = classifier.config
    assert isinstance(config, npu.npu_config.NPURunConfig)
    assert config._precision_mode == 'allow_mix_precision'  # pylint: disable=protected-access
    assert config._iterations_per_loop == 100  # pylint: disable=protected-access
    assert config._hcom_parallel is True  # pylint: disable=protected-access
    assert config._enable_data_pre_proc is True  # pylint: disable=protected-access
    assert config.keep_checkpoint_max == 5 and config.save_checkpoints_steps == 1000


def test_precision_mode_flag_reaches_the_npu_run_config(npu):
    networks = official.load_all()
    command = config.parse_command_line(['train.py', '--precision_mode=force_fp32'], networks)
    cfg = config.resolve(official.load(command.network), command.overrides)
    run_config = estimator.build(_no_model, cfg, NPU).config
    assert isinstance(run_config, npu.npu_config.NPURunConfig)
    assert run_config._precision_mode == 'force_fp32'  # pylint: disable=protected-access


@pytest.mark.parametrize('precision_mode, loss_scaled', [
    ('allow_mix_precision', True), ('force_fp16', True), ('force_fp32', False)])
def test_npu_optimizer_is_distributed_and_loss_scaled(precision_mode, loss_scaled, npu):
    with tf.Graph().as_default():
        opt = optimizer.build(0.1, make_config(precision_mode=precision_mode), NPU)
        if loss_scaled:
            assert isinstance(opt, npu.npu_loss_scale_optimizer.NPULossScaleOptimizer)
            assert isinstance(opt._loss_scale_manager,  # pylint: disable=protected-access
                              npu.npu_loss_scale_manager.ExponentialUpdateLossScaleManager)
            opt = opt._opt  # pylint: disable=protected-access
        assert isinstance(opt, npu.npu_optimizer.NPUDistributedOptimizer)
        inner = opt._optimizer  # pylint: disable=protected-access
        assert isinstance(inner, tf.compat.v1.train.MomentumOptimizer)
        assert inner._use_nesterov  # pylint: disable=protected-access


def test_gpu_uses_automatic_mixed_precision_with_dynamic_loss_scale():
    with tf.Graph().as_default():
        gpu = runtime.fixed(CONFIG, device='gpu')
        opt = optimizer.build(0.1, CONFIG, gpu)
        try:
            assert type(opt).__name__ == 'MixedPrecisionLossScaleOptimizer'
            assert 'DynamicLossScale' in type(opt._loss_scale).__name__  # pylint: disable=protected-access
        finally:
            tf.compat.v1.train.experimental.disable_mixed_precision_graph_rewrite()
        assert not isinstance(optimizer.build(0.1, make_config(precision_mode='force_fp32'),
                                              gpu), type(opt))
        assert not backend.mixed_precision('cpu', 'allow_mix_precision')


def test_npu_ranks_broadcast_from_rank_0_and_only_rank_0_saves(npu):
    rank3 = NPU._replace(rank=3, rank_size=8)
    hooks = backend.broadcast_hooks(rank3)
    assert [(type(h), h.root_rank, h.index) for h in hooks] == [
        (npu.npu_hook.NPUBroadcastGlobalVariablesHook, 0, 3)]
    assert backend.broadcast_hooks(NPU) == []
    assert estimator.build(_no_model, CONFIG, rank3).config.save_checkpoints_steps is None
    assert estimator.build(_no_model, CONFIG, rank3._replace(rank=0)).config.save_checkpoints_steps == 1000


def test_gpu_processes_are_pinned_to_their_local_gpu():
    gpu = runtime.fixed(CONFIG, device='gpu', rank=5, rank_size=8, local_rank=1, local_size=4,
                        save_checkpoints_steps=1000)
    config = estimator.build(_no_model, CONFIG, gpu).config
    assert config.session_config.gpu_options.visible_device_list == '1'
    assert config.save_checkpoints_steps is None and config.save_summary_steps is None


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


def test_training_through_the_fake_npu_with_device_loops(demo_dir, tmp_path):
    """iterations_per_loop=5: the log hook sees one Session.run per loop of 5 steps and still
    logs at each display step, with the loss-scaled NPU optimizer in the graph."""
    log_dir = str(tmp_path / 'npu')
    result = run_train(['--device=npu', '--network=shufflenet_v2', '--mode=train',
                        '--max_train_steps=20', '--batch_size=32',
                        '--iterations_per_loop=5', '--display_every=5',
                        '--save_checkpoints_steps=10', '--data_dir=' + demo_dir,
                        '--log_dir=' + log_dir] + SMALL, npu=True)
    assert result.returncode == 0, result.stderr
    assert 'device: npu, rank 0 of 1, precision_mode allow_mix_precision' in result.stdout
    assert [int(line[0]) for line in train_lines(result.stdout)] == [5, 10, 15, 20]
    assert 20 in checkpoint_steps(log_dir)
    reader = tf.train.load_checkpoint(os.path.join(log_dir, 'model.ckpt-20'))
    assert reader.get_tensor('loss_scale/scale') == 2.0 ** 32  # the manager ran, no overflow


def test_default_checkpoint_interval_is_an_epoch_in_whole_loops(demo_dir):
    settings = dict(data_dir=demo_dir, num_classes=10, image_size=32, mode='train',
                    max_train_steps=40, iterations_per_loop=10)
    assert runtime.build(make_config(device='cpu', **settings)).save_checkpoints_steps == 44
    assert runtime.build(make_config(device='npu', **settings)).save_checkpoints_steps == 40

"""End-to-end training on the demo digits at 32 px: learning (every network at full depth),
evaluation table, resume after SIGKILL, fine-tuning with exclusions (the small DenseNet)."""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import official
from common import checkpoints, logs, model_fn, runtime, trainer
from conftest import (ROOT, SMALL, TINY, TINY_DENSENET, checkpoint_steps, make_config, run_train,
                      table_rows, train_lines)
from test_schedules_and_hooks import cosine_lr


def test_training_learns(trained):
    lines = train_lines(trained['train'])
    assert [int(line[0]) for line in lines] == [22, 44, 66, 88, 110, 132, 154, 176]
    # loss falls: the mean of the last two logged losses is below the first logged loss.
    assert np.mean([line[3] for line in lines[-2:]]) < lines[0][3]
    rows = table_rows(trained['evaluate'])
    # 4 epochs (176 steps of 32) from scratch on 1,438 digits: the small DenseNet measured
    # 81.9% top-1 and 97.8% top-5 (DenseNet-121: 51.5% and 90.3%); chance is 10% and 50%.
    assert rows[-1][2] > 65.0, trained['evaluate']
    assert rows[-1][3] > 90.0, trained['evaluate']


def test_evaluate_mode_prints_the_table_for_every_checkpoint(trained):
    out = trained['evaluate']
    assert ' step  epoch  top1    top5     loss   checkpoint_time(UTC)' in out
    rows = table_rows(out)
    assert [(int(r[0]), r[1]) for r in rows] == [(88, 2.0), (176, 4.0)]
    assert 'images evaluated: 359' in out  # every validation image once, batch 32 or not
    best = max(rows, key=lambda r: r[2])
    assert 'best: step %d  top1 %.3f' % (best[0], best[2]) in out
    assert out.rstrip().endswith('Finished evaluation')


def test_outputs_of_a_run(trained):
    log_dir = trained['log_dir']
    assert checkpoint_steps(log_dir) == [88, 176]  # no step-0 checkpoint
    with open(os.path.join(log_dir, 'hparams.json')) as f:
        hparams = json.load(f)
    assert hparams['network'] == 'densenet121' and hparams['steps_per_epoch'] == 44
    assert hparams['kind'] == 'training'
    assert hparams['lr'] == 0.1 and hparams['num_classes'] == 10  # recipe, then the flag
    assert hparams['block_config'] == [1, 1, 1, 1]  # the network's option, recorded
    with open(os.path.join(log_dir, 'train.log')) as f:
        assert 'step:   176  epoch:  4.0' in f.read()


def _scalars(directory):
    """{tag: {step: value}} of the TensorBoard events files in directory."""
    found = {}
    for path in glob.glob(os.path.join(directory, 'events.out.tfevents.*')):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.tag, {})[event.step] = value.simple_value
    return found


def test_tensorboard_scalars_of_training_and_evaluation(trained):
    train = _scalars(trained['log_dir'])
    steps = [22, 44, 66, 88, 110, 132, 154, 176]  # one point per log line
    for tag in ('train/loss', 'train/total_loss', 'train/learning_rate', 'train/images_per_sec'):
        assert sorted(train[tag]) == steps, tag
    lines = train_lines(trained['train'])
    assert train['train/loss'][176] == pytest.approx(lines[-1][3], abs=1e-3)
    assert train['train/learning_rate'][22] == pytest.approx(0.1)
    evaluation = _scalars(os.path.join(trained['log_dir'], 'eval'))
    rows = table_rows(trained['evaluate'])
    for tag in ('top1', 'top5', 'val_loss'):
        assert sorted(evaluation[tag]) == [88, 176], tag
    assert evaluation['top1'][176] * 100 == pytest.approx(rows[-1][2], abs=1e-3)


def test_finished_run_exits_cleanly(trained):
    result = run_train(['--mode=train', '--max_epochs=4'] + trained['args'])
    assert result.returncode == 0, result.stderr
    assert 'training already finished: step 176 >= 176' in result.stdout
    assert checkpoint_steps(trained['log_dir']) == [88, 176]


def test_resume_after_sigkill_follows_the_same_schedule(demo_dir, tmp_path):
    log_dir = str(tmp_path / 'run')
    args = [sys.executable, os.path.join(ROOT, 'train.py'), '--mode=train', '--T_max=2',
            '--max_train_steps=60', '--save_checkpoints_steps=10', '--display_every=5',
            '--data_dir=' + demo_dir, '--log_dir=' + log_dir] + TINY
    victim = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not [s for s in checkpoint_steps(log_dir) if s >= 20] and time.time() < deadline:
        assert victim.poll() is None, 'training ended before it could be killed'
        time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = max(checkpoint_steps(log_dir))
    assert 20 <= killed_at < 60

    result = run_train(args[2:])
    assert result.returncode == 0, result.stderr
    assert 'resumed at step %d' % killed_at in result.stdout
    assert max(checkpoint_steps(log_dir)) == 60
    lines = train_lines(result.stdout)
    assert lines and lines[0][0] > killed_at and lines[-1][0] == 60
    for step, _, _, _, _, lr in lines:  # 44 steps per epoch: the rate drops at step 44
        assert lr == pytest.approx(cosine_lr(int(step), t_max=2, steps_per_epoch=44), abs=6e-6)


def test_fine_tune_restores_weights_and_bn_statistics(trained, tmp_path):
    source = trained['log_dir']
    log_dir = str(tmp_path / 'fine_tuned')
    result = run_train(['--mode=train', '--max_train_steps=1', '--lr=0', '--num_classes=12',
                        '--restore_path=' + source, '--data_dir=' + trained['data_dir'],
                        '--log_dir=' + log_dir, '--image_size=32'] + TINY_DENSENET)
    assert result.returncode == 0, result.stderr
    assert 'restored 64 variables (weights and batch-norm statistics)' in result.stdout
    assert ('not restored (--restore_exclude=densenet121/classifier): '
            'densenet121/classifier/kernel, densenet121/classifier/bias') in result.stdout
    before = tf.train.load_checkpoint(os.path.join(source, 'model.ckpt-176'))
    after = tf.train.load_checkpoint(os.path.join(log_dir, 'model.ckpt-1'))
    kernel = 'densenet121/conv0/kernel'  # lr 0: the weights stay as restored
    np.testing.assert_array_equal(after.get_tensor(kernel), before.get_tensor(kernel))
    # Moving means moved by one step of momentum 0.9 from the restored values, not from 0.
    name = 'densenet121/norm5/moving_mean'
    old, new = before.get_tensor(name), after.get_tensor(name)
    assert np.abs(new - old).mean() < 0.5 * np.abs(old).mean()
    assert after.get_tensor('densenet121/classifier/kernel').shape == (68, 12)


def test_fine_tuning_starts_the_weight_averages_from_the_restored_weights(trained, tmp_path):
    """The trainer's warm start (for_training, in-process): with --moving_average_decay each
    average starts from its variable's value, the restored one where it was restored."""
    cfg = make_config(mode='train', num_classes=10, image_size=32, block_config='1,1,1,1',
                      moving_average_decay=0.99, log_dir=str(tmp_path))
    run = runtime.fixed(cfg, steps_per_epoch=44, total_steps=100)
    prefix = os.path.join(trained['log_dir'], 'model.ckpt-176')
    training = trainer.for_training(official.load('densenet121').model_fn, cfg, run,
                                    warm_start_from=prefix)
    with tf.Graph().as_default():
        training({'image': tf.zeros([2, 32, 32, 3])}, tf.zeros([2], tf.int32),
                 tf.estimator.ModeKeys.TRAIN, dict(config=cfg, runtime=run))
        named = {v.op.name: v for v in tf.compat.v1.global_variables()}
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            values = session.run(named)
    stored = tf.train.load_checkpoint(prefix)
    models = [name for name in values if name + '/ExponentialMovingAverage' in values]
    assert len(models) == 66
    for name in models:
        np.testing.assert_array_equal(values[name + '/ExponentialMovingAverage'], values[name],
                                      err_msg=name)
        if not name.startswith('densenet121/classifier/'):
            np.testing.assert_array_equal(values[name], stored.get_tensor(name), err_msg=name)
    assert not np.array_equal(values['densenet121/classifier/kernel'],
                              stored.get_tensor('densenet121/classifier/kernel'))


def test_weight_averages_follow_tf_trains_exponential_moving_average(tmp_path):
    """The training graph's weight averages start at their variables' initial values and move
    as tf.train.ExponentialMovingAverage(decay, num_updates=global step) moves its own:
    average -= (1 - min(decay, (1 + step) / (10 + step))) * (average - variable), the
    variable and step read after the step's update. In-process, the tiny DenseNet, 4 steps:
    decay 0.25 caps the schedule's 0.18, 0.25, 0.31, 0.36 from the third."""
    cfg = make_config(mode='train', num_classes=10, image_size=32, block_config='1,1,1,1',
                      moving_average_decay=0.25, log_dir=str(tmp_path))
    run = runtime.fixed(cfg, steps_per_epoch=10, total_steps=100)
    with tf.Graph().as_default():
        rng = np.random.RandomState(0)
        spec = official.load('densenet121').model_fn(
            {'image': tf.constant(rng.uniform(-1, 1, [8, 32, 32, 3]).astype(np.float32))},
            tf.constant(rng.randint(0, 10, 8).astype(np.int32)), tf.estimator.ModeKeys.TRAIN,
            dict(config=cfg, runtime=run))
        variables = {v.op.name: v for v in model_fn.model_variables()}
        averages = {name: v for v in tf.compat.v1.global_variables()
                    for name in [v.op.name[:-len(checkpoints.AVERAGE_SUFFIX)]]
                    if v.op.name.endswith(checkpoints.AVERAGE_SUFFIX)}
        assert sorted(averages) == sorted(variables) and len(variables) == 66
        step = tf.compat.v1.train.get_global_step()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            expected = session.run(variables)
            np.testing.assert_equal(session.run(averages), expected)
            for _ in range(4):
                session.run(spec.train_op)
                values, count = session.run([variables, step])
                decay = np.float32(min(0.25, (1.0 + count) / (10.0 + count)))
                expected = {name: expected[name] - (expected[name] - values[name]) * (
                    np.float32(1) - decay) for name in values}
                got = session.run(averages)
                for name in values:
                    np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-7,
                                               err_msg=name)
            # the averages moved: not a copy of the variables
            assert not np.allclose(got['densenet121/classifier/kernel'],
                                   values['densenet121/classifier/kernel'])


def test_fine_tune_mismatch_names_variable_and_shapes(trained, tmp_path):
    log_dir = str(tmp_path / 'mismatch')
    result = run_train(['--mode=train', '--max_train_steps=1', '--num_classes=12',
                        '--restore_exclude=densenet121/nothing', '--restore_path=' +
                        trained['log_dir'], '--data_dir=' + trained['data_dir'],
                        '--log_dir=' + log_dir, '--image_size=32'] + TINY_DENSENET)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'error: --restore_path=%s/model.ckpt-176: variable densenet121/classifier/kernel has '
        'shape [68, 10] in the checkpoint but [68, 12] in the model (exclude its scope '
        'with --restore_exclude)' % trained['log_dir']]
    assert checkpoint_steps(log_dir) == []


# (network, extra flags, minimum top-1 %): a few epochs on the demo digits at small size, from
# scratch, with the recipe except batch size and length. Chance is 10%. Measured when written
# (seed 1, intel-tensorflow): densenet121 40.1% (AMD EPYC; 51.5% on an Intel Xeon),
# shufflenet_v1 52.6%, shufflenet_v2 50.4%, amoebanet_d 30.6%.
SHORT_RUNS = [
    ('densenet121', ['--max_epochs=4'], 35.0),
    ('shufflenet_v1', ['--max_epochs=4'], 30.0),
    ('shufflenet_v2', ['--max_epochs=4'], 30.0),
    # AmoebaNet-D shrunk through its own flags; 72 px is above its auxiliary head's minimum.
    ('amoebanet_d', ['--max_epochs=8', '--epochs_between_evals=8', '--num_cells=3',
                     '--reduction_size=16', '--image_size=72'], 25.0),
]


def short_run(network, flags, demo_dir, log_dir):
    result = run_train(['--network=' + network, '--mode=train_and_evaluate',
                        '--epochs_between_evals=4', '--batch_size=32', '--display_every=44',
                        '--seed=1', '--data_dir=' + demo_dir, '--log_dir=' + log_dir]
                       + SMALL + flags)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize('network, flags, min_top1', SHORT_RUNS)
def test_each_network_learns(network, flags, min_top1, demo_dir, tmp_path, capsys):
    """From scratch at the network's real depth (AmoebaNet-D at its reduced sizes): the loss
    falls and the accuracy clears the floor. 30-90 s each: learning needs its 4-8 epochs, and
    depth is what this checks, so nothing smaller stands in."""
    out = short_run(network, flags, demo_dir, str(tmp_path))
    lines = train_lines(out)
    assert lines[-1][3] < lines[0][3], out  # the loss falls
    row = table_rows(out)[-1]
    assert row[2] > min_top1, out
    _check_fine_tuning_skips_the_classifier(network, flags, str(tmp_path), capsys)
    if network == 'amoebanet_d':
        _check_amoebanet_evaluation_uses_the_averages(str(tmp_path), row, demo_dir)
    print('%s: top-1 %.1f%% after %d steps' % (network, row[2], row[0]))


def _check_fine_tuning_skips_the_classifier(network, flags, source, capsys):
    """The warm start of a fine-tuning at 12 classes from the run's newest checkpoint,
    in-process: the network's training graph through trainer.for_training, as a training run
    builds it (the small DenseNet's fine-tuning tests run it end to end). Every variable but
    those of the declared classifier scopes (AmoebaNet's auxiliary head included) is
    restored, the others are named as left out, and weight averages start from the restored
    values."""
    options = {f[2:].split('=')[0]: f.split('=')[1] for f in flags if 'epochs' not in f}
    cfg = make_config(network, mode='train', num_classes=12, log_dir=os.path.join(
        source, 'fine_tuned'), **dict(dict(image_size=32), **options))
    record = official.load(network)
    # The network's classifier scopes, declared once in its architecture module.
    scopes = ','.join(record.classifier_scopes)
    assert scopes.startswith(network + '/')
    run = runtime.fixed(cfg, steps_per_epoch=44, total_steps=100)
    prefix = tf.train.latest_checkpoint(source)
    logs.setup_logging(None, None, 0)
    capsys.readouterr()
    with tf.Graph().as_default():
        size = cfg.image_size
        trainer.for_training(record.model_fn, cfg, run, warm_start_from=prefix)(
            {'image': tf.zeros([2, size, size, 3])}, tf.zeros([2], tf.int32),
            tf.estimator.ModeKeys.TRAIN, dict(config=cfg, runtime=run))
        variables = {v.op.name: v for v in model_fn.model_variables()}
        averages = {v.op.name[:-len(checkpoints.AVERAGE_SUFFIX)]: v
                    for v in tf.compat.v1.global_variables()
                    if v.op.name.endswith(checkpoints.AVERAGE_SUFFIX)}
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            values, averaged = session.run([variables, averages])
    out = capsys.readouterr().out
    excluded = [name for name in values if name.startswith(tuple(s + '/' for s in
                                                                 record.classifier_scopes))]
    assert excluded and 'restored %d variables' % (len(values) - len(excluded)) in out, out
    assert 'not restored (--restore_exclude=%s): %s' % (scopes, ', '.join(excluded)) in out, out
    if network == 'amoebanet_d':
        assert any(name.startswith('amoebanet_d/aux_head/') for name in excluded), excluded
    assert bool(averaged) == bool(cfg.moving_average_decay)
    stored = tf.train.load_checkpoint(prefix)
    for name, value in values.items():
        if name not in excluded:
            np.testing.assert_array_equal(value, stored.get_tensor(name), err_msg=name)
        if averaged:
            np.testing.assert_array_equal(averaged[name], value, err_msg=name)


# VGG16 on small data from scratch: what a user can choose (README, "Training VGG16 on small
# data"). With the seed recipe it stays at chance on the demo digits (10.0% top-1 after 4
# epochs at lr 0.01, 10.3% at 0.05; with Adam 1e-4 and dropout, 10.3% after 2 epochs).
VGG16_SMALL_DATA = ['--optimizer=adam', '--lr=1e-4', '--weight_decay=0', '--dropout=0']


def test_vgg16_learns_on_small_data_with_adam_and_no_dropout(demo_dir, tmp_path):
    """Measured when written (seed 1): 20.1% top-1, 91.1% top-5 after 2 epochs; chance is 10%
    and 50%. fc6 keeps its 25088 inputs at 32 px (torchvision's adaptive pool). About 90 s:
    88 steps of the full VGG16 (138M parameters) are the least that learns."""
    log_dir = str(tmp_path)
    result = run_train(['--network=vgg16', '--mode=train_and_evaluate', '--max_epochs=2',
                        '--epochs_between_evals=2', '--display_every=44', '--seed=1',
                        '--data_dir=' + demo_dir, '--log_dir=' + log_dir] + SMALL
                       + VGG16_SMALL_DATA)
    assert result.returncode == 0, result.stderr
    step, _, top1, top5, _ = table_rows(result.stdout)[-1]
    assert step == 88 and top1 > 15.0 and top5 > 75.0, result.stdout
    reader = tf.train.load_checkpoint(os.path.join(log_dir, 'model.ckpt-88'))
    shapes = reader.get_variable_to_shape_map()
    assert shapes['vgg16/fc6/kernel'] == [25088, 4096]
    assert 'vgg16/fc6/kernel/Adam' in shapes
    with open(os.path.join(log_dir, 'hparams.json')) as f:
        hparams = json.load(f)
    assert (hparams['optimizer'], hparams['dropout']) == ('adam', 0.0)


def _check_amoebanet_evaluation_uses_the_averages(log_dir, row, demo_dir):
    """Checkpoints hold the weight averages; evaluation loads them unless told not to: the
    raw weights of the same checkpoint give another loss than the run's own (averaged) row."""
    step, top1, loss = int(row[0]), row[2], row[4]
    prefix = os.path.join(log_dir, 'model.ckpt-%d' % step)
    names = [name for name, _ in tf.train.list_variables(prefix)]
    assert 'amoebanet_d/final_layer/FC/kernel/ExponentialMovingAverage' in names
    assert 'amoebanet_d/cell_0/beginning_bn/moving_mean/ExponentialMovingAverage' in names
    raw = run_train(['--network=amoebanet_d', '--mode=evaluate', '--eval_dir=' + prefix,
                     '--num_cells=3', '--reduction_size=16', '--data_dir=' + demo_dir,
                     '--log_dir=' + log_dir, '--moving_average_decay=0'] + SMALL
                    + ['--image_size=72'])
    assert raw.returncode == 0, raw.stderr
    raw_row = table_rows(raw.stdout)[0]
    assert int(raw_row[0]) == step
    assert raw_row[4] != pytest.approx(loss, abs=1e-4), (row, raw_row)
    print('amoebanet_d at step %d: top-1 %.1f%% averaged, %.1f%% raw' % (step, top1, raw_row[2]))


def test_evaluating_averages_of_a_checkpoint_without_them_fails(trained):
    result = run_train(['--mode=evaluate', '--moving_average_decay=0.9999'] + trained['args'])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'error: %s/model.ckpt-88 holds no moving averages of the weights; evaluate its raw '
        'weights with --moving_average_decay=0' % trained['log_dir']]


def test_sigterm_says_where_the_run_stopped(demo_dir, tmp_path):
    """A scheduler's stop (SIGTERM): one line naming the newest checkpoint, exit 143."""
    log_dir = str(tmp_path / 'run')
    victim = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'train.py'), '--network=shufflenet_v2',
         '--mode=train', '--max_train_steps=400', '--save_checkpoints_steps=5',
         '--data_dir=' + demo_dir, '--log_dir=' + log_dir] + SMALL,
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True)
    deadline = time.time() + 300
    while not checkpoint_steps(log_dir) and time.time() < deadline:
        assert victim.poll() is None, 'training ended before it could be stopped'
        time.sleep(0.2)
    victim.send_signal(signal.SIGTERM)
    _, err = victim.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert victim.returncode == 143 and len(lines) == 1, err
    step = max(checkpoint_steps(log_dir))
    assert lines[0] == ('error: stopped by SIGTERM; its newest checkpoint is %s/model.ckpt-%d: '
                        'the same command resumes from it' % (log_dir, step))

"""End-to-end DenseNet-121 on the demo digits at 32 px: learning, evaluation table, resume
after SIGKILL, fine-tuning with exclusions."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import (ROOT, SMALL, checkpoint_steps, run_train, table_rows, train_lines)
from test_schedules_and_hooks import cosine_lr


def test_training_learns(trained):
    lines = train_lines(trained['train'])
    assert [int(line[0]) for line in lines] == [22, 44, 66, 88, 110, 132, 154, 176]
    # loss falls: the mean of the last two logged losses is below the first logged loss.
    assert np.mean([line[3] for line in lines[-2:]]) < lines[0][3]
    rows = table_rows(trained['evaluate'])
    # 4 epochs (176 steps of 32) from scratch on 1,438 digits: measured 51.5% top-1 and 90.3%
    # top-5 when written; chance is 10% and 50%.
    assert rows[-1][2] > 35.0, trained['evaluate']
    assert rows[-1][3] > 75.0, trained['evaluate']


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
    assert hparams['lr'] == 0.1 and hparams['num_classes'] == 10  # recipe, then the flag
    with open(os.path.join(log_dir, 'train.log')) as f:
        assert 'step:   176  epoch:  4.0' in f.read()


def test_finished_run_exits_cleanly(trained):
    result = run_train(['--mode=train', '--max_epochs=4'] + trained['args'])
    assert result.returncode == 0, result.stderr
    assert 'training already finished: step 176 >= 176' in result.stdout
    assert checkpoint_steps(trained['log_dir']) == [88, 176]


def test_resume_after_sigkill_follows_the_same_schedule(demo_dir, tmp_path):
    log_dir = str(tmp_path / 'run')
    args = [sys.executable, os.path.join(ROOT, 'train.py'), '--mode=train', '--T_max=2',
            '--max_train_steps=60', '--save_checkpoints_steps=10', '--display_every=5',
            '--data_dir=' + demo_dir, '--log_dir=' + log_dir] + SMALL
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
                        '--log_dir=' + log_dir, '--image_size=32'])
    assert result.returncode == 0, result.stderr
    assert 'restored 604 variables (weights and batch-norm statistics)' in result.stdout
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
    assert after.get_tensor('densenet121/classifier/kernel').shape == (1024, 12)


def test_fine_tune_mismatch_names_variable_and_shapes(trained, tmp_path):
    log_dir = str(tmp_path / 'mismatch')
    result = run_train(['--mode=train', '--max_train_steps=1', '--num_classes=12',
                        '--restore_exclude=densenet121/nothing', '--restore_path=' +
                        trained['log_dir'], '--data_dir=' + trained['data_dir'],
                        '--log_dir=' + log_dir, '--image_size=32'])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'error: --restore_path=%s/model.ckpt-176: variable densenet121/classifier/kernel has '
        'shape [1024, 10] in the checkpoint but [1024, 12] in the model (exclude its scope '
        'with --restore_exclude)' % trained['log_dir']]
    assert checkpoint_steps(log_dir) == []

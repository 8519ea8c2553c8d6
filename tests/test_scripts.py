"""The run scripts as users call them: one-device training and checkpoint evaluation."""
import os
import subprocess
import sys

from conftest import ROOT, TINY, table_rows


def _bash(script, args, env):
    return subprocess.run(['bash', os.path.join(ROOT, 'scripts', script)] + args, cwd=ROOT,
                          env=dict(os.environ, PYTHON=sys.executable, **env),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=900)


def test_run_1p_trains_and_reports(demo_dir, tmp_path):
    result = _bash('run_1p.sh', ['--data_dir=' + demo_dir, '--mode=train',
                                 '--max_train_steps=6', '--display_every=3'] + TINY,
                   dict(RESULT_ROOT=str(tmp_path), DEVICE_ID='3'))
    assert result.returncode == 0, result.stdout
    out_dir = tmp_path / '1p' / '3'
    log = (out_dir / 'train_3.log').read_text()
    assert 'step:     6  epoch:' in log
    assert (out_dir / 'model.ckpt-6.index').exists()
    lines = result.stdout.rstrip().splitlines()
    assert lines[-3].startswith('Final Performance images/sec : ')
    assert float(lines[-3].split(':')[1]) > 0
    assert lines[-2].startswith('E2E Training Duration sec : ')
    # A second run trains nothing: it must not report the first run's figure.
    again = _bash('run_1p.sh', ['--data_dir=' + demo_dir, '--mode=train',
                                '--max_train_steps=6'] + TINY,
                  dict(RESULT_ROOT=str(tmp_path), DEVICE_ID='3'))
    assert again.returncode == 0, again.stdout
    assert 'training already finished' in again.stdout
    assert 'Final Performance images/sec : n/a' in again.stdout


def test_run_1p_reports_failure(tmp_path):
    result = _bash('run_1p.sh', ['--data_dir=' + str(tmp_path / 'missing')],
                   dict(RESULT_ROOT=str(tmp_path)))
    assert result.returncode == 2
    assert 'error: --data_dir=%s does not exist' % (tmp_path / 'missing') in result.stdout


def test_test_sh_evaluates_a_checkpoint_directory(trained):
    result = _bash('test.sh', ['--eval_dir=' + trained['log_dir'], '--log_dir=' +
                               trained['log_dir']] + trained['args'][:1] +
                   ['--num_classes=10', '--image_size=32'], {})
    assert result.returncode == 0, result.stdout
    assert [int(r[0]) for r in table_rows(result.stdout)] == [88, 176]


def test_evaluation_accepts_a_batch_larger_than_the_training_set(trained):
    """Evaluation reads the validation split only: a batch of 2000 covers it in one step."""
    result = _bash('test.sh', ['--eval_dir=' + trained['log_dir'], '--log_dir=' +
                               trained['log_dir'], '--batch_size=2000'] + trained['args'][:1] +
                   ['--num_classes=10', '--image_size=32'], {})
    assert result.returncode == 0, result.stdout
    assert 'images evaluated: 359' in result.stdout


def test_evaluate_without_log_dir_writes_next_to_the_checkpoints(trained):
    results = os.path.join(ROOT, 'results')
    existed = os.path.exists(results)
    prefix = os.path.join(trained['log_dir'], 'model.ckpt-176')
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'train.py'), '--mode=evaluate',
         '--eval_dir=' + prefix] + [a for a in trained['args'] if not a.startswith('--log_dir')],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
        timeout=600)
    assert result.returncode == 0, result.stderr
    assert [int(r[0]) for r in table_rows(result.stdout)] == [176]
    assert os.path.exists(results) == existed
    with open(os.path.join(trained['log_dir'], 'evaluate.log')) as f:  # not the training's log
        assert 'Evaluating 1 checkpoint(s) in %s' % prefix in f.read()

"""A run directory is never overwritten and never lies: missing index files, leftovers of a
killed save, failed starts (issue 11, items 1, 5 and 7)."""
import json
import os
import shutil

import pytest

from common import input_pipeline
from conftest import SMALL, TINY, checkpoint_steps, run_train, table_rows


def _copy_checkpoints(source, target, with_index=True):
    os.makedirs(target)
    for name in os.listdir(source):
        if name.startswith('model.ckpt-') or name == 'hparams.json' or (
                with_index and name == 'checkpoint'):
            shutil.copy(os.path.join(source, name), target)
    return str(target)


def _args(trained, *left_out):
    """The trained run's flags without --log_dir (and the flags named in left_out)."""
    return [a for a in trained['args'] if not a.startswith(('--log_dir',) + left_out)]


def _truncated_copy(trained, target, step):
    """A copy of the trained run whose model.ckpt-<step> data file lost its second half."""
    log_dir = _copy_checkpoints(trained['log_dir'], target)
    data = os.path.join(log_dir, 'model.ckpt-%d.data-00000-of-00001' % step)
    with open(data, 'r+b') as f:
        f.truncate(os.path.getsize(data) // 2)
    return log_dir


def test_missing_checkpoint_index_resumes_instead_of_overwriting(trained, tmp_path):
    log_dir = _copy_checkpoints(trained['log_dir'], tmp_path / 'copied', with_index=False)
    leftover = os.path.join(log_dir, 'model.ckpt-200_temp_0123abcd')
    os.makedirs(os.path.join(leftover, 'part-00000-of-00001'))
    with open(os.path.join(log_dir, 'model.ckpt-176.data-00000-of-00001'), 'rb') as f:
        weights = f.read()
    args = _args(trained)
    result = run_train(['--mode=train', '--max_epochs=4', '--log_dir=' + log_dir] + args)
    assert result.returncode == 0, result.stderr
    assert ('the checkpoint index file of %s was missing or stale: rewritten, resuming from '
            'model.ckpt-176' % log_dir) in result.stdout
    assert 'removed %s, left by an interrupted save' % leftover in result.stdout
    assert 'training already finished: step 176 >= 176' in result.stdout
    assert not os.path.exists(leftover)
    assert checkpoint_steps(log_dir) == [88, 176]
    with open(os.path.join(log_dir, 'model.ckpt-176.data-00000-of-00001'), 'rb') as f:
        assert f.read() == weights


def test_only_incomplete_checkpoints_stop_the_run(trained, tmp_path):
    log_dir = _copy_checkpoints(trained['log_dir'], tmp_path / 'broken', with_index=False)
    for step in (88, 176):
        os.remove(os.path.join(log_dir, 'model.ckpt-%d.data-00000-of-00001' % step))
    args = _args(trained)
    result = run_train(['--mode=train', '--max_epochs=5', '--log_dir=' + log_dir] + args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'error: %s holds only incomplete checkpoints (model.ckpt-176.index, '
        'model.ckpt-88.index); move them away or choose another --log_dir' % log_dir]


def test_a_failed_start_keeps_the_previous_hparams(trained, tmp_path):
    log_dir = _copy_checkpoints(trained['log_dir'], tmp_path / 'copied')
    path = os.path.join(log_dir, 'hparams.json')
    with open(path) as f:
        before = f.read()
    args = _args(trained, '--num_classes')
    result = run_train(['--mode=train', '--max_epochs=5', '--num_classes=12',
                        '--log_dir=' + log_dir] + args)
    assert result.returncode == 2
    assert 'variable densenet121/classifier/bias has shape [10] there but [12] here' in (
        result.stderr)
    with open(path) as f:
        assert f.read() == before
    assert not os.path.exists(os.path.join(log_dir, 'hparams.previous.json'))
    # A run that does start records itself and keeps the previous record beside it.
    result = run_train(['--mode=train', '--max_train_steps=177', '--log_dir=' + log_dir]
                       + args + ['--num_classes=10'])
    assert result.returncode == 0, result.stderr
    with open(path) as f:
        assert json.load(f)['max_train_steps'] == 177
    with open(os.path.join(log_dir, 'hparams.previous.json')) as f:
        assert json.load(f)['max_train_steps'] is None


@pytest.mark.parametrize('flags, with_hparams, message', [
    # the directory's hparams.json says what the checkpoint is
    (['--network=shufflenet_v2'], True, '--network=shufflenet_v2, but %s holds a checkpoint of '
                                        'densenet121 (its hparams.json)'),
    (['--num_classes=12'], True, '--num_classes=12 differs from the checkpoint\'s 10 (its '
                                 'hparams.json); leave the flag out'),
    # without it, the checkpoint's variables do
    (['--network=shufflenet_v2'], False, 'does not fit --network=shufflenet_v2: it has no '
                                         'variable shufflenet_v2/conv1/kernel'),
    (['--num_classes=12'], False, 'does not fit this model: variable densenet121/classifier/bias '
                                  'has shape [10] there but [12] here (another --num_classes or '
                                  'option?)'),
])
def test_checkpoint_of_another_model_is_named(flags, with_hparams, message, trained, tmp_path):
    log_dir = trained['log_dir']
    if not with_hparams:
        log_dir = _copy_checkpoints(log_dir, tmp_path / 'bare')
        os.remove(os.path.join(log_dir, 'hparams.json'))
    # another network is named without the small DenseNet's option
    left_out = ('--num_classes',) + (('--block_config',) if flags[0].startswith('--network')
                                     else ())
    args = _args(trained, *left_out) + ['--log_dir=' + log_dir]
    result = run_train(['--mode=evaluate'] + args + flags)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message.replace('%s', log_dir) in lines[0], result.stderr
    assert 'verify' not in lines[0]


def test_an_unreadable_checkpoint_is_a_row_and_the_table_goes_on(trained, tmp_path):
    log_dir = _truncated_copy(trained, tmp_path / 'truncated', 88)
    result = run_train(['--mode=evaluate', '--log_dir=' + log_dir] + _args(trained))
    assert result.returncode == 2
    assert '   88    2.0  unreadable: model.ckpt-88: ' in result.stdout
    assert [int(r[0]) for r in table_rows(result.stdout)] == [176]
    assert result.stderr.startswith('error: 1 of 2 checkpoints could not be read (model.ckpt-88')


def test_data_loss_during_training_names_the_shard(demo_dir, tmp_path):
    """A shard damaged after it was counted (same size and time): TensorFlow's DataLossError
    does not say which file; the error line must."""
    data_dir = str(tmp_path / 'data')
    shutil.copytree(demo_dir, data_dir)
    files = input_pipeline.find_files(data_dir, 'train')
    input_pipeline.count_records(files)  # cached by (path, size, mtime)
    victim = files[1]
    stat = os.stat(victim)
    with open(victim, 'r+b') as f:
        f.seek(5000)
        f.write(b'\xff' * 64)
    os.utime(victim, (stat.st_atime, stat.st_mtime))
    result = run_train(['--mode=train', '--max_train_steps=200', '--data_dir=' + data_dir,
                        '--log_dir=' + str(tmp_path / 'out')] + TINY)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith('error: corrupt TFRecord file %s after record ' % victim)


def test_an_interrupted_evaluation_is_redone_on_restart(trained, tmp_path):
    """The trained run's last checkpoint, 176, has no table row (as after a kill during its
    evaluation): train_and_evaluate evaluates it on restart, once."""
    log_dir = _copy_checkpoints(trained['log_dir'], tmp_path / 'interrupted')
    args = _args(trained) + [
        '--mode=train_and_evaluate', '--max_epochs=4', '--epochs_between_evals=4',
        '--log_dir=' + log_dir]
    result = run_train(args)
    assert result.returncode == 0, result.stderr
    assert 'model.ckpt-176 was never evaluated (interrupted): evaluating it now' in result.stdout
    assert [int(r[0]) for r in table_rows(result.stdout)] == [176]
    assert 'training already finished: step 176 >= 176' in result.stdout
    again = run_train(args)
    assert again.returncode == 0, again.stderr
    assert table_rows(again.stdout) == [] and 'never evaluated' not in again.stdout


def test_a_truncated_checkpoint_is_named_when_resuming(trained, tmp_path):
    log_dir = _truncated_copy(trained, tmp_path / 'truncated', 176)
    result = run_train(['--mode=train', '--max_train_steps=177', '--log_dir=' + log_dir]
                       + _args(trained))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'error: cannot restore checkpoint %s/model.ckpt-176: Read less bytes than requested'
        % log_dir]


def test_a_checkpoint_that_vanishes_during_evaluation_is_a_skipped_row(trained, tmp_path,
                                                                        capsys):
    """A training with keep-5 deletes a listed checkpoint before evaluate reads it: a row says
    so and the table goes on (in-process: a stand-in Estimator that deletes it meanwhile)."""
    import official
    from common import logs, runtime, trainer
    from conftest import make_config
    log_dir = _copy_checkpoints(trained['log_dir'], tmp_path / 'run')
    cfg = make_config(mode='evaluate', eval_dir=log_dir, log_dir=log_dir, num_classes=10,
                      image_size=32, block_config='1,1,1,1')
    logs.setup_logging(None, None, 0)

    class DeletingEvaluator:
        def evaluate(self, input_fn, steps, checkpoint_path):
            del input_fn, steps
            for name in os.listdir(log_dir):
                if name.startswith('model.ckpt-176'):
                    os.remove(os.path.join(log_dir, name))
            assert checkpoint_path.endswith('model.ckpt-88')
            return dict(top1=0.5, top5=0.9, val_loss=1.5, images=359)

    trainer.evaluate_all(official.load('densenet121'), DeletingEvaluator(),
                         trainer.EvalInput(None, 1, 359),
                         cfg, runtime.fixed(cfg, steps_per_epoch=44))
    out = capsys.readouterr().out
    assert '  176    4.0  skipped: model.ckpt-176: removed before it could be read' in out
    assert [int(r[0]) for r in table_rows(out)] == [88]
    assert 'best: step 88' in out


def test_a_second_training_on_one_log_dir_stops_at_start(demo_dir, tmp_path):
    """The first holds the run directory's lock (here a process that only holds it); the
    second stops with one line naming it and writes nothing there; once the holder is killed
    (-9), the lock is free."""
    import signal
    import subprocess
    import sys
    from common import run_directory
    from conftest import ROOT
    log_dir = str(tmp_path / 'run')
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time\nfrom common import run_directory\n'
         'with run_directory.held(sys.argv[1]):\n    print("held", flush=True)\n'
         '    time.sleep(120)',
         log_dir], cwd=ROOT, stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        result = run_train(['--network=shufflenet_v2', '--mode=train', '--max_train_steps=1',
                            '--data_dir=' + demo_dir, '--log_dir=' + log_dir] + SMALL)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith('error: %s is in use by a training run (pid %d on '
                                   % (log_dir, holder.pid)), lines[0]
        assert os.listdir(log_dir) == [run_directory.LOCK_FILE]  # no log, no record
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with run_directory.held(log_dir):
        pass


def test_a_file_system_without_locks_runs_unlocked_and_says_so(tmp_path, monkeypatch):
    import errno
    from common import run_directory

    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, 'No locks available')

    monkeypatch.setattr(run_directory.fcntl, 'flock', no_locks)
    with run_directory.held(str(tmp_path)) as warning:
        assert warning == ('warning: %s/.lock cannot be locked (No locks available): nothing '
                           'stops a second training in this --log_dir' % tmp_path)


def test_a_run_directory_written_before_record_kinds_still_works(demo_dir, tmp_path):
    """tests/data/run_before_kind: a small DenseNet trained 2 steps by the zoo before
    hparams.json had a `kind` (commit 010fbcc), copied elsewhere. It evaluates, exports,
    predicts and resumes as it did; its record is kept beside the new one, which differs."""
    from common import run_record
    from conftest import ROOT
    old = str(tmp_path / 'old')
    shutil.copytree(os.path.join(ROOT, 'tests', 'data', 'run_before_kind'), old)
    assert 'kind' not in run_record.read(old) and run_record.kind_of(run_record.read(old)) == (
        'training')
    evaluated = run_train(['--mode=evaluate', '--eval_dir=' + old, '--data_dir=' + demo_dir,
                           '--log_dir=' + str(tmp_path / 'eval')])
    assert evaluated.returncode == 0, evaluated.stderr
    assert [int(r[0]) for r in table_rows(evaluated.stdout)] == [2]
    exported = str(tmp_path / 'export')
    result = run_train(['--mode=export', '--eval_dir=' + old, '--export_dir=' + exported,
                        '--export_formats=saved_model'])
    assert result.returncode == 0, result.stderr
    assert run_record.read(exported)['kind'] == 'export' and run_record.is_export(exported)
    assert run_record.read_labels(exported) == ['digit_%d' % i for i in range(10)]
    predictions = str(tmp_path / 'predictions.csv')
    result = run_train(['--mode=predict', '--eval_dir=' + exported, '--output=' + predictions,
                        '--images=' + os.path.join(demo_dir, 'samples')])
    assert result.returncode == 0, result.stderr
    with open(predictions) as f:
        assert len(f.read().splitlines()) == 1 + 20
    resumed = run_train(['--mode=train', '--max_train_steps=3', '--data_dir=' + demo_dir,
                         '--log_dir=' + old] + TINY)
    assert resumed.returncode == 0, resumed.stderr
    assert 'resumed at step 2' in resumed.stdout and checkpoint_steps(old) == [2, 3]
    record = run_record.read(old)
    assert record['kind'] == 'training' and record['max_train_steps'] == 3
    assert 'kind' not in json.load(open(os.path.join(old, run_record.PREVIOUS_HPARAMS_FILE)))


def test_a_resumed_record_is_kept_aside_only_when_it_differs(tmp_path):
    """hparams.previous.json keeps an earlier record that describes another run; the command
    line, the kind and the fields an older zoo did not write are no difference."""
    from common import run_record
    directory = str(tmp_path)
    older = dict(network='densenet121', lr=0.1, command='train.py --lr=0.1')
    with open(os.path.join(directory, run_record.HPARAMS_FILE), 'w') as f:
        json.dump(older, f)  # as a zoo before `kind` and block_config wrote it
    run_record.write(directory, 'training', dict(older, command='train.py', block_config=(
        6, 12, 24, 16)), keep_previous=True)
    assert not os.path.exists(os.path.join(directory, run_record.PREVIOUS_HPARAMS_FILE))
    assert run_record.read(directory)['block_config'] == [6, 12, 24, 16]
    run_record.write(directory, 'training', dict(older, lr=0.2), keep_previous=True)
    assert run_record.read(directory)['lr'] == 0.2
    with open(os.path.join(directory, run_record.PREVIOUS_HPARAMS_FILE)) as f:
        assert json.load(f)['lr'] == 0.1

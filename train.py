"""Command-line entry: parse flags, resolve the configuration, run the network's trainer.

Bad input ends with one 'error: ...' line on stderr and a non-zero exit, never a traceback.
"""
import contextlib
import glob
import os
import random
import signal
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import tensorflow as tf

import official
from common import (checkpoints, config, demo, export, input_pipeline, logs,
                    predict, records, report, run_lock, run_record, runtime, trainer)
from common.errors import UsageError

EXIT_USAGE, EXIT_DATA = 2, 1


def _op_error_line(error, data_dir):
    """One line for a TensorFlow error that stopped the run: a checkpoint that cannot be
    restored, a corrupt shard (named), or a bad record (verify names it)."""
    failure = checkpoints.restore_failure(error)
    if failure:
        return 'error: %s: a checkpoint could not be restored: %s' % (type(error).__name__,
                                                                     failure)
    if isinstance(error, tf.errors.DataLossError) and data_dir:
        corrupt = input_pipeline.find_corrupt_file(data_dir)
        if corrupt:
            return 'error: %s' % corrupt
    first = error.message.strip().splitlines()[0]
    hint = ''
    if isinstance(error, tf.errors.DataLossError) or (
            isinstance(error, tf.errors.InvalidArgumentError)
            and input_pipeline.raised_reading_input(error)):
        hint = ' (python -m tfrecord_tools.verify --data_dir=%s names the bad record)' % data_dir
    return 'error: %s: %s%s' % (type(error).__name__, first, hint)


def _model_path(overrides):
    """The model this run reads: --eval_dir in the modes that use a trained model (default
    log_dir), --restore_path when fine-tuning; None else."""
    if overrides.get('mode') in config.MODEL_MODES:
        return overrides.get('eval_dir') or overrides.get('log_dir') or config.SCHEMA_BY_NAME[
            'log_dir'].default
    return overrides.get('restore_path')


def _checkpoint_hparams(path):
    """(directory, its hparams.json or None) of a model path; (None, None) for none."""
    if path is None:
        return None, None
    directory = checkpoints.run_directory(path)
    return directory, run_record.read(directory)


def _network_of(command, directory, saved, networks):
    """--network, or the checkpoint's network when it was not given; a contradiction is an
    error (the checkpoint would not fit)."""
    names = [n.name for n in networks]
    theirs = (saved or {}).get('network')
    if theirs not in names or command.overrides.get('mode') not in config.MODEL_MODES:
        return official.load(command.network)
    if command.network_given and command.network != theirs:
        raise UsageError('--network=%s, but %s holds a checkpoint of %s (its hparams.json)' % (
            command.network, directory, theirs))
    return official.load(theirs)


# What export and predict take from a checkpoint's hparams.json and cannot check against its
# weights (a network trained at 32 px exports at 224 as well).
UNCHECKABLE = ('network', 'image_size', 'preprocessing')


def _check_unrecorded(command, path, directory, saved):
    """Export and predict of checkpoints without hparams.json need those values as flags."""
    if saved is not None or command.demo or command.overrides.get('mode') not in (
            'export', 'predict'):
        return
    if not os.path.isdir(path) and not os.path.exists(path + '.index'):
        raise UsageError('--eval_dir=%s: no such checkpoint, checkpoint directory or export'
                         % path)
    if os.path.isdir(path) and not glob.glob(os.path.join(path, 'model.ckpt-*.index')):
        return  # nothing to export: said when the checkpoints are listed
    given = dict(command.overrides, network=command.network if command.network_given else None)
    missing = [name for name in UNCHECKABLE if given.get(name) is None]
    if missing:
        raise UsageError('%s holds no %s, the record of how its checkpoints were trained: give '
                         '%s' % (directory, run_record.HPARAMS_FILE,
                                 ', '.join('--%s' % name for name in missing)))


def resolve_command_line(argv, networks):
    """(CommandLine, Config) of argv; the demo's settings sit below the checkpoint's and the
    user's."""
    command = config.parse_command_line(argv, networks)
    overrides = dict(command.overrides)
    path = _model_path(overrides)
    directory, saved = _checkpoint_hparams(path)
    _check_unrecorded(command, path, directory, saved)
    network = _network_of(command, directory, saved, networks)
    if command.demo:
        below = demo.overrides(network)
        if saved and overrides.get('mode') in config.MODEL_MODES:
            below = {k: v for k, v in below.items() if k not in config.CHECKPOINT_KEYS}
        overrides = dict(below, **overrides)
    if overrides.get('mode') == 'evaluate' and 'eval_dir' in overrides and (
            'log_dir' not in overrides):
        # Evaluating a checkpoint directory writes its log next to the checkpoints, not to
        # a ./results created for it.
        overrides['log_dir'] = checkpoints.run_directory(overrides['eval_dir'])
    description = records.read_description(overrides.get('data_dir'))
    return command, config.resolve(network, overrides, description, networks, saved)


def main(argv):
    # Our errors are one line each; TensorFlow's own log would repeat them.
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.FATAL)
    signal.signal(signal.SIGTERM, _raise_terminated)
    networks = official.load_all()
    cfg = None
    try:
        command, cfg = resolve_command_line(argv, networks)
        if command.help:
            print(config.help_text(official.load(command.network), networks))
            return 0
        if command.list_networks:
            report.list_networks(networks, lambda n: config.resolve(n, other_networks=networks))
            return 0
        network = official.load(cfg.network)
        if cfg.mode in ('export', 'predict'):  # no data, no run directory: console only
            logs.setup_logging(None, None, 0)
            if cfg.mode == 'export':
                export.export_model(network, cfg)
                return 0
            return predict.predict_images(network, cfg)
        run = runtime.make_runtime(cfg)
        # Rank 0 of a training holds its run directory for the process's life, from before
        # anything is written there (evaluation only reads it).
        training = cfg.mode != 'evaluate' and run.rank == 0
        with run_lock.held(cfg.log_dir) if training else contextlib.nullcontext() as warning:
            logs.setup_logging(cfg.log_dir, cfg.log_name, run.rank)
            if warning:
                logs.log.warning(warning)
            if cfg.seed is not None:
                random.seed(cfg.seed)
                np.random.seed(cfg.seed)
            trainer.run(network, cfg, run)
    except UsageError as e:
        print('error: %s' % e, file=sys.stderr)
        return EXIT_USAGE
    except tf.errors.OpError as e:
        print(_op_error_line(e, cfg.data_dir if cfg else None), file=sys.stderr)
        return EXIT_DATA
    except tf.compat.v1.train.NanLossDuringTrainingError:
        print('error: the training loss became NaN (diverged); lower --lr or raise --batch_size, '
              'then restart: the checkpoints in %s are from before' % cfg.log_dir,
              file=sys.stderr)
        return EXIT_DATA
    except (KeyboardInterrupt, Terminated) as e:
        print('error: %s%s' % ('interrupted' if isinstance(e, KeyboardInterrupt)
                               else 'stopped by SIGTERM', _where_it_stopped(cfg)),
              file=sys.stderr)
        return 130 if isinstance(e, KeyboardInterrupt) else 128 + signal.SIGTERM
    return 0


class Terminated(BaseException):
    """SIGTERM (a scheduler's stop, `kill`): ends the run like Ctrl-C, with a word."""


def _raise_terminated(signum, frame):
    del signum, frame
    raise Terminated()


def _where_it_stopped(cfg):
    """For a training run: its newest checkpoint, from which the same command resumes."""
    if cfg is None or cfg.mode not in ('train', 'train_and_evaluate'):
        return ''
    step = checkpoints.latest_step(cfg.log_dir)
    if step is None:
        return ' before its first checkpoint; the same command starts it again'
    return ('; its newest checkpoint is %s/model.ckpt-%d: the same command resumes from it'
            % (cfg.log_dir, step))


if __name__ == '__main__':
    sys.exit(main(sys.argv))

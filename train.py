"""Command-line entry: resolve the configuration (common/command_line.py), run the mode.

Bad input ends with one 'error: ...' line on stderr and a non-zero exit, never a traceback.
"""
import contextlib
import os
import random
import signal
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import tensorflow as tf

import official
from common import (checkpoints, command_line, config, export, host_memory, input_pipeline, logs,
                    predict, report, run_directory, runtime, trainer)
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


def main(argv, owns_process=False):
    """Runs the command line argv; returns the exit status. owns_process: this process runs
    nothing else (python train.py), so CPU training may set its C allocator (host_memory);
    tests call main in their own process and leave it as it is."""
    # Our errors are one line each; TensorFlow's own log would repeat them.
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.FATAL)
    signal.signal(signal.SIGTERM, _raise_terminated)
    networks = official.load_all()
    cfg = None
    try:
        command, cfg = command_line.resolve(argv, networks)
        if command.help:
            print(command_line.help_text(official.load(command.network), networks))
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
        if run.device == 'cpu' and owns_process:
            host_memory.keep_freed_memory()  # before the first session's threads
        # Rank 0 of a training holds its run directory for the process's life, from before
        # anything is written there (evaluation only reads it).
        training = cfg.mode != 'evaluate' and run.rank == 0
        with run_directory.held(cfg.log_dir) if training else contextlib.nullcontext() as warning:
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
    step = run_directory.latest_step(cfg.log_dir)
    if step is None:
        return ' before its first checkpoint; the same command starts it again'
    return ('; its newest checkpoint is %s/model.ckpt-%d: the same command resumes from it'
            % (cfg.log_dir, step))


if __name__ == '__main__':
    # the process is train.py's own: its C allocator may be set for training (host_memory)
    sys.exit(main(sys.argv, owns_process=True))

"""Command-line entry: parse flags, pick the network, hand over to its trainer.

Bad input ends with one 'error: ...' line on stderr and a non-zero exit, never a traceback.
"""
import os
import random
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import official  # noqa: E402
from common import flags, hooks, trainer  # noqa: E402
from common.errors import UsageError  # noqa: E402

EXIT_USAGE, EXIT_DATA = 2, 1


def _op_error_line(error, params):
    first = error.message.strip().splitlines()[0]
    hint = ''
    if isinstance(error, (tf.errors.DataLossError, tf.errors.InvalidArgumentError)):
        hint = ' (python -m tfrecord_tools.verify --data_dir=%s names the bad record)' % (
            params['data_dir'])
    return 'error: %s: %s%s' % (type(error).__name__, first, hint)


def main(argv):
    # Our errors are one line each; TensorFlow's own log would repeat them.
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.FATAL)
    flags.define_flags(official.NETWORK_NAMES)
    params = {'data_dir': '?'}
    try:
        flags.parse(argv)
        if flags.FLAGS.list_networks:
            for name in official.NETWORK_NAMES:
                network = official.load(name)
                params, macs = trainer.network_size(network)
                print('%-14s %11s params %9.2fM mult-adds  %s' % (
                    name, format(params, ','), macs / 1e6,
                    trainer.describe_recipe(network.defaults)))
            return 0
        network = official.load(flags.FLAGS.network)
        params = trainer.prepare(flags.resolve(network.defaults))
        hooks.setup_logging(params['log_dir'], params['log_name'], params['rank'])
        if params['seed'] is not None:
            random.seed(params['seed'])
            np.random.seed(params['seed'])
        network.trainer.run(network, params)
    except UsageError as e:
        print('error: %s' % e, file=sys.stderr)
        return EXIT_USAGE
    except tf.errors.OpError as e:
        print(_op_error_line(e, params), file=sys.stderr)
        return EXIT_DATA
    except tf.compat.v1.train.NanLossDuringTrainingError:
        print('error: the training loss became NaN (diverged); lower --lr or raise --batch_size, '
              'then restart: the checkpoints in %s are from before' % params.get('log_dir'),
              file=sys.stderr)
        return EXIT_DATA
    except KeyboardInterrupt:
        print('error: interrupted', file=sys.stderr)
        return 130
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))

"""Command-line entry: a reference's ImageNet-trained weights -> a checkpoint directory of the
zoo, which train.py evaluates, exports, predicts with and fine-tunes from (--restore_path).

    python import_weights.py --network=NET --source=FILE_OR_CHECKPOINT --output_dir=DIR
        [--num_classes=N] [--image_size=S] [--num_cells=N --reduction_size=F (AmoebaNet)]

Bad input ends with one 'error: ...' line on stderr and exit status 2, as in train.py.
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import flags
import tensorflow as tf

import official
from common import config, run_record
from common.errors import UsageError
from common.weights import convert

EXIT_USAGE = 2


def _size_options():
    """The networks' own integer options (AmoebaNet's num_cells, reduction_size): the sizes
    a reference may have been trained at."""
    return [o for o in config.all_options(official.load_all())[len(config.SCHEMA):]
            if o.kind == 'int']


def parse(argv):
    values = flags.FlagValues()
    flags.DEFINE_enum('network', None, official.NETWORK_NAMES, 'Network to import for.',
                      flag_values=values)
    flags.DEFINE_string('source', None, 'The reference\'s weights: a .pth file (torchvision, '
                        'megvii) or a TF checkpoint prefix or directory (tensorflow/tpu).',
                        flag_values=values)
    flags.DEFINE_string('output_dir', None, 'New (or empty) directory for the zoo checkpoint.',
                        flag_values=values)
    flags.DEFINE_integer('num_classes', None, 'Classes of the converted classifier (default: '
                         'the reference\'s 1000); any other count leaves the classifier freshly '
                         'initialized, for fine-tuning.', lower_bound=2, flag_values=values)
    flags.DEFINE_integer('image_size', None, 'Image size the weights were trained at (default: '
                         'the network\'s).', lower_bound=16, flag_values=values)
    # The networks' own size options (AmoebaNet's num_cells, reduction_size), as train.py
    # takes them: a reference trained at other sizes converts to the zoo's network at those.
    for option in _size_options():
        flags.DEFINE_integer(option.name, None, option.help, flag_values=values)
    try:
        rest = values(argv)
    except flags.Error as e:
        raise UsageError(str(e)) from None
    if len(rest) > 1:
        raise UsageError('unexpected argument(s) %s: flags take the form --name=value'
                         % ' '.join(repr(a) for a in rest[1:]))
    for name in ('network', 'source', 'output_dir'):
        if values[name].value is None:
            raise UsageError('--%s is required (python import_weights.py --network=NET '
                             '--source=FILE --output_dir=DIR)' % name)
    return values


def size_options(values):
    """The size options given (convert checks them as train.py would)."""
    return {o.name: values[o.name].value for o in _size_options() if values[o.name].present}


def report(values, plan):
    """What was converted, what was left fresh, and how to use the directory."""
    lines = ['%s: %d reference tensors: %d converted into the variables of %s, %d ignored '
             '(batch-norm counters, training state, raw weights whose averages were taken)%s' % (
                 values.source, len(plan.assignments) + len(plan.ignored) + len(plan.fresh),
                 len(plan.assignments), values.network, len(plan.ignored),
                 ', %d of the classifier not used' % len(plan.fresh) if plan.fresh else '')]
    if plan.fresh:
        lines.append('classifier: the reference has %d classes, --num_classes=%d: %s freshly '
                     'initialized; fine-tune them (train.py --restore_path=%s excludes the '
                     'classifier by default)' % (plan.source_classes, plan.num_classes,
                                                 ', '.join(plan.fresh), values.output_dir))
    for scope, variables in plan.absent.items():
        lines.append('%s: the reference has none of it (trained without this training-only '
                     'branch, e.g. tensorflow/tpu --use_aux_head=false): its %d variables freshly '
                     'initialized; only the training loss uses them' % (scope, len(variables)))
    record = run_record.read(values.output_dir)
    lines.append('wrote %s: model.ckpt-0 and %s (preprocessing %s, %d classes, label_offset %d)'
                 % (values.output_dir, run_record.HPARAMS_FILE, record['preprocessing'],
                    record['num_classes'], record['label_offset']))
    lines.append('evaluate: python train.py --network=%s --mode=evaluate --eval_dir=%s '
                 '--data_dir=DATA' % (values.network, values.output_dir))
    return lines


def main(argv):
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.FATAL)
    try:
        values = parse(argv)
        plan = convert.convert(values.network, values.source, values.output_dir,
                               num_classes=values.num_classes, image_size=values.image_size,
                               options=size_options(values))
    except UsageError as e:
        print('error: %s' % e, file=sys.stderr)
        return EXIT_USAGE
    except tf.errors.OpError as e:  # an unreadable TF checkpoint, a failed save
        print('error: %s: %s' % (type(e).__name__, e.message.strip().splitlines()[0]),
              file=sys.stderr)
        return EXIT_USAGE
    for line in report(values, plan):
        print(line)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))

"""Checks a TFRecord directory the way training reads it: counts, label range, every image.

    python -m tfrecord_tools.verify --data_dir=DIR [--num_classes=N --label_offset=1]

Prints per-split counts and label ranges, or names the first bad record and its file.
"""
import sys

import tensorflow as tf
from absl import app, flags

from common import input_pipeline, records
from common.errors import UsageError

FLAGS = flags.FLAGS


def define_flags():
    """Command-line flags, defined only when run as a program (modules import freely)."""
    flags.DEFINE_string('data_dir', None, 'Directory with train-* and validation-* shards.')
    flags.DEFINE_integer('num_classes', None, 'If given, labels must lie in [0, num_classes) '
                         'after the offset.', lower_bound=1)
    flags.DEFINE_integer('label_offset', 1, 'Subtracted from stored labels.', lower_bound=0)


REQUIRED_KEYS = (records.ENCODED, records.LABEL)


class BadRecord(Exception):
    pass


def check_record(serialized, num_classes, label_offset):
    """Returns the stored label; raises BadRecord saying what is wrong."""
    try:
        example = tf.train.Example.FromString(serialized)
    except Exception:
        raise BadRecord('not a tf.train.Example') from None
    feature = example.features.feature
    for key in REQUIRED_KEYS:
        if key not in feature:
            raise BadRecord('missing key %s' % key)
    label = feature[records.LABEL].int64_list.value[0]
    if num_classes is not None and not 0 <= label - label_offset < num_classes:
        raise BadRecord('label %d minus offset %d is outside [0, %d)'
                        % (label, label_offset, num_classes))
    encoded = feature[records.ENCODED].bytes_list.value[0]
    try:  # the input pipeline's own check, then its decoder
        tf.io.decode_jpeg(input_pipeline.checked_jpeg(tf.constant(encoded)), channels=3)
    except tf.errors.InvalidArgumentError as e:
        if input_pipeline.NOT_JPEG in e.message:
            raise BadRecord('image does not decode: %s' % input_pipeline.NOT_JPEG) from None
        raise BadRecord('image does not decode: %s' % e.message.splitlines()[0]) from None
    except tf.errors.OpError as e:
        raise BadRecord('image does not decode: %s' % e.message.splitlines()[0]) from None
    return label


def verify_split(data_dir, split, num_classes, label_offset):
    """(records, files, lowest label, highest label); raises BadRecord naming file and index."""
    files = input_pipeline.find_files(data_dir, split)
    count, labels = 0, set()
    for path in files:
        index = -1
        try:
            for index, serialized in enumerate(tf.compat.v1.io.tf_record_iterator(path)):
                labels.add(check_record(serialized, num_classes, label_offset))
                count += 1
        except BadRecord as e:
            raise BadRecord('%s record %d: %s' % (path, index, e)) from None
        except tf.errors.OpError as e:
            raise BadRecord('%s after record %d: %s' % (path, index, e.message.splitlines()[0]))
    return count, len(files), min(labels), max(labels)


def main(argv):
    del argv
    tf.compat.v1.enable_eager_execution()
    if not FLAGS.data_dir:
        print('error: --data_dir is required', file=sys.stderr)
        return 2
    try:
        for split in records.SPLITS:
            count, files, low, high = verify_split(FLAGS.data_dir, split, FLAGS.num_classes,
                                                   FLAGS.label_offset)
            print('%s: %d records in %d files, stored labels %d..%d'
                  % (split, count, files, low, high))
    except (BadRecord, UsageError) as e:
        print('error: %s' % e, file=sys.stderr)
        return 1
    print('OK')
    return 0


if __name__ == '__main__':
    define_flags()
    app.run(main)

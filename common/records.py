"""The TFRecord format, written down once: slim's ImageNet feature keys, the label convention
and the shard names. The writer (tfrecord_tools), the input pipeline and the verifier use it.
"""
import json
import os

import tensorflow as tf

from common.errors import UsageError

SPLITS = ('train', 'validation')
# Shards are <split>-<index>-of-<count>; the patterns match nothing else (temporary files
# carry a suffix after the count).
SPLIT_PATTERNS = {split: '%s-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]' % split
                  for split in SPLITS}
# Stored labels are 1..N: slim keeps 0 for background. --label_offset (default 1) subtracts it.
FIRST_LABEL = 1
# The data directory's own description, written by tfrecord_tools: counts, num_classes, names.
DESCRIPTION_FILE = 'dataset.json'

ENCODED = 'image/encoded'
LABEL = 'image/class/label'
BBOX_KEYS = ('image/object/bbox/ymin', 'image/object/bbox/xmin', 'image/object/bbox/ymax',
             'image/object/bbox/xmax')
# What the input pipeline reads; every other key is informative.
PARSE_SPEC = dict({ENCODED: tf.io.FixedLenFeature([], tf.string),
                   LABEL: tf.io.FixedLenFeature([], tf.int64)},
                  **{k: tf.io.VarLenFeature(tf.float32) for k in BBOX_KEYS})


def shard_name(split, index, num_shards):
    return '%s-%.5d-of-%.5d' % (split, index, num_shards)


def shard_count(path):
    """N of a shard named <split>-<index>-of-<N>."""
    return int(path[-5:])


def read_description(data_dir):
    """The data directory's dataset.json as a dict, or None when it has none."""
    path = os.path.join(data_dir or '', DESCRIPTION_FILE)
    if not data_dir or not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError('cannot read %s: %s' % (path, e)) from None

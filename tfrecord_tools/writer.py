"""The one TFRecord writer of the format in common/records.py: slim ImageNet feature keys,
RGB JPEG, shards <split>-00000-of-0NNNN, and the directory's dataset.json.

Every builder goes through here, so demo data and ImageNet records have the same format.
"""
import io
import json
import multiprocessing
import os

import tensorflow as tf
from PIL import Image

from common import records

JPEG_QUALITY = 95


def to_rgb_jpeg(data):
    """(JPEG bytes, height, width): RGB JPEGs pass unchanged, anything else is re-encoded."""
    image = Image.open(io.BytesIO(data))
    if image.format == 'JPEG' and image.mode == 'RGB':
        return data, image.height, image.width
    out = io.BytesIO()
    image.convert('RGB').save(out, format='JPEG', quality=JPEG_QUALITY)
    return out.getvalue(), image.height, image.width


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def make_example(jpeg, height, width, label, synset, text, filename, boxes=()):
    """A tf.train.Example with slim's keys; boxes are (ymin, xmin, ymax, xmax) in [0, 1]."""
    ymin, xmin, ymax, xmax = (list(c) for c in zip(*boxes)) if boxes else ([], [], [], [])
    return tf.train.Example(features=tf.train.Features(feature={
        records.ENCODED: _bytes([jpeg]),
        'image/format': _bytes([b'JPEG']),
        'image/filename': _bytes([filename.encode()]),
        'image/height': _ints([height]),
        'image/width': _ints([width]),
        'image/colorspace': _bytes([b'RGB']),
        'image/channels': _ints([3]),
        records.LABEL: _ints([label]),
        'image/class/synset': _bytes([synset.encode()]),
        'image/class/text': _bytes([text.encode()]),
        records.BBOX_KEYS[0]: _floats(ymin),
        records.BBOX_KEYS[1]: _floats(xmin),
        records.BBOX_KEYS[2]: _floats(ymax),
        records.BBOX_KEYS[3]: _floats(xmax),
        'image/object/bbox/label': _ints([label] * len(ymin)),
    }))


def _write_shard(job):
    path, items, encode = job
    tmp = path + '.tmp'
    with tf.io.TFRecordWriter(tmp) as writer:
        for item in items:
            writer.write(encode(item).SerializeToString())
    os.replace(tmp, path)  # a shard is either complete or absent
    return len(items)


def write_split(items, encode, output_dir, split, num_shards, workers=1):
    """Writes items (in order, round-robin over shards) through encode(item) -> Example.

    encode must be a module-level function when workers > 1. Returns the record count.
    """
    os.makedirs(output_dir, exist_ok=True)
    num_shards = max(1, min(num_shards, len(items)))
    jobs = [(os.path.join(output_dir, records.shard_name(split, i, num_shards)), items[i::num_shards],
             encode) for i in range(num_shards)]
    if workers > 1:
        with multiprocessing.Pool(workers) as pool:
            return sum(pool.map(_write_shard, jobs))
    return sum(map(_write_shard, jobs))


def write_description(output_dir, counts, class_names, **extra):
    """Writes dataset.json: record counts per split, num_classes and the class names in label
    order (stored label = records.FIRST_LABEL + index), and any extra lists."""
    description = dict(counts, num_classes=len(class_names), class_names=list(class_names),
                       first_label=records.FIRST_LABEL, **extra)
    with open(os.path.join(output_dir, records.DESCRIPTION_FILE), 'w') as f:
        json.dump(description, f, indent=2)
    return description

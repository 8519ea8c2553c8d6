"""The one TFRecord writer of the format in common/records.py: slim ImageNet feature keys,
RGB JPEG, shards <split>-00000-of-0NNNN, and the directory's dataset.json.

Every builder goes through here, so demo data and ImageNet records have the same format.
"""
import contextlib
import glob
import io
import json
import multiprocessing
import os
import shutil
import tempfile

import tensorflow as tf
from PIL import Image

from common import images, records

JPEG_QUALITY = 95


def to_rgb_jpeg(data, max_pixels=images.MAX_IMAGE_PIXELS):
    """(JPEG bytes, height, width): RGB JPEGs pass unchanged, anything else is re-encoded.
    Raises TooLarge above max_pixels, before decoding (JPEGs passed on are decoded in training)."""
    with images.pil_limit_off():
        image = Image.open(io.BytesIO(data))  # reads the header only
        images.check_pixels(image.width, image.height, max_pixels)
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


class Unreadable(Exception):
    """An input image that cannot be read or is too large; encode functions raise it to have
    it skipped."""


class BuildError(Exception):
    """A build that cannot go on; nothing of it is left in the output directory."""


def _write_shard(job):
    """Writes one shard; returns (records written, [messages of images skipped])."""
    path, items, encode, skip_bad = job
    written, bad = 0, []
    with tf.io.TFRecordWriter(path) as writer:
        for item in items:
            try:
                example = encode(item)
            except Unreadable as e:
                if not skip_bad:
                    raise BuildError(str(e)) from None
                bad.append(str(e))
                continue
            writer.write(example.SerializeToString())
            written += 1
    return written, bad


@contextlib.contextmanager
def staged(output_dir):
    """A hidden staging folder inside output_dir whose files move into output_dir only when
    the block ends without an error: a failed build leaves the directory as it was."""
    os.makedirs(output_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.building-', dir=output_dir)
    try:
        yield staging
        _move_into(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into(source, target):
    """Moves source's entries into target; a folder already there gets its entries moved in."""
    for name in sorted(os.listdir(source)):
        src, dst = os.path.join(source, name), os.path.join(target, name)
        if os.path.isdir(src) and os.path.isdir(dst):
            _move_into(src, dst)
        else:
            os.replace(src, dst)


def num_shards_for(items, num_shards):
    return max(1, min(num_shards, len(items)))


def check_shard_set(output_dir, split, num_shards):
    """Refuses to add shards to a directory that holds another -of-N set of the split."""
    others = sorted({records.shard_count(p) for p in glob.glob(
        os.path.join(output_dir, records.SPLIT_PATTERNS[split]))} - {num_shards})
    if others:
        raise BuildError('%s already holds %s shards of another set (%s); remove them or write '
                         'to another --output_dir' % (output_dir, split, ', '.join(
                             '%s-*-of-%.5d' % (split, n) for n in others)))


def write_split(items, encode, directory, split, num_shards, workers=1, skip_bad=True):
    """Writes items (in order, round-robin over num_shards_for(items, num_shards) shards)
    through encode(item) -> Example; encode must be a module-level function (or a
    functools.partial of one) when workers > 1.
    Returns (records written, [messages of images skipped])."""
    num_shards = num_shards_for(items, num_shards)
    jobs = [(os.path.join(directory, records.shard_name(split, i, num_shards)),
             items[i::num_shards], encode, skip_bad) for i in range(num_shards)]
    if workers > 1:
        with multiprocessing.Pool(workers) as pool:
            results = pool.map(_write_shard, jobs)
    else:
        results = list(map(_write_shard, jobs))
    return sum(r[0] for r in results), [m for r in results for m in r[1]]


def write_description(output_dir, counts, class_names, **extra):
    """Writes dataset.json: record counts per split, num_classes and the class names in label
    order (stored label = records.FIRST_LABEL + index), and any extra lists."""
    description = dict(counts, num_classes=len(class_names), class_names=list(class_names),
                       first_label=records.FIRST_LABEL, **extra)
    with open(os.path.join(output_dir, records.DESCRIPTION_FILE), 'w') as f:
        json.dump(description, f, indent=2)
    return description

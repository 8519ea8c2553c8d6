"""Builds the demo dataset from real images that ship with scikit-learn: the 1,797 8x8
handwritten digits (10 classes), upscaled to 64x64 RGB JPEGs, split 80/20 per class.

    python -m tfrecord_tools.build_demo_dataset --output_dir=DIR

Beside the shards, samples/ holds two validation images of each class as JPEG files.
"""
import io
import os
import sys

import numpy as np
from absl import app, flags
from PIL import Image

from common import records
from tfrecord_tools import writer

FLAGS = flags.FLAGS


def define_flags():
    """Command-line flags, defined only when run as a program (modules import freely)."""
    flags.DEFINE_string('output_dir', None, 'Where to write train-* and validation-* shards.')
    flags.DEFINE_integer('image_px', 64, 'Side of the written images.', lower_bound=8)
    flags.DEFINE_integer('train_shards', 4, 'Number of training shards.', lower_bound=1)
    flags.DEFINE_integer('validation_shards', 2, 'Number of validation shards.', lower_bound=1)


NUM_CLASSES = 10
VALIDATION_FRACTION = 0.2
SPLIT_SEED = 0
# A few validation images also as files, for trying --mode=predict on the demo checkpoint.
SAMPLES_DIR = 'samples'
SAMPLES_PER_CLASS = 2


def _jpeg(pixels, size):
    image = Image.fromarray((pixels * (255.0 / 16.0)).astype(np.uint8)).convert('RGB')
    image = image.resize((size, size), Image.BILINEAR)
    out = io.BytesIO()
    image.save(out, format='JPEG', quality=writer.JPEG_QUALITY)
    return out.getvalue()


def _encode(item):
    pixels, label, index, size = item
    return writer.make_example(_jpeg(pixels, size), size, size, records.FIRST_LABEL + int(label),
                               'digit_%d' % label,
                               'handwritten digit %d' % label, 'digit_%04d.jpg' % index)


def _write_samples(items, directory):
    os.makedirs(directory)
    written = {}
    for pixels, label, index, size in items:
        if written.setdefault(label, 0) < SAMPLES_PER_CLASS:
            written[label] += 1
            with open(os.path.join(directory, 'digit_%d_%04d.jpg' % (label, index)), 'wb') as f:
                f.write(_jpeg(pixels, size))


def build(output_dir, image_px=64, train_shards=4, validation_shards=2):
    """Writes the dataset; returns its description (counts, num_classes, class names)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    rng = np.random.RandomState(SPLIT_SEED)
    train, validation = [], []
    for label in range(NUM_CLASSES):
        indices = rng.permutation(np.flatnonzero(digits.target == label))
        cut = int(round(len(indices) * VALIDATION_FRACTION))
        validation.extend(indices[:cut])
        train.extend(indices[cut:])
    rng.shuffle(train)
    counts, splits = {'image_px': image_px}, {}
    for split, indices, shards in (('train', train, train_shards),
                                   ('validation', sorted(validation), validation_shards)):
        items = [(digits.images[i], digits.target[i], int(i), image_px) for i in indices]
        writer.check_shard_set(output_dir, split, writer.num_shards_for(items, shards))
        splits[split] = items, shards
    with writer.staged(output_dir) as staging:
        for split, (items, shards) in splits.items():
            counts[split], _ = writer.write_split(items, _encode, staging, split, shards)
        _write_samples(splits['validation'][0], os.path.join(staging, SAMPLES_DIR))
        # dataset.json arrives with the shards: its presence means the data are complete
        return writer.write_description(staging, counts,
                                        ['digit_%d' % label for label in range(NUM_CLASSES)])


def main(argv):
    del argv
    if not FLAGS.output_dir:
        print('error: --output_dir is required', file=sys.stderr)
        return 2
    try:
        counts = build(FLAGS.output_dir, FLAGS.image_px, FLAGS.train_shards,
                       FLAGS.validation_shards)
    except OSError as e:
        print('error: cannot write --output_dir=%s: %s' % (FLAGS.output_dir, e.strerror or e),
              file=sys.stderr)
        return 1
    except writer.BuildError as e:
        print('error: %s' % e, file=sys.stderr)
        return 1
    print('demo dataset in %s: %d train, %d validation images, %d classes (labels 1..%d)' % (
        FLAGS.output_dir, counts['train'], counts['validation'], NUM_CLASSES, NUM_CLASSES))
    return 0


if __name__ == '__main__':
    define_flags()
    app.run(main)

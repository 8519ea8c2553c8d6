"""Builds slim-format ImageNet TFRecords from an image tree.

    python -m tfrecord_tools.build_imagenet_tfrecords --input_dir=TREE --output_dir=OUT

TREE holds train/<class>/<image> and validation/<class>/<image>. Class k (0-based, sorted
folder names or the order of --labels_file) is stored as label k + 1: 0 is slim's background.
PNG, CMYK and grayscale images are re-encoded as RGB JPEG. Optional --bbox_dir holds
PASCAL-VOC XML files named <image basename>.xml (ImageNet's bounding-box release).
"""
import os
import random
import sys
import xml.etree.ElementTree as ElementTree

from absl import app, flags

from common import records
from tfrecord_tools import writer

FLAGS = flags.FLAGS


def define_flags():
    """Command-line flags, defined only when run as a program (modules import freely)."""
    flags.DEFINE_string('input_dir', None, 'Tree with train/<class>/ and validation/<class>/.')
    flags.DEFINE_string('output_dir', None, 'Where to write the shards.')
    flags.DEFINE_string('labels_file', None,
                        'Optional: one class folder name per line, optionally "<name>\\t<text>".')
    flags.DEFINE_string('bbox_dir', None, 'Optional: PASCAL-VOC XML boxes, <basename>.xml.')
    flags.DEFINE_integer('train_shards', 1024, 'Training shards.', lower_bound=1)
    flags.DEFINE_integer('validation_shards', 128, 'Validation shards.', lower_bound=1)
    flags.DEFINE_integer('workers', os.cpu_count() or 1, 'Worker processes.', lower_bound=1)
    flags.DEFINE_bool('skip_bad_images', True, 'List and skip unreadable images (the summary '
                      'counts them); --noskip_bad_images stops at the first one, exit 1.')


TRAIN_SHUFFLE_SEED = 12345  # slim's


def read_labels(labels_file, train_dir):
    """[(folder name, human-readable text)] in label order."""
    if labels_file:
        with open(labels_file) as f:
            rows = [line.rstrip('\n').split('\t', 1) for line in f if line.strip()]
        return [(r[0].strip(), r[1].strip() if len(r) > 1 else r[0].strip()) for r in rows]
    names = sorted(d for d in os.listdir(train_dir) if os.path.isdir(os.path.join(train_dir, d)))
    return [(n, n) for n in names]


def read_boxes(xml_path):
    """Boxes (ymin, xmin, ymax, xmax) relative to the image size, clipped to [0, 1]."""
    root = ElementTree.parse(xml_path).getroot()
    width = float(root.find('size/width').text)
    height = float(root.find('size/height').text)
    boxes = []
    for box in root.iter('bndbox'):
        get = lambda k: float(box.find(k).text)  # noqa: E731
        clip = lambda v: min(max(v, 0.0), 1.0)  # noqa: E731
        ymin, xmin = clip(get('ymin') / height), clip(get('xmin') / width)
        ymax, xmax = clip(get('ymax') / height), clip(get('xmax') / width)
        if ymax > ymin and xmax > xmin:
            boxes.append((ymin, xmin, ymax, xmax))
    return boxes


def encode(item):
    path, label, synset, text, xml_path = item
    try:
        with open(path, 'rb') as f:
            jpeg, height, width = writer.to_rgb_jpeg(f.read())
        boxes = read_boxes(xml_path) if xml_path else []
    except Exception as e:  # pylint: disable=broad-except
        raise writer.Unreadable('cannot read %s: %s' % (path, e)) from None
    return writer.make_example(jpeg, height, width, label, synset, text,
                               os.path.basename(path), boxes)


def list_split(split_dir, labels, bbox_dir):
    items = []
    for index, (synset, text) in enumerate(labels):
        folder = os.path.join(split_dir, synset)
        if not os.path.isdir(folder):
            raise writer.BuildError('class folder %s is missing' % folder)
        for name in sorted(os.listdir(folder)):
            xml = None
            if bbox_dir:
                candidate = os.path.join(bbox_dir, os.path.splitext(name)[0] + '.xml')
                xml = candidate if os.path.exists(candidate) else None
            items.append((os.path.join(folder, name), records.FIRST_LABEL + index, synset,
                          text, xml))
    if not items:
        raise writer.BuildError('no images under %s' % split_dir)
    return items


def build(input_dir, output_dir, labels_file=None, bbox_dir=None, train_shards=1024,
          validation_shards=128, workers=1, skip_bad_images=True):
    """Writes both splits; returns ({split: records}, [unreadable images skipped])."""
    train_dir = os.path.join(input_dir, 'train')
    for split in records.SPLITS:
        if not os.path.isdir(os.path.join(input_dir, split)):
            raise writer.BuildError('%s has no %s/ folder' % (input_dir, split))
    labels = read_labels(labels_file, train_dir)
    if not labels:
        raise writer.BuildError('no classes found in %s' % (labels_file or train_dir))
    splits = {}
    for split, shards in (('train', train_shards), ('validation', validation_shards)):
        items = list_split(os.path.join(input_dir, split), labels, bbox_dir)
        if split == 'train':
            random.Random(TRAIN_SHUFFLE_SEED).shuffle(items)
        splits[split] = (items, shards)
        writer.check_shard_set(output_dir, split, writer.num_shards_for(items, shards))
    counts, skipped = {}, []
    with writer.staged(output_dir) as staging:  # all of the build, or nothing
        for split, (items, shards) in splits.items():
            counts[split], bad = writer.write_split(items, encode, staging, split, shards,
                                                    workers, skip_bad_images)
            skipped += bad
        writer.write_description(staging, counts, [text for _, text in labels],
                                 synsets=[synset for synset, _ in labels])
    return counts, skipped


def main(argv):
    del argv
    if not FLAGS.input_dir or not FLAGS.output_dir:
        print('error: --input_dir and --output_dir are required', file=sys.stderr)
        return 2
    try:
        counts, skipped = build(FLAGS.input_dir, FLAGS.output_dir, FLAGS.labels_file,
                                FLAGS.bbox_dir, FLAGS.train_shards, FLAGS.validation_shards,
                                FLAGS.workers, FLAGS.skip_bad_images)
    except (writer.BuildError, OSError) as e:
        print('error: %s' % e, file=sys.stderr)
        return 1
    for message in skipped:
        print('skipped: %s' % message)
    print('wrote %d train and %d validation records to %s; skipped %d unreadable image(s)'
          % (counts['train'], counts['validation'], FLAGS.output_dir, len(skipped)))
    return 0


if __name__ == '__main__':
    define_flags()
    app.run(main)

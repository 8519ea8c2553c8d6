"""Builds slim-format ImageNet TFRecords from an image tree.

    python -m tfrecord_tools.build_imagenet_tfrecords --input_dir=TREE --output_dir=OUT

TREE holds train/<class>/<image> and either validation/<class>/<image> or, as ImageNet ships
it, validation/<image> with --validation_labels: Kaggle's LOC_val_solution.csv or one synset
per line in sorted file order (slim's imagenet_2012_validation_synset_labels.txt). Class k
(0-based, sorted folder names or the order of --labels_file) is stored as label k + 1: 0 is
slim's background. PNG, CMYK and grayscale images are re-encoded as RGB JPEG; images above
--max_image_pixels are refused from their header. Optional --bbox_dir holds PASCAL-VOC XML
files named <image basename>.xml (ImageNet's bounding-box release).
"""
import functools
import os
import random
import sys
import xml.etree.ElementTree as ElementTree

from absl import app, flags

from common import images, records
from tfrecord_tools import writer

FLAGS = flags.FLAGS


def define_flags():
    """Command-line flags, defined only when run as a program (modules import freely)."""
    flags.DEFINE_string('input_dir', None, 'Tree with train/<class>/ and validation/<class>/.')
    flags.DEFINE_string('output_dir', None, 'Where to write the shards.')
    flags.DEFINE_string('labels_file', None,
                        'Optional: one class folder name per line, optionally "<name>\\t<text>".')
    flags.DEFINE_string('bbox_dir', None, 'Optional: PASCAL-VOC XML boxes, <basename>.xml.')
    flags.DEFINE_string('validation_labels', None,
                        'Labels of a flat validation/ folder: LOC_val_solution.csv (Kaggle) or '
                        'one synset per line in sorted file order (slim).')
    flags.DEFINE_integer('max_image_pixels', images.MAX_IMAGE_PIXELS,
                         'Images with more pixels (width x height, read from the header) are '
                         'refused before decoding, as unreadable ones are.', lower_bound=1)
    flags.DEFINE_integer('train_shards', 1024, 'Training shards.', lower_bound=1)
    flags.DEFINE_integer('validation_shards', 128, 'Validation shards.', lower_bound=1)
    flags.DEFINE_integer('workers', os.cpu_count() or 1, 'Worker processes.', lower_bound=1)
    flags.DEFINE_bool('skip_bad_images', True, 'List and skip unreadable or too large images '
                      '(the summary counts them); --noskip_bad_images stops at the first, exit 1.')


TRAIN_SHUFFLE_SEED = 12345  # slim's
CSV_HEADER = 'ImageId,PredictionString'  # Kaggle's LOC_val_solution.csv
SHOWN = 5  # names quoted in an error line


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
        get = lambda k: float(box.find(k).text)
        clip = lambda v: min(max(v, 0.0), 1.0)
        ymin, xmin = clip(get('ymin') / height), clip(get('xmin') / width)
        ymax, xmax = clip(get('ymax') / height), clip(get('xmax') / width)
        if ymax > ymin and xmax > xmin:
            boxes.append((ymin, xmin, ymax, xmax))
    return boxes


def encode(item, max_pixels=images.MAX_IMAGE_PIXELS):
    path, label, synset, text, xml_path = item
    try:
        with open(path, 'rb') as f:
            jpeg, height, width = writer.to_rgb_jpeg(f.read(), max_pixels)
        boxes = read_boxes(xml_path) if xml_path else []
    except images.TooLarge as e:
        raise writer.Unreadable('%s is %dx%d (%s pixels), above --max_image_pixels=%d; raise the '
                                'flag to keep such images' % (path, e.width, e.height, format(
                                    e.width * e.height, ','), e.limit)) from None
    except Exception as e:
        raise writer.Unreadable('cannot read %s: %s' % (path, e)) from None
    return writer.make_example(jpeg, height, width, label, synset, text,
                               os.path.basename(path), boxes)


def _item(path, labels, index, bbox_dir):
    """(path, stored label, synset, text, box file or None): what encode reads."""
    xml = None
    if bbox_dir:
        candidate = os.path.join(bbox_dir, os.path.splitext(os.path.basename(path))[0] + '.xml')
        xml = candidate if os.path.exists(candidate) else None
    synset, text = labels[index]
    return path, records.FIRST_LABEL + index, synset, text, xml


def list_split(split_dir, labels, bbox_dir):
    items = []
    for index, (synset, _) in enumerate(labels):
        folder = os.path.join(split_dir, synset)
        if not os.path.isdir(folder):
            raise writer.BuildError('class folder %s is missing' % folder)
        items += [_item(os.path.join(folder, name), labels, index, bbox_dir)
                  for name in sorted(os.listdir(folder))]
    if not items:
        raise writer.BuildError('no images under %s' % split_dir)
    return items


def flat_files(split_dir):
    """The sorted image files of a folder without class folders; None if it has class folders
    or no files (hidden files such as .DS_Store are no images)."""
    names = [n for n in sorted(os.listdir(split_dir)) if not n.startswith('.')]
    if not names or any(os.path.isdir(os.path.join(split_dir, n)) for n in names):
        return None
    return names


def _shown(names):
    return ', '.join(names[:SHOWN]) + (', ...' if len(names) > SHOWN else '')


def read_synset_list(labels_file, lines, names, split_dir):
    """{file name: synset}: line k labels the k-th file in sorted order (slim's file)."""
    synsets = [line.strip() for line in lines if line.strip()]
    if len(synsets) != len(names):
        raise writer.BuildError(
            '--validation_labels=%s has %d synsets (one per line) but %s holds %d images; line k '
            'gives the label of the k-th file in sorted order'
            % (labels_file, len(synsets), split_dir, len(names)))
    return dict(zip(names, synsets))


def read_kaggle_csv(labels_file, lines, names, split_dir):
    """{file name: synset} from ImageId,PredictionString rows; the synset is the first word."""
    by_id = {}
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        image_id, _, prediction = line.strip().partition(',')
        if not prediction.split():
            raise writer.BuildError('--validation_labels=%s line %d: expected ImageId,'
                                    'PredictionString (synset first), got %r'
                                    % (labels_file, number, line.strip()))
        if image_id in by_id:
            raise writer.BuildError('--validation_labels=%s line %d: ImageId %s appears twice'
                                    % (labels_file, number, image_id))
        by_id[image_id] = prediction.split()[0]
    stems = {os.path.splitext(name)[0]: name for name in names}
    missing = [name for stem, name in stems.items() if stem not in by_id]
    extra = [image_id for image_id in by_id if image_id not in stems]
    problems = []
    if missing:
        problems.append('%d image(s) without a row (%s)' % (len(missing), _shown(missing)))
    if extra:
        problems.append('%d row(s) without an image (%s)' % (len(extra), _shown(extra)))
    if problems:
        raise writer.BuildError('--validation_labels=%s does not match %s: %s'
                                % (labels_file, split_dir, '; '.join(problems)))
    return {name: by_id[stem] for stem, name in stems.items()}


def list_flat_split(split_dir, names, labels, bbox_dir, labels_file):
    """Items of a flat folder labelled by labels_file, whose format is told by its first line;
    returns (items, the format's description)."""
    try:
        with open(labels_file, encoding='utf-8-sig') as f:  # a CSV saved by Excel has a BOM
            lines = f.read().splitlines()
    except OSError as e:
        raise writer.BuildError('cannot read --validation_labels=%s: %s'
                                % (labels_file, e.strerror or e)) from None
    if lines and lines[0].strip() == CSV_HEADER:
        synset_of, layout = read_kaggle_csv(labels_file, lines, names, split_dir), (
            'Kaggle LOC_val_solution.csv')
    else:
        synset_of, layout = read_synset_list(labels_file, lines, names, split_dir), (
            'one synset per line, in sorted file order')
    index_of = {synset: index for index, (synset, _) in enumerate(labels)}
    unknown = list(dict.fromkeys(s for s in synset_of.values() if s not in index_of))
    if unknown:
        raise writer.BuildError('--validation_labels=%s names %d synset(s) that are not training '
                                'classes: %s' % (labels_file, len(unknown), _shown(unknown)))
    return [_item(os.path.join(split_dir, name), labels, index_of[synset_of[name]], bbox_dir)
            for name in names], layout


def list_validation(split_dir, labels, bbox_dir, labels_file):
    """(items, layout line): class folders as train/, or a flat folder with labels_file."""
    names = flat_files(split_dir)
    if names is None:
        if labels_file:
            raise writer.BuildError('--validation_labels=%s is for a flat validation folder, but '
                                    '%s holds class folders' % (labels_file, split_dir))
        return (list_split(split_dir, labels, bbox_dir),
                'validation: class folders (validation/<class>/)')
    if not labels_file:
        raise writer.BuildError('%s holds images but no class folders; give their labels with '
                                '--validation_labels=FILE (LOC_val_solution.csv or one synset '
                                'per line in sorted file order)' % split_dir)
    items, layout = list_flat_split(split_dir, names, labels, bbox_dir, labels_file)
    return items, 'validation: flat folder of %d images, labels from %s (%s)' % (
        len(items), labels_file, layout)


def build(input_dir, output_dir, labels_file=None, bbox_dir=None, train_shards=1024,
          validation_shards=128, workers=1, skip_bad_images=True, validation_labels=None,
          max_image_pixels=images.MAX_IMAGE_PIXELS, report=print):
    """Writes both splits; returns ({split: records}, [messages of images skipped]).
    report(line) says the validation layout found, before any image is read."""
    train_dir = os.path.join(input_dir, 'train')
    for split in records.SPLITS:
        if not os.path.isdir(os.path.join(input_dir, split)):
            raise writer.BuildError('%s has no %s/ folder' % (input_dir, split))
    labels = read_labels(labels_file, train_dir)
    if not labels:
        raise writer.BuildError('no classes found in %s' % (labels_file or train_dir))
    splits = {}
    for split, shards in (('train', train_shards), ('validation', validation_shards)):
        if split == 'train':
            items = list_split(train_dir, labels, bbox_dir)
            random.Random(TRAIN_SHUFFLE_SEED).shuffle(items)
        else:
            items, layout = list_validation(os.path.join(input_dir, split), labels, bbox_dir,
                                            validation_labels)
            report(layout)
        splits[split] = (items, shards)
        writer.check_shard_set(output_dir, split, writer.num_shards_for(items, shards))
    counts, skipped = {}, []
    encode_limited = functools.partial(encode, max_pixels=max_image_pixels)
    with writer.staged(output_dir) as staging:  # all of the build, or nothing
        for split, (items, shards) in splits.items():
            counts[split], bad = writer.write_split(items, encode_limited, staging, split, shards,
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
                                FLAGS.workers, FLAGS.skip_bad_images, FLAGS.validation_labels,
                                FLAGS.max_image_pixels)
    except (writer.BuildError, OSError) as e:
        print('error: %s' % e, file=sys.stderr)
        return 1
    for message in skipped:
        print('skipped: %s' % message)
    print('wrote %d train and %d validation records to %s; skipped %d image(s)'
          % (counts['train'], counts['validation'], FLAGS.output_dir, len(skipped)))
    return 0


if __name__ == '__main__':
    define_flags()
    app.run(main)

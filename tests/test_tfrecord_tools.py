"""tfrecord_tools on real photos (scikit-image's bundled samples) and tiny generated trees:
tree -> records -> verify; ImageNet's flat validation folder; the pixel limit."""
import io
import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from skimage import data as samples

from common import images, input_pipeline, records
from common.errors import UsageError
from conftest import ROOT
from tfrecord_tools import build_imagenet_tfrecords, writer

XML = '''<annotation><size><width>{w}</width><height>{h}</height></size>
<object><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox>
</object></annotation>'''


def _save(image, path, fmt, mode=None):
    picture = Image.fromarray(image)
    if mode:
        picture = picture.convert(mode)
    picture.save(path, format=fmt)


@pytest.fixture(scope='module')
def image_tree(tmp_path_factory):
    """train/ and validation/ with two classes: colour photos saved as PNG, CMYK JPEG and RGB
    JPEG; grayscale photos as PNG and JPEG. One box file."""
    root = tmp_path_factory.mktemp('tree')
    files = {
        ('train', 'n01_colour'): [(samples.chelsea(), 'cat.png', 'PNG', None),
                                  (samples.coffee(), 'coffee.JPEG', 'JPEG', 'CMYK'),
                                  (samples.astronaut(), 'astronaut.JPEG', 'JPEG', None)],
        ('train', 'n02_gray'): [(samples.camera(), 'camera.png', 'PNG', None),
                                (samples.coins(), 'coins.JPEG', 'JPEG', None)],
        ('validation', 'n01_colour'): [(samples.rocket(), 'rocket.JPEG', 'JPEG', None)],
        ('validation', 'n02_gray'): [(samples.moon(), 'moon.JPEG', 'JPEG', None)],
    }
    for (split, cls), members in files.items():
        os.makedirs(root / split / cls)
        for image, name, fmt, mode in members:
            _save(image, str(root / split / cls / name), fmt, mode)
    os.makedirs(root / 'boxes')
    h, w = samples.astronaut().shape[:2]
    (root / 'boxes' / 'astronaut.xml').write_text(XML.format(w=w, h=h, x0=w // 4, y0=0,
                                                             x1=w // 2, y1=h // 2))
    return root


def _records(path):
    return [tf.train.Example.FromString(r) for r in tf.compat.v1.io.tf_record_iterator(path)]


def test_build_tree_to_slim_records(image_tree, tmp_path):
    out = str(tmp_path / 'records')
    counts, skipped = build_imagenet_tfrecords.build(str(image_tree), out, bbox_dir=str(
        image_tree / 'boxes'), train_shards=2, validation_shards=1, workers=2)
    assert counts == {'train': 5, 'validation': 2} and skipped == []
    assert sorted(os.listdir(out)) == ['dataset.json', 'train-00000-of-00002',
                                       'train-00001-of-00002', 'validation-00000-of-00001']
    description = records.read_description(out)
    assert (description['num_classes'], description['synsets']) == (2, ['n01_colour', 'n02_gray'])
    examples = _records(os.path.join(out, 'train-00000-of-00002')) + _records(
        os.path.join(out, 'train-00001-of-00002'))
    by_name = {e.features.feature['image/filename'].bytes_list.value[0].decode(): e.features.feature
               for e in examples}
    assert sorted(by_name) == ['astronaut.JPEG', 'camera.png', 'cat.png', 'coffee.JPEG',
                               'coins.JPEG']
    for name, feature in by_name.items():
        label = feature['image/class/label'].int64_list.value[0]
        assert label == (1 if name in ('astronaut.JPEG', 'cat.png', 'coffee.JPEG') else 2)
        image = Image.open(io.BytesIO(feature['image/encoded'].bytes_list.value[0]))
        assert (image.format, image.mode) == ('JPEG', 'RGB'), name  # PNG/CMYK/gray re-encoded
        assert [feature['image/height'].int64_list.value[0],
                feature['image/width'].int64_list.value[0]] == [image.height, image.width]
    astronaut = by_name['astronaut.JPEG']
    assert [astronaut['image/object/bbox/' + k].float_list.value[0]
            for k in ('ymin', 'xmin', 'ymax', 'xmax')] == pytest.approx([0, 0.25, 0.5, 0.5])
    assert len(by_name['cat.png']['image/object/bbox/xmin'].float_list.value) == 0
    assert by_name['cat.png']['image/class/synset'].bytes_list.value[0] == b'n01_colour'


def test_labels_file_sets_the_order(image_tree, tmp_path):
    labels = tmp_path / 'labels.txt'
    labels.write_text('n02_gray\tgray things\nn01_colour\tcolour things\n')
    out = str(tmp_path / 'records')
    build_imagenet_tfrecords.build(str(image_tree), out, labels_file=str(labels),
                                   train_shards=1, validation_shards=1)
    for example in _records(os.path.join(out, 'validation-00000-of-00001')):
        feature = example.features.feature
        name = feature['image/filename'].bytes_list.value[0]
        assert feature['image/class/label'].int64_list.value[0] == (1 if name == b'moon.JPEG'
                                                                     else 2)
        assert feature['image/class/text'].bytes_list.value[0] in (b'gray things',
                                                                    b'colour things')


def _verify(data_dir, *args):
    return subprocess.run([sys.executable, '-m', 'tfrecord_tools.verify', '--data_dir=' + data_dir]
                          + list(args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))


def test_verify_counts_and_names_the_first_bad_record(demo_dir, tmp_path):
    good = _verify(demo_dir, '--num_classes=10')
    assert good.returncode == 0, good.stderr
    assert good.stdout.splitlines() == [
        'train: 1438 records in 4 files, stored labels 1..10',
        'validation: 359 records in 2 files, stored labels 1..10', 'OK']

    bad_dir = tmp_path / 'bad'
    shutil.copytree(demo_dir, str(bad_dir))
    path = str(bad_dir / 'validation-00001-of-00002')
    examples = _records(path)
    examples[3].features.feature['image/class/label'].int64_list.value[0] = 11
    examples[5].features.feature['image/encoded'].bytes_list.value[0] = b'junk'
    with tf.io.TFRecordWriter(path) as out:
        for example in examples:
            out.write(example.SerializeToString())
    result = _verify(str(bad_dir), '--num_classes=10')
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        'error: %s record 3: label 11 minus offset 1 is outside [0, 10)' % path)

    examples[3].features.feature['image/class/label'].int64_list.value[0] = 4
    with tf.io.TFRecordWriter(path) as out:
        for example in examples:
            out.write(example.SerializeToString())
    result = _verify(str(bad_dir))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        'error: %s record 5: image does not decode' % path)

    # A PNG decodes with some TensorFlow ops, but training reads JPEG only: verify must agree.
    png = io.BytesIO()
    Image.new('RGB', (8, 8), (10, 200, 30)).save(png, format='PNG')
    examples[5].features.feature['image/encoded'].bytes_list.value[0] = png.getvalue()
    with tf.io.TFRecordWriter(path) as out:
        for example in examples:
            out.write(example.SerializeToString())
    result = _verify(str(bad_dir))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        'error: %s record 5: image does not decode: image/encoded is not a JPEG image '
        '(tfrecord_tools re-encodes PNG/CMYK/grayscale)' % path)

    with open(path, 'r+b') as f:  # break the first record's checksum
        f.seek(40)
        f.write(b'\x00' * 16)
    result = _verify(str(bad_dir))
    assert result.returncode == 1 and 'error: %s after record -1' % path in result.stderr


def test_shard_names_follow_slim():
    assert records.shard_name('train', 7, 1024) == 'train-00007-of-01024'
    assert records.shard_name('validation', 127, 128) == 'validation-00127-of-00128'


def test_unreadable_images_are_listed_and_skipped(image_tree, tmp_path):
    bad = image_tree / 'train' / 'n01_colour' / 'broken.JPEG'
    bad.write_bytes(b'\xff\xd8 not really a jpeg')
    out = str(tmp_path / 'records')
    counts, skipped = build_imagenet_tfrecords.build(str(image_tree), out, train_shards=2,
                                                     validation_shards=1)
    assert counts == {'train': 5, 'validation': 2}
    assert len(skipped) == 1 and skipped[0].startswith('cannot read %s' % bad)
    strict = str(tmp_path / 'strict')
    with pytest.raises(writer.BuildError, match='cannot read %s' % bad):
        build_imagenet_tfrecords.build(str(image_tree), strict, train_shards=2,
                                       validation_shards=1, skip_bad_images=False)
    assert os.listdir(strict) == []  # nothing half-built is left


def test_shard_sets_never_mix(image_tree, tmp_path):
    out = str(tmp_path / 'records')
    build_imagenet_tfrecords.build(str(image_tree), out, train_shards=2, validation_shards=1)
    with pytest.raises(writer.BuildError, match='already holds train shards of another set '
                                                '\\(train-\\*-of-00002\\)'):
        build_imagenet_tfrecords.build(str(image_tree), out, train_shards=3, validation_shards=1)
    assert sorted(f for f in os.listdir(out) if f.startswith('train')) == [
        'train-00000-of-00002', 'train-00001-of-00002']
    # A mix made by hand (or an old builder) is refused when training starts.
    shutil.copy(os.path.join(out, 'train-00000-of-00002'),
                os.path.join(out, 'train-00000-of-00003'))
    open(os.path.join(out, 'train-00001-of-00002.tmp'), 'w').close()  # never a shard
    with pytest.raises(UsageError, match='mixes train shard sets \\(train-\\*-of-00002, '
                                         'train-\\*-of-00003\\)'):
        input_pipeline.find_files(out, 'train')
    os.remove(os.path.join(out, 'train-00000-of-00003'))
    assert [os.path.basename(f) for f in input_pipeline.find_files(out, 'train')] == [
        'train-00000-of-00002', 'train-00001-of-00002']


def test_demo_dataset_ships_sample_files_of_every_class(demo_dir, tmp_path):
    """samples/: two validation images per class as JPEG files (README's predict example);
    a rebuild into the same directory moves them into the existing folder."""
    names = sorted(os.listdir(os.path.join(demo_dir, 'samples')))
    assert len(names) == 20
    assert sorted({n.split('_')[1] for n in names}) == [str(d) for d in range(10)]
    image = Image.open(os.path.join(demo_dir, 'samples', names[0]))
    assert (image.format, image.size, image.mode) == ('JPEG', (64, 64), 'RGB')
    out = str(tmp_path / 'demo')
    from tfrecord_tools import build_demo_dataset
    for _ in range(2):
        build_demo_dataset.build(out, image_px=16, train_shards=1, validation_shards=1)
    assert sorted(os.listdir(os.path.join(out, 'samples'))) == names


VAL_NAMES = ['ILSVRC2012_val_00000001.JPEG', 'ILSVRC2012_val_00000002.JPEG',
             'ILSVRC2012_val_00000003.JPEG']
VAL_SYNSETS = ['n02', 'n01', 'n02']  # of VAL_NAMES, in sorted file order


def _tiny_jpeg(path, seed):
    pixels = np.random.RandomState(seed).randint(0, 256, (8, 8, 3)).astype(np.uint8)
    Image.fromarray(pixels).save(str(path), format='JPEG')


@pytest.fixture
def flat_tree(tmp_path):
    """train/n01, train/n02 and validation/ as ImageNet ships it: one flat folder, no labels."""
    root = tmp_path / 'flat'
    for seed, synset in enumerate(['n01', 'n02']):
        os.makedirs(str(root / 'train' / synset))
        _tiny_jpeg(root / 'train' / synset / 'a.JPEG', seed)
    os.makedirs(str(root / 'validation'))
    for seed, name in enumerate(VAL_NAMES):
        _tiny_jpeg(root / 'validation' / name, 10 + seed)
    return root


def _kaggle_csv(path, rows):
    """LOC_val_solution.csv: synset first in PredictionString, then a box, maybe more."""
    path.write_text('ImageId,PredictionString\n' + ''.join(
        '%s,%s 1 2 5 6 %s 0 0 3 3\n' % (image_id, synset, synset) for image_id, synset in rows))
    return str(path)


def _stored_labels(out):
    path = os.path.join(out, 'validation-00000-of-00001')
    features = [e.features.feature for e in _records(path)]
    return {f['image/filename'].bytes_list.value[0].decode(): (
        f['image/class/label'].int64_list.value[0], f['image/class/synset'].bytes_list.value[0])
        for f in features}


EXPECTED_LABELS = {VAL_NAMES[0]: (2, b'n02'), VAL_NAMES[1]: (1, b'n01'), VAL_NAMES[2]: (2, b'n02')}


def test_flat_validation_with_kaggle_csv(flat_tree, tmp_path, capsys):
    # rows in any order, as Kaggle's file is not sorted
    rows = [(os.path.splitext(n)[0], s) for n, s in zip(VAL_NAMES, VAL_SYNSETS)][::-1]
    labels = _kaggle_csv(tmp_path / 'LOC_val_solution.csv', rows)
    out = str(tmp_path / 'records')
    counts, skipped = build_imagenet_tfrecords.build(
        str(flat_tree), out, train_shards=1, validation_shards=1, validation_labels=labels)
    assert counts == {'train': 2, 'validation': 3} and skipped == []
    assert _stored_labels(out) == EXPECTED_LABELS
    assert ('validation: flat folder of 3 images, labels from %s (Kaggle LOC_val_solution.csv)'
            % labels) in capsys.readouterr().out


def test_flat_validation_with_slim_synset_list(flat_tree, tmp_path, capsys):
    labels = tmp_path / 'imagenet_2012_validation_synset_labels.txt'
    labels.write_text('\n'.join(VAL_SYNSETS) + '\n')
    out = str(tmp_path / 'records')
    build_imagenet_tfrecords.build(str(flat_tree), out, train_shards=1, validation_shards=1,
                                   validation_labels=str(labels))
    assert _stored_labels(out) == EXPECTED_LABELS
    assert ('validation: flat folder of 3 images, labels from %s (one synset per line, in '
            'sorted file order)' % labels) in capsys.readouterr().out


def test_class_folder_layout_is_reported(image_tree, tmp_path, capsys):
    build_imagenet_tfrecords.build(str(image_tree), str(tmp_path / 'records'), train_shards=1,
                                   validation_shards=1)
    assert 'validation: class folders (validation/<class>/)' in capsys.readouterr().out


IDS = [os.path.splitext(n)[0] for n in VAL_NAMES]


@pytest.mark.parametrize('labels, message', [
    (None, 'holds images but no class folders; give their labels with --validation_labels'),
    ('n02\nn01\n', 'has 2 synsets \\(one per line\\) but .*validation holds 3 images'),
    ('n02\nn01\nn07\n', 'names 1 synset\\(s\\) that are not training classes: n07'),
    ([(IDS[0], 'n02'), (IDS[1], 'n01')], 'does not match .*validation: 1 image\\(s\\) without a '
                                        'row \\(ILSVRC2012_val_00000003.JPEG\\)'),
    ([(IDS[0], 'n02'), (IDS[1], 'n01'), (IDS[2], 'n02'), ('ILSVRC2012_val_00000009', 'n01')],
     'does not match .*validation: 1 row\\(s\\) without an image \\(ILSVRC2012_val_00000009\\)'),
    ([(IDS[0], 'n02'), (IDS[1], 'n09'), (IDS[2], 'n08')],
     'names 2 synset\\(s\\) that are not training classes: n09, n08'),
    ([(IDS[0], 'n02'), (IDS[0], 'n01')], 'line 3: ImageId ILSVRC2012_val_00000001 appears twice'),
    ('missing', 'cannot read --validation_labels=.*missing.txt: No such file or directory'),
], ids=['no-labels', 'list-count', 'list-synset', 'csv-missing-id', 'csv-extra-id',
        'csv-synset', 'csv-duplicate', 'no-file'])
def test_validation_labels_that_do_not_fit_are_refused(flat_tree, tmp_path, labels, message):
    path = None
    if isinstance(labels, list):
        path = _kaggle_csv(tmp_path / 'LOC_val_solution.csv', labels)
    elif labels == 'missing':
        path = str(tmp_path / 'missing.txt')
    elif labels:
        path = str(tmp_path / 'synsets.txt')
        (tmp_path / 'synsets.txt').write_text(labels)
    out = tmp_path / 'records'
    with pytest.raises(writer.BuildError, match=message):
        build_imagenet_tfrecords.build(str(flat_tree), str(out), train_shards=1,
                                       validation_shards=1, validation_labels=path)
    assert not out.exists() or os.listdir(str(out)) == []


def test_validation_labels_with_class_folders_are_refused(image_tree, tmp_path):
    labels = tmp_path / 'synsets.txt'
    labels.write_text('n01_colour\nn02_gray\n')
    with pytest.raises(writer.BuildError, match='--validation_labels=%s is for a flat validation '
                                                'folder, but %s holds class folders'
                       % (labels, image_tree / 'validation')):
        build_imagenet_tfrecords.build(str(image_tree), str(tmp_path / 'records'),
                                       validation_labels=str(labels))


def _png_header(width, height):
    """A PNG whose header says width x height but which holds no pixel data: opening it costs
    nothing, decoding it fails. A decompression bomb without the bomb."""
    def chunk(kind, body):
        return (struct.pack('>I', len(body)) + kind + body
                + struct.pack('>I', zlib.crc32(kind + body) & 0xffffffff))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2,
                                                              0, 0, 0))
            + chunk(b'IDAT', b'') + chunk(b'IEND', b''))


def _png(width, height):
    out = io.BytesIO()
    Image.new('RGB', (width, height), (200, 10, 30)).save(out, format='PNG')
    return out.getvalue()


def test_pixel_limit_is_checked_on_the_header_before_decoding():
    assert images.MAX_IMAGE_PIXELS == Image.MAX_IMAGE_PIXELS == 89478485  # PIL's default
    with pytest.raises(images.TooLarge, match='20000x20000 \\(400,000,000 pixels\\), above the '
                                              'limit of 89,478,485'):
        writer.to_rgb_jpeg(_png_header(20000, 20000))
    jpeg, height, width = writer.to_rgb_jpeg(_png(8, 8), max_pixels=64)  # the limit itself
    assert (height, width) == (8, 8) and Image.open(io.BytesIO(jpeg)).format == 'JPEG'
    with pytest.raises(images.TooLarge, match='8x8 \\(64 pixels\\), above the limit of 63'):
        writer.to_rgb_jpeg(_png(8, 8), max_pixels=63)


def test_pixel_limit_replaces_pils_own(monkeypatch):
    """--max_image_pixels above PIL's limit keeps the image (PIL's check would refuse it), and
    PIL's setting is left as it was."""
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 10)
    _, height, width = writer.to_rgb_jpeg(_png(8, 8), max_pixels=100)
    assert (height, width) == (8, 8) and Image.MAX_IMAGE_PIXELS == 10


def test_images_above_the_pixel_limit_are_listed_and_skipped(flat_tree, tmp_path):
    huge = flat_tree / 'train' / 'n01' / 'bomb.png'
    huge.write_bytes(_png_header(20000, 20000))
    labels = tmp_path / 'synsets.txt'
    labels.write_text('\n'.join(VAL_SYNSETS) + '\n')
    counts, skipped = build_imagenet_tfrecords.build(
        str(flat_tree), str(tmp_path / 'records'), train_shards=1, validation_shards=1,
        validation_labels=str(labels))
    assert counts == {'train': 2, 'validation': 3}
    assert skipped == ['%s is 20000x20000 (400,000,000 pixels), above --max_image_pixels='
                       '89478485; raise the flag to keep such images' % huge]
    strict = tmp_path / 'strict'
    with pytest.raises(writer.BuildError, match='bomb.png is 20000x20000'):
        build_imagenet_tfrecords.build(str(flat_tree), str(strict), train_shards=1,
                                       validation_shards=1, validation_labels=str(labels),
                                       skip_bad_images=False)
    assert os.listdir(str(strict)) == []
    # with the limit raised, the image is read (and, holding no pixels, fails as unreadable)
    _, skipped = build_imagenet_tfrecords.build(
        str(flat_tree), str(tmp_path / 'raised'), train_shards=1, validation_shards=1,
        validation_labels=str(labels), max_image_pixels=400000000)
    assert len(skipped) == 1 and skipped[0].startswith('cannot read %s' % huge)


def _build_tool(*args):
    return subprocess.run([sys.executable, '-m', 'tfrecord_tools.build_imagenet_tfrecords']
                          + list(args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))


def test_build_tool_flags_and_error_line(flat_tree, tmp_path):
    (flat_tree / 'train' / 'n01' / 'big.png').write_bytes(_png(9, 8))  # the others are 8x8
    labels = tmp_path / 'synsets.txt'
    labels.write_text('\n'.join(VAL_SYNSETS) + '\n')
    out = str(tmp_path / 'records')
    result = _build_tool('--input_dir=%s' % flat_tree, '--output_dir=' + out,
                         '--validation_labels=%s' % labels, '--max_image_pixels=64',
                         '--train_shards=1', '--validation_shards=1', '--workers=1')
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        'validation: flat folder of 3 images, labels from %s (one synset per line, in sorted '
        'file order)' % labels,
        'skipped: %s is 9x8 (72 pixels), above --max_image_pixels=64; raise the flag to keep '
        'such images' % (flat_tree / 'train' / 'n01' / 'big.png'),
        'wrote 2 train and 3 validation records to %s; skipped 1 image(s)' % out]
    labels.write_text('n02\nn01\n')
    result = _build_tool('--input_dir=%s' % flat_tree, '--output_dir=' + str(tmp_path / 'other'),
                         '--validation_labels=%s' % labels)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines() == [
        'error: --validation_labels=%s has 2 synsets (one per line) but %s holds 3 images; '
        'line k gives the label of the k-th file in sorted order'
        % (labels, flat_tree / 'validation')]

"""tfrecord_tools on real photos (scikit-image's bundled samples): tree -> records -> verify."""
import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from skimage import data as samples

from common import input_pipeline, records
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
    for (split, cls), images in files.items():
        os.makedirs(root / split / cls)
        for image, name, fmt, mode in images:
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
    shutil.copy(os.path.join(out, 'train-00000-of-00002'), os.path.join(out, 'train-00000-of-00003'))
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
    from tfrecord_tools import build_demo_dataset  # pylint: disable=import-outside-toplevel
    for _ in range(2):
        build_demo_dataset.build(out, image_px=16, train_shards=1, validation_shards=1)
    assert sorted(os.listdir(os.path.join(out, 'samples'))) == names

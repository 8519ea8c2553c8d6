"""Input pipeline on the demo records: exact-once evaluation, per-image flips, label checks."""
import collections
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from common import input_pipeline, preprocessing
from common.errors import UsageError
from conftest import make_config

SETTINGS = dict(label_offset=1, num_classes=10, image_size=32, batch_size=64, seed=3)
CONFIG = make_config(**SETTINGS)


def _stored_labels(files):
    labels = []
    for path in files:
        for record in tf.compat.v1.io.tf_record_iterator(path):
            example = tf.train.Example.FromString(record)
            labels.append(example.features.feature['image/class/label'].int64_list.value[0] - 1)
    return labels


def _drain(dataset, steps):
    """All batches of a dataset in a fresh session, as numpy."""
    batches = []
    next_batch = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
    with tf.compat.v1.Session() as sess:
        for _ in range(steps):
            batches.append(sess.run(next_batch))
        with pytest.raises(tf.errors.OutOfRangeError):
            sess.run(next_batch)
    return batches


@pytest.mark.parametrize('rank_size', [1, 2, 3])
def test_evaluation_covers_every_image_once(demo_dir, rank_size):
    files = input_pipeline.find_files(demo_dir, 'validation')
    num = input_pipeline.count_records(files)
    assert num == 359  # the demo split; 359 is prime, so every batch size leaves a remainder
    steps = input_pipeline.eval_steps(num, CONFIG.batch_size, rank_size)
    seen = collections.Counter()
    for rank in range(rank_size):
        with tf.Graph().as_default():
            dataset = input_pipeline.eval_dataset(
                files, num, preprocessing.imagenet_eval, CONFIG, rank, rank_size)
            for features, labels in _drain(dataset, steps):  # same step count on every rank
                assert features['image'].shape == (64, 32, 32, 3)
                real = features['weight'] == 1.0
                assert set(np.unique(features['weight'])) <= {0.0, 1.0}
                seen.update(labels[real].tolist())
    assert sum(seen.values()) == num
    assert seen == collections.Counter(_stored_labels(files))


def test_training_flip_is_decided_per_image():
    """A left-dark/right-bright image: within one batch some copies are mirrored, some not."""
    pixels = np.zeros([64, 64, 3], np.uint8)
    pixels[:, 32:] = 255
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format='JPEG')
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        dataset = tf.data.Dataset.from_tensors(out.getvalue()).repeat(64).map(
            lambda e: preprocessing.imagenet_train(e, tf.zeros([0, 4]), 32)).batch(64)
        images = sess.run(tf.compat.v1.data.make_one_shot_iterator(dataset).get_next())
    # The crop keeps at least 8% of the area, so each crop sees both halves or one of them;
    # count crops whose left column is brighter than their right column.
    brighter_left = (images[:, :, 0].mean(axis=(1, 2)) > images[:, :, -1].mean(axis=(1, 2)))
    assert 5 < brighter_left.sum() < 59, brighter_left.sum()


def test_eval_resize_keeps_aspect_ratio():
    """A 40x80 image with a 2-px dark column band at the centre: after resizing the shorter
    side to 37 and cropping 32x32 from the middle, the band is still in the middle."""
    pixels = np.full([40, 80, 3], 255, np.uint8)
    pixels[:, 39:41] = 0
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        image = sess.run(preprocessing.resize_shorter_and_center_crop(tf.constant(pixels), 32))
    assert image.shape == (32, 32, 3)
    column_means = image.mean(axis=(0, 2))
    assert abs(int(np.argmin(column_means)) - 15.5) <= 1.5  # squashing would keep it too,
    assert column_means.min() < 160  # but at half the width: the band must stay dark


def test_label_outside_range_is_an_error(demo_dir):
    files = input_pipeline.find_files(demo_dir, 'train')
    config = make_config(**dict(SETTINGS, num_classes=5))  # the demo labels go up to 10
    with tf.Graph().as_default():
        dataset = input_pipeline.train_dataset(files, preprocessing.imagenet_train, config, 0, 1)
        next_batch = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
        with tf.compat.v1.Session() as sess:
            with pytest.raises(tf.errors.InvalidArgumentError, match='label out of range'):
                sess.run(next_batch)


def test_training_data_is_repeatable_with_a_seed(demo_dir):
    files = input_pipeline.find_files(demo_dir, 'train')

    def first_batch():
        with tf.Graph().as_default():
            tf.compat.v1.set_random_seed(CONFIG.seed)
            dataset = input_pipeline.train_dataset(files, preprocessing.imagenet_train, CONFIG,
                                                   0, 1)
            with tf.compat.v1.Session() as sess:
                return sess.run(tf.compat.v1.data.make_one_shot_iterator(dataset).get_next())

    (a, labels_a), (b, labels_b) = first_batch(), first_batch()
    np.testing.assert_array_equal(labels_a, labels_b)
    np.testing.assert_array_equal(a['image'], b['image'])


@pytest.mark.parametrize('rank_size', [2, 3])
def test_training_shards_are_disjoint_and_complete(demo_dir, rank_size):
    """4 demo files: 2 ranks split the files, 3 ranks split the records. One pass of every
    rank's share together reads each training record exactly once."""
    files = input_pipeline.find_files(demo_dir, 'train')
    total = input_pipeline.count_records(files)
    seen = collections.Counter()
    for rank in range(rank_size):
        if len(files) % rank_size == 0:
            share = input_pipeline.count_records(files[rank::rank_size])
        else:
            share = len(range(rank, total, rank_size))
        with tf.Graph().as_default():
            config = make_config(**dict(SETTINGS, batch_size=1, seed=None))
            identity = lambda encoded, bboxes, size: encoded
            dataset = input_pipeline.train_dataset(files, identity, config, rank, rank_size)
            next_batch = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
            with tf.compat.v1.Session() as sess:
                seen.update(sess.run(next_batch)[0]['image'][0] for _ in range(share))
    expected = collections.Counter(
        tf.train.Example.FromString(r).features.feature['image/encoded'].bytes_list.value[0]
        for path in files for r in tf.compat.v1.io.tf_record_iterator(path))
    assert sum(seen.values()) == total
    assert seen == expected  # nothing read twice, nothing missed


def test_record_counts_are_cached_and_refreshed(demo_dir, tmp_path):
    files = input_pipeline.find_files(demo_dir, 'validation')
    assert input_pipeline.count_records(files) == 359
    with open(input_pipeline._cache_path()) as f:
        cache = json.load(f)
    assert cache[os.path.abspath(files[0])][2] + cache[os.path.abspath(files[1])][2] == 359
    copy = str(tmp_path / 'validation-00000-of-00001')
    with open(files[0], 'rb') as src, open(copy, 'wb') as dst:
        dst.write(src.read())
    first = input_pipeline.count_records([copy])
    with open(files[1], 'rb') as src, open(copy, 'ab') as dst:
        dst.write(src.read())  # the file changes: it must be counted again
    assert input_pipeline.count_records([copy]) == 359 > first


def test_missing_and_empty_data_dir(tmp_path):
    with pytest.raises(UsageError, match='does not exist'):
        input_pipeline.find_files(str(tmp_path / 'nope'), 'train')
    with pytest.raises(UsageError, match='no train shards'):
        input_pipeline.find_files(str(tmp_path), 'train')


def test_megvii_preprocessing_is_bgr_0_255():
    pixels = np.zeros([40, 60, 3], np.uint8)
    pixels[..., 0] = 250  # pure red
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        image = sess.run(preprocessing.megvii_eval(tf.constant(pixels), 32))
    assert image.shape == (32, 32, 3)
    blue, green, red = image[..., 0].mean(), image[..., 1].mean(), image[..., 2].mean()
    assert red > 240 and blue < 10 and green < 10  # BGR order, 0..255, not normalized


def test_inception_preprocessing_is_minus_one_to_one():
    """AmoebaNet's input: [0, 1] mapped to [-1, 1]; eval keeps the central 87.5%."""
    pixels = np.zeros([64, 64, 3], np.uint8)
    pixels[4:60, 4:60] = 255  # a white square whose border the central crop removes
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        encoded = tf.image.encode_jpeg(tf.constant(pixels), quality=100)
        evaluated = sess.run(preprocessing.inception_eval(tf.constant(pixels), 32))
        trained = sess.run([preprocessing.inception_train(encoded, tf.zeros([0, 4]), 32)
                            for _ in range(8)])
    assert evaluated.shape == (32, 32, 3)
    assert evaluated.min() > 0.97  # only the white square is left
    for image in trained:
        assert image.shape == (32, 32, 3) and -1.0 <= image.min() and image.max() <= 1.0
    # Random crops: some reach the black border, some lie inside the square.
    assert min(image.min() for image in trained) < -0.5
    assert max(image.min() for image in trained) > 0.5


def test_min_crop_area_flag_reaches_the_crop(demo_dir):
    files = input_pipeline.find_files(demo_dir, 'train')
    for overrides, expected in (({}, {}), ({'min_crop_area': 0.5}, {'min_area': 0.5})):
        seen = {}

        def stub(encoded, bboxes, size, **kwargs):
            del encoded, bboxes
            seen.update(kwargs)
            return tf.zeros([size, size, 3])

        with tf.Graph().as_default():
            input_pipeline.train_dataset(files, stub, make_config(**dict(SETTINGS, **overrides)),
                                         0, 1)
        assert seen == expected
    # min_area=1: every crop of a square image is the whole image (up to the flip).
    pixels = np.random.RandomState(0).randint(0, 255, [48, 48, 3]).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format='JPEG', quality=95)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        encoded = tf.constant(out.getvalue())
        crops = [preprocessing.imagenet_train(encoded, tf.zeros([0, 4]), 48, min_area=1.0)
                 for _ in range(4)]
        full = preprocessing.normalize_mean_std(tf.image.decode_jpeg(encoded, channels=3))
        values, reference = sess.run([crops, full])
    for value in values:
        assert (np.allclose(value, reference, atol=1e-4)
                or np.allclose(value, reference[:, ::-1], atol=1e-4))

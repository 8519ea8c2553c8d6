"""The input pipeline on ImageNet-size JPEGs, side by side with the way PyTorch users load
them (PIL decode, RandomResizedCrop-style crop, flip, normalize, in worker processes like a
DataLoader's), on the same files, in one run.

    python -m benchmarks.pipeline [--data_dir=DIR] [--workers=N]

--data_dir holds benchmarks.imagenet_like's output (built in a temporary directory when not
given). Prints training and evaluation preprocessing in images/s and per core, ours / PIL,
and the cores per device an 8-device Ascend server needs at the seeds' NPU throughput.
"""
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import tensorflow as tf
from absl import app, flags
from PIL import Image

import official
from benchmarks import imagenet_like
from benchmarks.environment import tf_distribution
from common import config, input_pipeline, preprocessing

FLAGS = flags.FLAGS
flags.DEFINE_string('data_dir', None, 'benchmarks.imagenet_like output; default: built anew.')
flags.DEFINE_integer('image_size', 224, 'Crop size.', lower_bound=16)
flags.DEFINE_integer('batch_size', 32, 'Batch size.', lower_bound=1)
flags.DEFINE_integer('workers', None, 'PIL worker processes (default: one per core).',
                     lower_bound=1)
flags.DEFINE_float('seconds', 10.0, 'Timed seconds per measurement.', lower_bound=1.0)

# The seeds' NPU training throughput per device, where a seed states one (REFERENCES.md).
NPU_IMAGES_PER_S = {'shufflenet_v2': (17420 / 8, 'seed 003, 8 devices: 17,420 images/s')}
MEAN = np.array(preprocessing.MEAN_RGB, np.float32)
STD = np.array(preprocessing.STD_RGB, np.float32)


def _random_resized_crop_box(width, height, rng, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """The crop box torchvision's RandomResizedCrop samples: area and log-uniform aspect,
    ten tries, else the centre crop at the nearest allowed aspect."""
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            left, top = rng.randint(0, width - w + 1), rng.randint(0, height - h + 1)
            return left, top, left + w, top + h
    w, h = width, height
    if width / height < ratio[0]:
        h = int(round(width / ratio[0]))
    elif width / height > ratio[1]:
        w = int(round(height * ratio[1]))
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def _normalized_chw(image):
    array = (np.asarray(image, np.float32) - MEAN) / STD
    return np.ascontiguousarray(array.transpose(2, 0, 1))  # ToTensor's layout


def pil_train(path, size=224, rng=np.random):
    image = Image.open(path).convert('RGB')
    image = image.resize((size, size), Image.BILINEAR,
                         box=_random_resized_crop_box(image.width, image.height, rng))
    if rng.uniform() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    return _normalized_chw(image)


def pil_eval(path, size=224):
    image = Image.open(path).convert('RGB')
    scale = round(size / preprocessing.EVAL_CROP_FRACTION) / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)),
                         Image.BILINEAR)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return _normalized_chw(image.crop((left, top, left + size, top + size)))


def _pil_rate(function, paths, workers, seconds):
    """Images/s of function over paths (cycled) in a pool, as a DataLoader's workers."""
    done, start = 0, None
    with multiprocessing.Pool(workers) as pool:
        list(pool.imap(function, paths[:workers * 4], chunksize=4))  # warm up the workers
        start = time.time()
        while time.time() - start < seconds:
            for _ in pool.imap_unordered(function, paths, chunksize=8):
                done += 1
    return done / (time.time() - start)


def _tf_rate(dataset, batch_size, seconds):
    with tf.Graph().as_default():
        batch = tf.compat.v1.data.make_one_shot_iterator(dataset()).get_next()
        with tf.compat.v1.Session() as session:
            session.run(batch)
            done, start = 0, time.time()
            while time.time() - start < seconds:
                session.run(batch)
                done += batch_size
            return done / (time.time() - start)


def main(argv):
    del argv
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    cores = os.cpu_count()
    workers = FLAGS.workers or cores
    data_dir, temporary = FLAGS.data_dir, None
    if not data_dir:
        data_dir = temporary = tempfile.mkdtemp(prefix='imagenet_like_')
        imagenet_like.build(data_dir)
    paths = sorted(os.path.join(data_dir, imagenet_like.JPEG_DIR, name)
                   for name in os.listdir(os.path.join(data_dir, imagenet_like.JPEG_DIR)))
    sizes = [Image.open(p).size for p in paths]
    print('%d JPEGs, mean %dx%d; %s; PIL %s with %d worker processes; %d CPU cores' % (
        len(paths), np.mean([s[0] for s in sizes]), np.mean([s[1] for s in sizes]),
        tf_distribution(), Image.__version__, workers, cores))
    network = official.load('densenet121')  # any network with mean/std preprocessing
    cfg = config.resolve(network, dict(batch_size=FLAGS.batch_size, image_size=FLAGS.image_size,
                                       num_classes=imagenet_like.NUM_CLASSES, data_dir=data_dir))
    record = preprocessing.PREPROCESSINGS[cfg.preprocessing]
    train_pp, eval_pp = record.train, record.evaluate
    train_files = input_pipeline.find_files(data_dir, 'train')
    eval_files = input_pipeline.find_files(data_dir, 'validation')
    num_eval = input_pipeline.count_records(eval_files)
    ours = {
        'train': _tf_rate(lambda: input_pipeline.train_dataset(train_files, train_pp, cfg, 0, 1),
                          cfg.batch_size, FLAGS.seconds),
        'eval': _tf_rate(lambda: input_pipeline.eval_dataset(
            eval_files, num_eval, eval_pp, cfg, 0, 1).repeat(), cfg.batch_size, FLAGS.seconds),
    }
    pil = {'train': _pil_rate(pil_train, paths, workers, FLAGS.seconds),
           'eval': _pil_rate(pil_eval, paths, workers, FLAGS.seconds)}
    print('%-6s %26s %26s %10s' % ('', 'ours (tf.data), img/s', 'PIL workers, img/s',
                                   'ours / PIL'))
    for split in ('train', 'eval'):
        print('%-6s %13.1f (%5.1f/core) %13.1f (%5.1f/core) %10.2f' % (
            split, ours[split], ours[split] / cores, pil[split], pil[split] / workers,
            (ours[split] / cores) / (pil[split] / workers)))
    for name, (rate, source) in NPU_IMAGES_PER_S.items():
        print('%s at %.0f images/s per device (%s): %.1f cores per device for our training '
              'preprocessing, %.1f for the PIL loader' % (
                  name, rate, source, rate / (ours['train'] / cores),
                  rate / (pil['train'] / workers)))
    if temporary:
        shutil.rmtree(temporary)
    return 0


if __name__ == '__main__':
    sys.exit(app.run(main))

"""TFRecord input: find shards, count records once, parse slim keys, shard per rank, batch.

Preprocessing itself lives in preprocessing.py; this module only wires it into tf.data.
"""
import glob
import json
import os
import re

import tensorflow as tf

from common import records
from common.errors import UsageError

SHUFFLE_BUFFER = 10000


def find_files(data_dir, split):
    """Sorted shard paths of a split; a UsageError names what is missing."""
    if not os.path.isdir(data_dir):
        raise UsageError('--data_dir=%s does not exist or is not a directory' % data_dir)
    files = sorted(glob.glob(os.path.join(data_dir, records.SPLIT_PATTERNS[split])))
    if not files:
        raise UsageError('no %s shards (%s-*) in --data_dir=%s' % (split, split, data_dir))
    sets = sorted({records.shard_count(f) for f in files})
    if len(sets) > 1:  # e.g. a rebuild with another shard count: records would repeat
        raise UsageError('--data_dir=%s mixes %s shard sets (%s); keep one set' % (
            data_dir, split, ', '.join('%s-*-of-%.5d' % (split, n) for n in sets)))
    return files


def _cache_path():
    root = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(root, 'ascend_imagenet_zoo', 'record_counts.json')


def _count_one(path):
    count = 0
    try:
        for _ in tf.compat.v1.io.tf_record_iterator(path):
            count += 1
    except tf.errors.OpError as e:
        raise UsageError('corrupt TFRecord file %s after record %d: %s'
                         % (path, count, e.message.splitlines()[0])) from None
    return count


def find_corrupt_file(data_dir):
    """The UsageError naming the first unreadable shard of data_dir, or None: TensorFlow's
    DataLossError during training does not say which file it was reading."""
    for split in records.SPLITS:
        try:
            for path in find_files(data_dir, split):
                _count_one(path)
        except UsageError as e:
            return e
    return None


# The ops through which a batch leaves tf.data: an error raised there came from reading or
# decoding a record.
ITERATOR_OPS = ('IteratorGetNext', 'IteratorGetNextSync', 'IteratorGetNextAsOptional')


# The nodes an error message names, innermost last: '[[{{node NAME}}]]' or '[[NAME]]'.
_NAMED_NODE = re.compile(r'\[\[(?:\{\{node )?([^\]}]+)')


def raised_reading_input(error):
    """Whether a TensorFlow OpError was raised while reading the input (a bad record), rather
    than by the model, a collective or the device: the op is the iterator's, or, for an error
    inside a dataset function (where TensorFlow gives no op), the message names it."""
    if error.op is not None:
        return error.op.type in ITERATOR_OPS
    return any(name.split('/')[-1].startswith(ITERATOR_OPS)
               for name in _NAMED_NODE.findall(error.message))


def count_records(files):
    """Total records in files; each file is counted once and cached by (path, size, mtime)."""
    cache_file = _cache_path()
    try:
        with open(cache_file) as f:
            cache = json.load(f)
    except (OSError, ValueError):
        cache = {}
    total, changed = 0, False
    for path in files:
        path = os.path.abspath(path)
        stat = os.stat(path)
        key = [stat.st_size, int(stat.st_mtime)]
        entry = cache.get(path)
        if entry is None or entry[:2] != key:
            entry = key + [_count_one(path)]
            cache[path] = entry
            changed = True
        total += entry[2]
    if changed:
        try:
            os.makedirs(os.path.dirname(cache_file), exist_ok=True)
            tmp = '%s.%d' % (cache_file, os.getpid())
            with open(tmp, 'w') as f:
                json.dump(cache, f)
            os.replace(tmp, cache_file)  # atomic: ranks may write at the same time
        except OSError:
            pass  # a read-only home only costs a recount next time
    return total


def _parse(serialized, config):
    """Slim keys -> (encoded JPEG, bboxes [N, 4], label in [0, num_classes))."""
    features = tf.io.parse_single_example(serialized, records.PARSE_SPEC)
    bboxes = tf.stack([tf.sparse.to_dense(features[k]) for k in records.BBOX_KEYS], axis=1)
    stored = tf.cast(features[records.LABEL], tf.int32)
    label = stored - config.label_offset
    in_range = tf.logical_and(label >= 0, label < config.num_classes)
    check = tf.debugging.Assert(in_range, [
        'label out of range: stored label', stored, 'minus --label_offset', config.label_offset,
        'is outside [0, --num_classes=%d)' % config.num_classes])
    with tf.control_dependencies([check]):
        return checked_jpeg(features[records.ENCODED]), bboxes, tf.identity(label)


NOT_JPEG = 'image/encoded is not a JPEG image (tfrecord_tools re-encodes PNG/CMYK/grayscale)'


def checked_jpeg(encoded):
    """The encoded image, asserted to be a JPEG: the preprocessing decodes JPEG only, and this
    gives one clear error instead of libjpeg's noise. tfrecord_tools.verify runs it too."""
    is_jpeg = tf.debugging.Assert(tf.image.is_jpeg(encoded), [NOT_JPEG])
    with tf.control_dependencies([is_jpeg]):
        return tf.identity(encoded)


def train_dataset(files, preprocess, config, rank, size):
    """Endless shuffled batches of this rank's part of the training set.

    Files are split between ranks when they divide evenly; otherwise every rank reads the
    files in the same order and keeps every size-th record. Either way each record belongs
    to exactly one rank.
    """
    seed = config.seed
    rank_seed = None if seed is None else seed + rank
    even = len(files) % size == 0
    files_ds = tf.data.Dataset.from_tensor_slices(files)
    if even:
        files_ds = files_ds.shard(size, rank)
        file_seed = rank_seed
    else:
        file_seed = seed or 0  # the same file order on every rank, or the shards would overlap
    files_ds = files_ds.shuffle(len(files), seed=file_seed, reshuffle_each_iteration=True)
    ds = files_ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8),
                             num_parallel_calls=tf.data.experimental.AUTOTUNE)
    if not even:
        ds = ds.shard(size, rank)
    ds = ds.shuffle(SHUFFLE_BUFFER, seed=rank_seed).repeat()

    # --min_crop_area replaces the preprocessing's own smallest crop only when given.
    options = {} if config.min_crop_area is None else {'min_area': config.min_crop_area}

    def parse_and_preprocess(serialized):
        encoded, bboxes, label = _parse(serialized, config)
        return {'image': preprocess(encoded, bboxes, config.image_size, **options)}, label

    # Parallel calls would draw from the seeded random kernels in a varying order; TF 1.15
    # has no stateless bounding-box sampler, so a seeded run preprocesses sequentially.
    parallel = tf.data.experimental.AUTOTUNE if seed is None else None
    ds = ds.map(parse_and_preprocess, num_parallel_calls=parallel)
    ds = ds.batch(config.batch_size, drop_remainder=True)
    return _own_threads(ds.prefetch(tf.data.experimental.AUTOTUNE))


def _own_threads(ds):
    """The pipeline runs on threads of its own, not on the session's inter-op threads (one on
    CPU, common/estimator.py), so that preprocessing overlaps the training step."""
    options = tf.data.Options()
    options.experimental_threading.private_threadpool_size = os.cpu_count() or 1
    return ds.with_options(options)


def eval_steps(num_records, batch_size, rank_size):
    """Batches per rank so that every rank runs the same number and all records are covered."""
    per_rank = -(-num_records // rank_size)
    return -(-per_rank // batch_size)


def eval_dataset(files, num_records, preprocess, config, rank, size):
    """Every validation record exactly once over all ranks, padded with weight-0 samples.

    Batches keep a static shape (the NPU compiles the graph once); padding fills the last
    batches so that each rank runs eval_steps() of them.
    """
    size_px = config.image_size
    ds = tf.data.TFRecordDataset(files).shard(size, rank)

    def parse_and_preprocess(serialized):
        encoded, _, label = _parse(serialized, config)
        image = tf.image.decode_jpeg(encoded, channels=3)
        return {'image': preprocess(image, size_px), 'weight': tf.constant(1.0)}, label

    ds = ds.map(parse_and_preprocess, num_parallel_calls=tf.data.experimental.AUTOTUNE)
    mine = len(range(rank, num_records, size))
    padding = eval_steps(num_records, config.batch_size, size) * config.batch_size - mine
    if padding:
        blank = ({'image': tf.zeros([size_px, size_px, 3]), 'weight': tf.constant(0.0)},
                 tf.constant(0, tf.int32))
        ds = ds.concatenate(tf.data.Dataset.from_tensors(blank).repeat(padding))
    ds = ds.batch(config.batch_size, drop_remainder=True)
    return _own_threads(ds.prefetch(tf.data.experimental.AUTOTUNE))

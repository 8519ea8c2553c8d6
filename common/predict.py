"""mode=predict: the top-k classes, with names and probabilities, of image files.

--eval_dir is a checkpoint directory (or prefix) or an export directory (its SavedModel);
--images a file, a directory (its image files, recursively) or a glob. Images are decoded and
preprocessed in the graph exactly as evaluation does. A file that cannot be read or decoded
is reported with its path and skipped; the run then ends with exit code 1.
"""
import csv
import glob
import io
import os
import stat
import sys

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from PIL import Image

from common import export, images, inference, run_directory, run_record
from common.errors import UsageError
from common.logs import log

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')
EXIT_SOME_FAILED = 1
# Larger files are skipped unread: a 12000 x 12000 JPEG is about 40 MB.
MAX_IMAGE_BYTES = 256 * 2 ** 20
# The header of an earlier predictions file (_write_csv), the only kind --output replaces.
PREDICTIONS_HEADER = 'path,class_1,name_1,probability_1'


def image_paths(spec):
    """(files, skipped) of what --images names, sorted: a file, a directory's image files, or
    a glob's. Only regular files of at most MAX_IMAGE_BYTES are read (a link to /dev/zero or a
    FIFO named x.jpg would never end); skipped holds (path, reason) for the others."""
    if not spec:
        raise UsageError('--mode=predict needs --images (a file, a directory or a glob)')
    if os.path.isdir(spec):
        candidates = [os.path.join(root, name) for root, _, names in os.walk(spec)
                      for name in names if name.lower().endswith(IMAGE_EXTENSIONS)]
    elif os.path.lexists(spec):
        candidates = [spec]
    else:
        candidates = [p for p in glob.glob(spec, recursive=True) if not os.path.isdir(p)]
    files, skipped = [], []
    for path in sorted(candidates):
        reason = _not_readable(path)
        if reason:
            skipped.append((path, reason))
        else:
            files.append(path)
    if not files and not skipped:
        raise UsageError('--images=%s: no image files there' % spec)
    return files, skipped


def _not_readable(path):
    """Why `path` is not read as an image, or None."""
    try:
        info = os.stat(path)  # follows links: what would be read
    except OSError as e:
        return 'cannot read: %s' % (e.strerror or e)
    if not stat.S_ISREG(info.st_mode):
        return 'not a regular file (%s), skipped' % _kind(info.st_mode)
    if info.st_size > MAX_IMAGE_BYTES:
        return '%d bytes, larger than the %d MiB an image may have, skipped' % (
            info.st_size, MAX_IMAGE_BYTES // 2 ** 20)
    return None


def _kind(mode):
    for test, name in ((stat.S_ISFIFO, 'a FIFO'), (stat.S_ISCHR, 'a character device'),
                       (stat.S_ISBLK, 'a block device'), (stat.S_ISSOCK, 'a socket'),
                       (stat.S_ISDIR, 'a directory')):
        if test(mode):
            return name
    return 'not a file'


def check_output(path, overwrite):
    """--output may name a new file, or an earlier predictions file with --overwrite; never
    anything else (an image, a checkpoint, a shard). Checked before predicting anything."""
    if not path:
        return
    if os.path.lexists(path):
        if os.path.islink(path) or not os.path.isfile(path):
            raise UsageError('--output=%s exists and is not a regular file' % path)
        if not _is_predictions(path):
            raise UsageError('--output=%s exists and is not a predictions file: not writing '
                             'over it (give another path)' % path)
        if not overwrite:
            raise UsageError('--output=%s holds earlier predictions; give --overwrite to '
                             'replace them, or another path' % path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise UsageError('--output=%s: cannot write in %s' % (path, parent))


def _is_predictions(path):
    try:
        with open(path, newline='') as f:
            return f.readline(len(PREDICTIONS_HEADER) + 1).startswith(PREDICTIONS_HEADER)
    except (OSError, UnicodeDecodeError):
        return False


def _load_saved_model(session, path):
    """The encoded-image signature of the export's SavedModel, loaded into session; a missing,
    empty or damaged one is one error naming it."""
    try:
        meta = tf.compat.v1.saved_model.load(session, [tf.compat.v1.saved_model.SERVING], path)
        signature = meta.signature_def['encoded_images']
        signature.inputs['image_bytes'], signature.outputs['probabilities']
        return signature
    except (OSError, RuntimeError, ValueError, KeyError, DecodeError, tf.errors.OpError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UsageError('%s: cannot load this SavedModel (%s: %s); export it again' % (
            path, type(e).__name__, first)) from None


class _Model:
    """A session that maps a batch of encoded images to probabilities."""

    def __init__(self, network, config):
        directory = run_directory.of(config.eval_dir)
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            if run_record.is_export(directory):
                path = os.path.join(directory, export.SAVED_MODEL)
                if not os.path.isdir(path):
                    raise UsageError('%s holds no %s (export it with --export_formats='
                                     'saved_model)' % (directory, export.SAVED_MODEL))
                signature = _load_saved_model(self.session, path)
                self.encoded = signature.inputs['image_bytes'].name
                self.probabilities = signature.outputs['probabilities'].name
                self.source = path
            else:
                graph = inference.build_graph(network, config)
                prefix = inference.newest_checkpoint(config)
                inference.restore(self.session, graph, prefix, config)
                self.encoded = graph.inputs['encoded_images']
                self.probabilities = graph.outputs['probabilities']
                self.source = prefix

    def __call__(self, encoded):
        return self.session.run(self.probabilities, {self.encoded: encoded})


def _read(path, max_pixels):
    """The file's bytes, once its header says it has at most max_pixels pixels (a small PNG
    can declare 20000 x 20000, which decoding would turn into 1.6 GB)."""
    try:
        with open(path, 'rb') as f:
            data = f.read(MAX_IMAGE_BYTES + 1)
    except OSError as e:
        raise UsageError('%s: cannot read: %s' % (path, e.strerror or e)) from None
    try:
        with images.pil_limit_off(), Image.open(io.BytesIO(data)) as image:  # the header only
            images.check_pixels(image.width, image.height, max_pixels)
    except images.TooLarge as e:
        raise UsageError('%s: %s (--max_image_pixels=%d; raise it to predict this image)' % (
            path, e, max_pixels)) from None
    except (OSError, ValueError):
        pass  # not an image PIL knows: the decoder says so
    return data


def _predict_batch(model, paths, max_pixels):
    """[(path, probabilities or None, error or None)]: one bad file does not spoil the batch."""
    items, good = [], []
    for path in paths:
        try:
            items.append([path, _read(path, max_pixels), None])
            good.append(items[-1])
        except UsageError as e:
            items.append([path, None, str(e)])
    try:
        for item, probs in zip(good, model([item[1] for item in good]) if good else []):
            item[1] = probs
        return [tuple(item) for item in items]
    except tf.errors.InvalidArgumentError:
        pass
    for item in good:  # find the file(s) the decoder refused
        try:
            item[1] = model([item[1]])[0]
        except tf.errors.InvalidArgumentError:
            item[1], item[2] = None, '%s: not a decodable image (JPEG, PNG, BMP or GIF)' % item[0]
    return [tuple(item) for item in items]


class _Progress:
    """A one-line progress bar on stderr for long lists on a terminal."""

    def __init__(self, total, batch):
        self.total = total
        self.shown = total > 2 * batch and sys.stderr.isatty()

    def update(self, done):
        if self.shown:
            filled = int(30 * done / self.total)
            sys.stderr.write('\r[%s%s] %d/%d' % ('#' * filled, '.' * (30 - filled), done,
                                                 self.total))
            if done == self.total:
                sys.stderr.write('\n')
            sys.stderr.flush()


def predict_images(network, config):
    """Prints the top-k of every image; returns the exit code (1 if any file failed)."""
    check_output(config.output, config.overwrite)
    paths, skipped = image_paths(config.images)
    failed = []
    for path, reason in skipped:
        failed.append(path)
        print('error: %s: %s' % (path, reason), file=sys.stderr)
    model = _Model(network, config)
    names = inference.class_names(config, run_directory.of(config.eval_dir))
    if names is None:
        log.info('no class names known (no labels.txt, no class_names in dataset.json): '
                 'printing class indices')
    k = min(config.top_k, config.num_classes)
    log.info('predicting %d images with %s', len(paths), model.source)
    rows = []
    progress = _Progress(len(paths), config.batch_size)
    for start in range(0, len(paths), config.batch_size):
        for path, probs, error in _predict_batch(model, paths[start:start + config.batch_size],
                                                   config.max_image_pixels):
            if error:
                failed.append(path)
                print('error: %s' % error, file=sys.stderr)
                continue
            top = np.argsort(-probs, kind='stable')[:k]
            row = [(int(c), names[c] if names else str(c), float(probs[c])) for c in top]
            rows.append((path, row))
            print('%s: %s' % (path, ', '.join('%s %.4f' % (name, p) for _, name, p in row)))
        progress.update(min(start + config.batch_size, len(paths)))
    if config.output:
        check_output(config.output, config.overwrite)  # again: a file may have appeared since
        _write_csv(config.output, rows, k)
    log.info('predicted %d images%s', len(rows),
             '; %d failed (listed above)' % len(failed) if failed else '')
    return EXIT_SOME_FAILED if failed else 0


def _write_csv(path, rows, k):
    """Written beside `path` and renamed over it: an earlier file stays whole until then."""
    header = ['path'] + ['%s_%d' % (field, i) for i in range(1, k + 1)
                         for field in ('class', 'name', 'probability')]
    temporary = '%s.%d.tmp' % (path, os.getpid())
    try:
        # UTF-8 whatever the locale; a file name that is not UTF-8 keeps its bytes
        with open(temporary, 'w', newline='', encoding='utf-8', errors='surrogateescape') as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for image, row in rows:
                writer.writerow([image] + [v for entry in row for v in entry])
        os.replace(temporary, path)
    except OSError as e:
        raise UsageError('--output=%s: %s' % (path, e.strerror or e)) from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    log.info('wrote %s', path)

"""mode=predict: the top-k classes, with names and probabilities, of image files.

--eval_dir is a checkpoint directory (or prefix) or an export directory (its SavedModel);
--images a file, a directory (its image files, recursively) or a glob. Images are decoded and
preprocessed in the graph exactly as evaluation does. A file that cannot be read or decoded
is reported with its path and skipped; the run then ends with exit code 1.
"""
import csv
import glob
import os
import sys

import numpy as np
import tensorflow as tf

from common import checkpoints, export, inference, runtime
from common.errors import UsageError
from common.hooks import log

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')
EXIT_SOME_FAILED = 1


def image_paths(spec):
    """The files --images names, sorted: a file, a directory's image files, or a glob's."""
    if not spec:
        raise UsageError('--mode=predict needs --images (a file, a directory or a glob)')
    if os.path.isfile(spec):
        return [spec]
    if os.path.isdir(spec):
        paths = [os.path.join(root, name) for root, _, names in os.walk(spec) for name in names
                 if name.lower().endswith(IMAGE_EXTENSIONS)]
    else:
        paths = [p for p in glob.glob(spec, recursive=True) if os.path.isfile(p)]
    if not paths:
        raise UsageError('--images=%s: no image files there' % spec)
    return sorted(paths)


class _Model:
    """A session that maps a batch of encoded images to probabilities."""

    def __init__(self, network, config):
        directory = checkpoints.run_directory(config.eval_dir)
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            if 'export' in (runtime.read_hparams(directory) or {}):
                path = os.path.join(directory, export.SAVED_MODEL)
                if not os.path.isdir(path):
                    raise UsageError('%s holds no %s (export it with --export_formats='
                                     'saved_model)' % (directory, export.SAVED_MODEL))
                meta = tf.compat.v1.saved_model.load(
                    self.session, [tf.compat.v1.saved_model.SERVING], path)
                signature = meta.signature_def['encoded_images']
                self.encoded = signature.inputs['image_bytes'].name
                self.probabilities = signature.outputs['probabilities'].name
                self.source = path
            else:
                graph = inference.build(network, config)
                prefix = inference.newest_checkpoint(config)
                inference.restore(self.session, graph, prefix, config)
                self.encoded = graph.inputs['encoded_images']
                self.probabilities = graph.outputs['probabilities']
                self.source = prefix

    def __call__(self, encoded):
        return self.session.run(self.probabilities, {self.encoded: encoded})


def _read(path):
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as e:
        raise UsageError('%s: cannot read: %s' % (path, e.strerror or e)) from None


def _predict_batch(model, paths):
    """[(path, probabilities or None, error or None)]: one bad file does not spoil the batch."""
    items, good = [], []
    for path in paths:
        try:
            items.append([path, _read(path), None])
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


def run(network, config):
    """Prints the top-k of every image; returns the exit code (1 if any file failed)."""
    paths = image_paths(config.images)
    model = _Model(network, config)
    names = inference.class_names(config, checkpoints.run_directory(config.eval_dir))
    if names is None:
        log.info('no class names known (no labels.txt, no class_names in dataset.json): '
                 'printing class indices')
    k = min(config.top_k, config.num_classes)
    log.info('predicting %d images with %s', len(paths), model.source)
    rows, failed = [], []
    progress = _Progress(len(paths), config.batch_size)
    for start in range(0, len(paths), config.batch_size):
        for path, probs, error in _predict_batch(model, paths[start:start + config.batch_size]):
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
        _write_csv(config.output, rows, k)
    log.info('predicted %d images%s', len(rows),
             '; %d failed (listed above)' % len(failed) if failed else '')
    return EXIT_SOME_FAILED if failed else 0


def _write_csv(path, rows, k):
    header = ['path'] + ['%s_%d' % (field, i) for i in range(1, k + 1)
                         for field in ('class', 'name', 'probability')]
    try:
        with open(path, 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for image, row in rows:
                writer.writerow([image] + [v for entry in row for v in entry])
    except OSError as e:
        raise UsageError('--output=%s: %s' % (path, e.strerror or e)) from None
    log.info('wrote %s', path)

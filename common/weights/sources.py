"""A reference's weight files: what each is (Source: where it is published, how it is read,
what input its weights expect; each network's weights.py holds one), and reading its
tensors: torch .pth files (common/weights/pth.py) and TF checkpoints (tensorflow/tpu's), as
names with shapes first, the tensors only once those are checked."""
import collections
import os

import numpy as np

from common.errors import UsageError
from common.weights import pth

# reference: who trained it; file_name, published_at: the file and where the reference
# publishes it; top1: the reference's reported ImageNet top-1; kind: 'pth' | 'tf_checkpoint';
# preprocessing: the zoo preprocessing (common/preprocessing.py) the weights expect;
# background_class: class 0 of its classifier is a background class (1001 logits).
Source = collections.namedtuple('Source', ['reference', 'file_name', 'published_at', 'top1',
                                           'kind', 'preprocessing', 'background_class'])

# shapes: {name: shape} as the file declares them, nothing read; arrays(names): (name, array)
# of those tensors, read after the file's declared sizes are checked against theirs.
Reference = collections.namedtuple('Reference', ['path', 'shapes', 'arrays'])


def read_pth(path):
    state = pth.read_state_dict(path)
    return Reference(path, state.shapes, state.arrays)


def checkpoint_prefix(path):
    """The prefix of a TF checkpoint given as a prefix or a directory (its newest one)."""
    import tensorflow as tf
    if os.path.exists(path + '.index'):
        return path
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        found = sorted(f[:-len('.index')] for f in os.listdir(path) if f.endswith('.index'))
        if len(found) == 1:
            return os.path.join(path, found[0])
        raise UsageError('%s holds %s TF checkpoints and no `checkpoint` index naming one; give '
                         'a checkpoint prefix' % (path, len(found) or 'no'))
    raise UsageError('%s is neither a TF checkpoint prefix (no %s.index) nor a directory'
                     % (path, path))


def read_tf_checkpoint(path):
    import tensorflow as tf
    prefix = checkpoint_prefix(path)
    try:
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    except tf.errors.OpError as e:
        raise UsageError('cannot read TF checkpoint %s: %s'
                         % (prefix, e.message.splitlines()[0])) from None
    shapes = collections.OrderedDict(
        (k, tuple(v)) for k, v in sorted(reader.get_variable_to_shape_map().items()))

    def get(name):
        try:
            return np.asarray(reader.get_tensor(name))
        except tf.errors.OpError as e:  # a damaged or truncated data file
            raise UsageError('cannot read %s from TF checkpoint %s: %s'
                             % (name, prefix, e.message.splitlines()[0])) from None

    def arrays(names):
        # TF's reader allocates what the index declares: the shapes the plan has checked
        return ((name, get(name)) for name in list(names))

    return Reference(prefix, shapes, arrays)


READERS = {'pth': read_pth, 'tf_checkpoint': read_tf_checkpoint}


def read(path, kind):
    if not os.path.exists(path) and not os.path.exists(path + '.index'):
        raise UsageError('--source=%s: no such file or checkpoint' % path)
    return READERS[kind](path)

"""NPUSaver (real: estimator/npu/npu_saver.py, master only, 157-199): TensorFlow's Saver whose
builder first broadcasts the variables that weight-update sharding owns; without sharding (the
zoo uses none) it saves what Saver saves."""
import tensorflow as tf

from npu_bridge import MASTER

if not MASTER:
    raise ImportError('npu_saver exists on master only')


class NPUSaver(tf.compat.v1.train.Saver):
    pass

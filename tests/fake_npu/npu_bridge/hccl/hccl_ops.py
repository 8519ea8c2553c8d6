"""HCCL collectives (real: npu_bridge/hccl/hccl_ops.py, r1.2.0:20-62, master:36-82).

Signatures and defaults as the release has them (broadcast's fusion=0, fusion_id=-1 in r1.2.0;
fusion=2, fusion_id=0 on master); the real wrappers validate nothing in Python. Each call makes
one op named for the real op type, as one of RANK_SIZE identical ranks would see its result.
"""
import os

import tensorflow as tf

from npu_bridge import MASTER


# HcomAllReduce's attribute T (hccl_ops.cc r1.2.0:35, master:25).
ALLREDUCE_TYPES = (tf.int8, tf.int16, tf.int32, tf.float16, tf.float32) + (
    (tf.int64, tf.bfloat16) if MASTER else ())


def _ranks():
    value = os.environ.get('RANK_SIZE', '1')
    return int(value) if value.isdigit() else 1


def allreduce(tensor, reduction, fusion=1, fusion_id=-1, group='hccl_world_group'):
    """HcomAllReduce (r1.2.0:20-27, master:36-43); reduction is the op's attribute, one of
    sum, prod, max, min (hccl_ops.cc), checked when the op is built."""
    del fusion, fusion_id, group
    if reduction not in ('sum', 'prod', 'max', 'min'):
        raise ValueError("Value for attr 'reduction' of %r is not in the list of allowed values: "
                         "'min', 'max', 'prod', 'sum'" % reduction)
    value = tf.convert_to_tensor(tensor)  # a list is packed, as for any single-input op
    if value.dtype not in ALLREDUCE_TYPES:
        raise TypeError("Value passed to parameter 'input' has DataType %s not in list of "
                        "allowed values: %s" % (value.dtype.name,
                                                ', '.join(t.name for t in ALLREDUCE_TYPES)))
    with tf.name_scope('HcomAllReduce'):
        if reduction == 'sum':
            return value * tf.cast(_ranks(), value.dtype)
        if reduction == 'prod':
            return value ** tf.cast(_ranks(), value.dtype)
        return tf.identity(value)


if MASTER:
    def broadcast(tensor, root_rank, fusion=2, fusion_id=0, group='hccl_world_group'):
        """HcomBroadcast (master:75-82): a list in, a list out."""
        del root_rank, fusion, fusion_id, group
        return tf.identity_n(tensor, name='HcomBroadcast')

    def allgather(tensor, rank_size, group='hccl_world_group', fusion=0, fusion_id=-1):
        """HcomAllGather (master:58-65)."""
        del group, fusion, fusion_id
        return tf.concat([tensor] * rank_size, 0, name='HcomAllGather')
else:
    def broadcast(tensor, root_rank, fusion=0, fusion_id=-1, group='hccl_world_group'):
        """HcomBroadcast (r1.2.0:55-62): a list in, a list out."""
        del root_rank, fusion, fusion_id, group
        return tf.identity_n(tensor, name='HcomBroadcast')

    def allgather(tensor, rank_size, group='hccl_world_group'):
        """HcomAllGather (r1.2.0:40-45)."""
        del group
        return tf.concat([tensor] * rank_size, 0, name='HcomAllGather')

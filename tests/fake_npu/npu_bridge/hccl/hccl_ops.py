"""Fake HCCL collectives (one rank)."""
import os


def _one_rank():
    if int(os.environ.get('RANK_SIZE', '1')) > 1:
        raise NotImplementedError('the fake npu_bridge has one rank')


def allreduce(tensor, reduction, fusion=1, fusion_id=-1, group='hccl_world_group'):
    if reduction not in ('sum', 'prod', 'max', 'min'):
        raise ValueError('reduction must be sum, prod, max or min, got %r' % reduction)
    _one_rank()
    return tensor


def broadcast(tensor, root_rank, fusion=2, fusion_id=0, group='hccl_world_group'):
    _one_rank()
    return tensor


def allgather(tensor, rank_size, group='hccl_world_group'):
    _one_rank()
    return tensor

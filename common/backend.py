"""Where we run (npu | gpu | cpu), this process's rank, and the collectives we need ourselves.

Several ranks: HCCL on Ascend (RANK_SIZE/RANK_ID/DEVICE_ID/RANK_TABLE_FILE), Horovod elsewhere
(launched by horovodrun). npu_bridge and horovod are imported lazily, here and in
estimator.py / optimizer.py, so that the rest of the project runs on stock TensorFlow.
"""
import collections
import os

import tensorflow as tf

from common.errors import UsageError

Backend = collections.namedtuple('Backend', ['device', 'rank', 'size', 'local_rank',
                                             'local_size'])
HOROVOD_INSTALL = ("pip install -e '.[horovod]' with HOROVOD_WITH_TENSORFLOW=1 "
                   "HOROVOD_WITH_GLOO=1 (README, Multi-device training)")

MIXED_PRECISION_MODES = ('allow_mix_precision', 'allow_fp32_to_fp16', 'force_fp16')


def npu_available():
    try:
        import npu_bridge  # noqa: F401
    except ImportError:
        return False
    return True


def gpu_available():
    return bool(tf.config.experimental.list_physical_devices('GPU'))


def _env_int(name, default=None):
    value = os.environ.get(name)
    if value is None or value == '':
        if default is None:
            raise UsageError('environment variable %s is not set (needed for --rank_size > 1 '
                             'on Ascend; scripts/run_8p.sh sets it)' % name)
        return default
    try:
        return int(value)
    except ValueError:
        raise UsageError('environment variable %s=%r is not an integer' % (name, value)) from None


def detect(device, rank_size):
    """Returns the Backend for --device (auto|npu|gpu|cpu) and --rank_size."""
    if device == 'auto':
        device = 'npu' if npu_available() else 'gpu' if gpu_available() else 'cpu'
    if device == 'npu':
        if not npu_available():
            raise UsageError('--device=npu but npu_bridge cannot be imported; run inside the '
                             'ascend-tensorflow image or use --device=cpu|gpu')
        size = _env_int('RANK_SIZE', default=rank_size)
        if size != rank_size:
            raise UsageError('--rank_size=%d but RANK_SIZE=%d in the environment'
                             % (rank_size, size))
        rank = _env_int('RANK_ID', default=0) if size == 1 else _env_int('RANK_ID')
        if size > 1:
            if not os.environ.get('RANK_TABLE_FILE'):
                raise UsageError('RANK_TABLE_FILE is not set; --rank_size=%d on Ascend needs '
                                 'an HCCL rank table (scripts/8p.json)' % size)
        if not 0 <= rank < size:
            raise UsageError('RANK_ID=%d is outside [0, RANK_SIZE=%d)' % (rank, size))
        return Backend('npu', rank, size, 0, 1)
    if rank_size > 1:
        return _horovod_backend(device, rank_size)
    return Backend(device, 0, 1, 0, 1)


def _horovod():
    try:
        import horovod.tensorflow as hvd
    except ImportError:
        raise UsageError('--rank_size > 1 off Ascend needs Horovod, which is not installed: '
                         + HOROVOD_INSTALL) from None
    return hvd


def _horovod_backend(device, rank_size):
    hvd = _horovod()
    hvd.init()
    if hvd.size() != rank_size:
        raise UsageError('--rank_size=%d but Horovod runs %d process(es); start them with '
                         'horovodrun -np %d (scripts/run_8p.sh does)'
                         % (rank_size, hvd.size(), rank_size))
    return Backend(device, hvd.rank(), hvd.size(), hvd.local_rank(), hvd.local_size())


def uses_horovod(runtime):
    return runtime.device != 'npu' and runtime.rank_size > 1


def broadcast_hooks(runtime):
    """Hooks that copy rank 0's initial variables to every rank: Horovod's with several ranks
    off Ascend. On Ascend none: NPUEstimator adds its own NPUBroadcastGlobalVariablesHook
    whenever RANK_SIZE > 1, and a second one would broadcast every variable twice."""
    if runtime.rank_size == 1 or runtime.device == 'npu':
        return []
    return [_horovod().BroadcastGlobalVariablesHook(0)]


# The job environment NPUEstimator reads (npu_common.py's job info); the ModelZoo's scripts
# export JOB_ID=10087. Without JOB_ID it stops, and r1.2.0 also calls .isdigit() on
# RANK_SIZE's integer default when RANK_SIZE is unset.
DEFAULT_JOB_ID = '10087'


def set_npu_job_environment(runtime):
    """Sets the job variables NPUEstimator needs and the user left unset (a direct
    `python train.py` on one device); returns {name: value} of those it set."""
    # DEVICE_ID is left alone: only the runtime reads it (it defaults to device 0, and a user's
    # ASCEND_DEVICE_ID must not be overridden).
    wanted = {'JOB_ID': DEFAULT_JOB_ID, 'RANK_SIZE': str(runtime.rank_size),
              'RANK_ID': str(runtime.rank)}
    if os.environ.get('CM_WORKER_SIZE'):
        del wanted['RANK_SIZE']  # npu_bridge refuses both (the newest reads either)
    added = {name: value for name, value in wanted.items() if not os.environ.get(name)}
    os.environ.update(added)
    return added


def mixed_precision(device, precision_mode):
    """True when the run computes in fp16 somewhere (never on CPU)."""
    return device != 'cpu' and precision_mode in MIXED_PRECISION_MODES


def sum_across_ranks(tensor, runtime):
    """Sum of a float tensor over all ranks (identity on one rank)."""
    if runtime.rank_size == 1:
        return tensor
    if runtime.device == 'npu':
        from npu_bridge.hccl import hccl_ops
        return hccl_ops.allreduce(tensor, 'sum')
    hvd = _horovod()
    return hvd.allreduce(tensor, op=hvd.Sum)

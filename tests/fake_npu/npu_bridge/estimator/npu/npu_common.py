"""Job information (real: estimator/npu/npu_common.py, r1.2.0:93-209, master:106-224; and
util.get_ranksize, master util.py:234-238).

NPUBasics is a process-wide singleton: the first NPUEstimator fixes the job info, a failed load
included (r1.2.0:121-129, master:135-143). Without a job file (the zoo passes none) it reads the
environment (r1.2.0:177-209, master:192-224): no JOB_ID -> no job info (None); POD_NAME, else
RANK_ID, is the device index (a string); LOCAL_CHECKPOINT_DIR; RANK_SIZE as a string: r1.2.0
calls os.getenv('RANK_SIZE', 1).isdigit(), so an unset RANK_SIZE raises AttributeError on the int
default (r1.2.0:196-197); master takes RANK_SIZE, else CM_WORKER_SIZE, else '1'.
"""
import os

from npu_bridge import MASTER


def get_ranksize():
    """master util.py:234-238 (a string, never None)."""
    if os.getenv('CM_WORKER_SIZE') is not None and os.getenv('RANK_SIZE') is not None:
        raise ValueError('RANK_SIZE and CM_WORK_SIZE cannot be configured at the same time')
    rank_size = os.getenv('RANK_SIZE')
    return rank_size if rank_size is not None else os.getenv('CM_WORKER_SIZE', '1')


class DeviceInfo:
    """r1.2.0:93-114, master:106-127: the root rank is always 0; the index a string."""

    def __init__(self, index='0', server_id='123456', dev_index=1):
        self._index = index
        self._server_id = server_id
        self._dev_index = dev_index
        self._root_rank = 0


class JobInfo:
    def __init__(self, job_id=0, heartbeat_time=-1, device_info=None, rank_table_file=None,
                 local_checkpoint_dir=None, rank_size=1):
        self._job_id = job_id
        self._heartbeat_time = heartbeat_time
        self._device_info = device_info
        self._rank_table_file = rank_table_file
        self._local_checkpoint_dir = local_checkpoint_dir
        self._rank_size = rank_size


class NPUBasics:
    __instance = None

    def __new__(cls, file_name):
        del file_name
        if not cls.__instance:
            cls.__instance = super().__new__(cls)
            cls.__instance._initialized = False
        return cls.__instance

    def __init__(self, file_name):
        if not self._initialized:
            self._job_info = self._read_job_info(file_name)
            self._initialized = True

    @property
    def jobinfo(self):
        return self._job_info

    def size(self):
        return self._job_info._rank_size  # AttributeError without job info, as the real one

    @staticmethod
    def _read_job_info(file_name):
        if file_name:
            raise NotImplementedError('the fake reads the job info from the environment only')
        job_id = os.getenv('JOB_ID', '')
        if job_id == '':
            return None
        identity = os.getenv('POD_NAME', '') or os.getenv('RANK_ID', '')
        rank_size = get_ranksize() if MASTER else os.getenv('RANK_SIZE', 1)
        if rank_size.isdigit() is False:
            rank_size = 1
        return JobInfo(job_id=job_id, heartbeat_time=os.getenv('HEARTBEAT', ''),
                       device_info=DeviceInfo(index=str(identity)),
                       rank_table_file=os.getenv('RANK_TABLE_FILE', ''),
                       local_checkpoint_dir=os.getenv('LOCAL_CHECKPOINT_DIR', ''),
                       rank_size=int(rank_size))

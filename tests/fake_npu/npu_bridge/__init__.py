"""A stand-in for Huawei's npu_bridge (tf_adapter/python/npu_bridge of Ascend/tensorflow), written
from the real sources of two releases and run on stock TF 1.15 on the CPU. Test-only.

FAKE_NPU_RELEASE picks the release it imitates: `r1.2.0` (branch r1.2.0, commit cc8f584, February
2021, the seeds' era) or `master` (commit 085a7b2, December 2023; the default). Wherever the zoo
can observe the package, the fake does what that release's Python does: signatures and defaults,
the environment it reads (JOB_ID, RANK_SIZE, RANK_ID, POD_NAME, LOCAL_CHECKPOINT_DIR,
RESTORE_FROM, DEVICE_ID), the hooks NPUEstimator adds, the variables it creates, the session
config it builds, what its saver writes. Each module's docstrings name the real file and lines.

Only the compiled op library (_tf_adapter.so) is replaced: HCCL collectives and float-status ops
are plain TensorFlow ops named for the real op types (HcomBroadcast, HcomAllReduce, ...). One
process stands for RANK_SIZE identical ranks: a sum over ranks is RANK_SIZE times the local
value, a broadcast returns its input. The device loop is imitated: NPUEstimator's training
hooks see one Session.run per iterations_per_loop steps.
"""
import os

RELEASES = ('r1.2.0', 'master')
RELEASE = os.environ.get('FAKE_NPU_RELEASE', 'master')
if RELEASE not in RELEASES:
    raise ImportError('FAKE_NPU_RELEASE=%s is not one of %s' % (RELEASE, ', '.join(RELEASES)))
MASTER = RELEASE == 'master'

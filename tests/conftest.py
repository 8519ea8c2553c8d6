"""Shared fixtures: the demo dataset, a train.py runner, and one trained small DenseNet run."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE_NPU = os.path.join(ROOT, 'tests', 'fake_npu')
sys.path.insert(0, ROOT)

import official
from common import config

# Small images keep the full-depth networks fast on 2 cores.
SMALL = ['--num_classes=10', '--image_size=32']
# The plumbing runs of the default network: DenseNet with one layer per dense block (66
# variables, not 606) builds its graph and first step in seconds; the code path is
# DenseNet-121's, which the network tests and SHORT_RUNS keep at full depth.
TINY_DENSENET = ['--block_config=1,1,1,1']
TINY = SMALL + TINY_DENSENET
TRAIN_LINE = re.compile(r'^step:\s*(\d+)\s+epoch:\s*([\d.]+)\s+FPS:\s*([\d.]+)\s+loss:\s*([\d.]+)'
                        r'\s+total_loss:\s*([\d.]+)\s+lr:\s*([\d.]+)$', re.M)
TABLE_ROW = re.compile(r'^\s*(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+\d{4}-\d\d-\d\d '
                       r'\d\d:\d\d:\d\d$', re.M)


@pytest.fixture(scope='session', autouse=True)
def private_cache(tmp_path_factory):
    """Record counts are cached per user; tests keep theirs apart."""
    os.environ['XDG_CACHE_HOME'] = str(tmp_path_factory.mktemp('cache'))


@pytest.fixture(scope='session')
def demo_dir(tmp_path_factory):
    from tfrecord_tools import build_demo_dataset
    path = str(tmp_path_factory.mktemp('demo'))
    build_demo_dataset.build(path)
    return path


def make_config(network='densenet121', **overrides):
    """A configuration resolved as train.py resolves one, with overrides as flags would give."""
    return config.resolve(official.load(network), overrides, other_networks=official.load_all())


# What the Ascend job environment holds; NPU runs start without any of it unless a test gives it.
NPU_JOB_VARIABLES = ('JOB_ID', 'RANK_SIZE', 'RANK_ID', 'DEVICE_ID', 'POD_NAME', 'CM_WORKER_SIZE',
                     'RANK_TABLE_FILE', 'LOCAL_CHECKPOINT_DIR', 'RESTORE_FROM')


def run_train(args, npu=False, timeout=900, env=None):
    """Runs train.py in a fresh process; returns CompletedProcess with text output.
    npu: False, or the npu_bridge release the fake imitates ('master', 'r1.2.0'; True: master),
    in an environment with none of NPU_JOB_VARIABLES but those in env."""
    full_env = dict(os.environ)
    if npu:
        for name in NPU_JOB_VARIABLES:
            full_env.pop(name, None)
        full_env['FAKE_NPU_RELEASE'] = 'master' if npu is True else npu
        full_env['PYTHONPATH'] = FAKE_NPU + os.pathsep + full_env.get('PYTHONPATH', '')
    full_env.update(env or {})
    return subprocess.run([sys.executable, os.path.join(ROOT, 'train.py')] + list(args),
                          cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)


def train_lines(text):
    """[(step, epoch, fps, loss, total_loss, lr)] of the log lines."""
    return [tuple(float(x) for x in m) for m in TRAIN_LINE.findall(text)]


def table_rows(text):
    """[(step, epoch, top1 %, top5 %, loss)] of the evaluation table."""
    return [tuple(float(x) for x in m) for m in TABLE_ROW.findall(text)]


def checkpoint_steps(log_dir):
    if not os.path.isdir(log_dir):
        return []
    return sorted(int(m.group(1)) for m in
                  (re.match(r'model\.ckpt-(\d+)\.index$', f) for f in os.listdir(log_dir)) if m)


@pytest.fixture(scope='session')
def trained(demo_dir, tmp_path_factory):
    """The small DenseNet (TINY) trained 4 epochs on the demo data at 32 px, then every
    checkpoint evaluated. Several tests read this one run."""
    log_dir = str(tmp_path_factory.mktemp('trained'))
    common = ['--data_dir=' + demo_dir, '--log_dir=' + log_dir] + TINY
    train = run_train(['--mode=train', '--max_epochs=4', '--save_checkpoints_steps=88',
                       '--display_every=22', '--seed=1'] + common)
    assert train.returncode == 0, train.stderr
    evaluate = run_train(['--mode=evaluate'] + common)
    assert evaluate.returncode == 0, evaluate.stderr
    return dict(log_dir=log_dir, data_dir=demo_dir, train=train.stdout, evaluate=evaluate.stdout,
                args=common)

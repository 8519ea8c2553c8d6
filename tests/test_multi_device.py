"""Multi-device training: HCCL rank tables and run_8p.sh on Ascend (through the npu_bridge
fake), Horovod with 2 processes on this CPU."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import official
from common import backend, rank_table
from common.errors import UsageError
from conftest import FAKE_NPU, ROOT, TINY, checkpoint_steps, table_rows, train_lines

sys.path.insert(0, os.path.join(ROOT, 'tests'))
import horovod_worker


def _table(servers, **overrides):
    """A rank table of len(servers) servers, servers[i] devices each, ranks numbered in order."""
    rank, server_list = 0, []
    for i, count in enumerate(servers):
        devices = []
        for device in range(count):
            devices.append({'device_id': str(device), 'device_ip': '192.168.%d.%d' % (i, device),
                            'rank_id': str(rank)})
            rank += 1
        server_list.append({'server_id': '10.0.0.%d' % (10 + i), 'device': devices})
    table = {'server_count': str(len(servers)), 'server_list': server_list,
             'status': 'completed', 'version': '1.0'}
    table.update(overrides)
    return table


def _write(tmp_path, table, name='table.json'):
    path = tmp_path / name
    path.write_text(table if isinstance(table, str) else json.dumps(table))
    return str(path)


def test_rank_table_plans_one_and_two_servers(tmp_path):
    one = _write(tmp_path, _table([8]), 'one.json')
    assert rank_table.plan(one) == (8, [(d, d) for d in range(8)])
    two = _write(tmp_path, _table([8, 8]), 'two.json')
    assert rank_table.plan(two, server_index=1) == (16, [(d, 8 + d) for d in range(8)])
    # Without SERVER_INDEX, the server is the one whose server_id is this machine's address.
    assert rank_table.plan(two, addresses={'10.0.0.10', 'host'})[1][0] == (0, 0)
    assert rank_table.plan(two, addresses={'10.0.0.11'})[1][-1] == (7, 15)
    with pytest.raises(UsageError, match='cannot tell which of the 2 servers'):
        rank_table.plan(two, addresses={'10.9.9.9'})
    assert rank_table.plan(os.path.join(ROOT, 'scripts', '8p.json'))[0] == 8


def _broken_tables():
    duplicate = _table([4])
    duplicate['server_list'][0]['device'][3]['rank_id'] = '1'
    gap = _table([4])
    gap['server_list'][0]['device'][3]['rank_id'] = '5'
    missing = _table([4])
    del missing['server_list'][0]['device'][2]['device_id']
    no_list = _table([4])
    del no_list['server_list']
    device_9 = _table([4])
    device_9['server_list'][0]['device'][1]['device_id'] = '9'
    empty_ip = _table([4])
    empty_ip['server_list'][0]['device'][2]['device_ip'] = ' '
    same_ip = _table([4])
    same_ip['server_list'][0]['device'][3]['device_ip'] = '192.168.0.0'
    return {
        'device_id_out_of_range': (device_9, 'server_list[0].device[1].device_id is 9, outside '
                                             '0..7'),
        'empty_device_ip': (empty_ip, 'server_list[0].device[2].device_ip is empty'),
        'duplicate_device_ip': (same_ip, 'server_list[0].device[3].device_ip 192.168.0.0 is '
                                         'also server_list[0].device[0].device_ip'),
        'bad_json': ('{"server_count": "1", ', 'is not valid JSON'),
        'missing_server_list': (no_list, 'has no "server_list"'),
        'missing_device_id': (missing, 'server_list[0].device[2] has no "device_id"'),
        'duplicate_rank': (duplicate, 'rank_id 1 appears twice'),
        'non_contiguous_ranks': (gap, 'rank ids must run 0..3 without gaps; missing 3'),
        'server_count_mismatch': (_table([4], server_count='2'),
                                  'server_count is 2 but server_list has 1 servers'),
    }


@pytest.mark.parametrize('case', sorted(_broken_tables()))
def test_rank_table_errors(case, tmp_path):
    table, message = _broken_tables()[case]
    path = _write(tmp_path, table)
    result = subprocess.run([sys.executable, '-m', 'common.rank_table', '--table=' + path],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    assert result.returncode == 2 and result.stdout == ''
    assert result.stderr.count('\n') == 1 and result.stderr.startswith('error: ')
    assert message in result.stderr, result.stderr


def test_rank_table_rank_size_must_match(tmp_path):
    with pytest.raises(UsageError, match='RANK_SIZE=8 but the rank table .* lists 4 devices'):
        rank_table.plan(_write(tmp_path, _table([4])), rank_size=8)


# Stands in for the Python that run_8p.sh starts per rank: records what the rank was given.
STUB_PYTHON = '''#!/usr/bin/env bash
if [ "${1:-}" = train.py ]; then
  echo "DEVICE_ID=$DEVICE_ID RANK_ID=$RANK_ID RANK_SIZE=$RANK_SIZE JOB_ID=$JOB_ID" \\
       "HCCL_CONNECT_TIMEOUT=$HCCL_CONNECT_TIMEOUT RANK_TABLE_FILE=$RANK_TABLE_FILE ARGS=$*"
  [ "$RANK_ID" != "${FAIL_RANK:-}" ]
  exit
fi
exec %s "$@"
'''


def _run_8p_on_fake_npu(tmp_path, table, env=None, args=()):
    tmp_path.mkdir(parents=True, exist_ok=True)
    stub = tmp_path / 'python'
    stub.write_text(STUB_PYTHON % sys.executable)
    stub.chmod(0o755)
    full_env = dict(os.environ, PYTHON=str(stub), RESULT_ROOT=str(tmp_path / 'result'),
                    RANK_TABLE_FILE=_write(tmp_path, table),
                    PYTHONPATH=FAKE_NPU + os.pathsep + ROOT, **(env or {}))
    full_env.pop('RANK_SIZE', None)
    result = subprocess.run(['bash', os.path.join(ROOT, 'scripts', 'run_8p.sh')] + list(args),
                            cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    records = {}
    for path in glob.glob(str(tmp_path / 'result' / '8p' / '*' / 'train_*.log')):
        with open(path) as f:  # the stub's line, after the run script's start mark
            line = [text for text in f.read().splitlines()
                    if not text.startswith('=== run started')][0]
            fields = dict(item.split('=', 1) for item in line.split(' ARGS=')[0].split())
        records[int(fields['DEVICE_ID'])] = fields
    return result, records


def test_run_8p_starts_one_process_per_device_of_this_server(tmp_path):
    result, records = _run_8p_on_fake_npu(tmp_path, _table([8]), args=['--network=vgg16'])
    assert result.returncode == 0, result.stdout
    assert sorted(records) == list(range(8))
    for device, fields in records.items():
        assert fields['RANK_ID'] == str(device) and fields['RANK_SIZE'] == '8'
        assert fields['RANK_TABLE_FILE'] == str(tmp_path / 'table.json')
        assert fields['HCCL_CONNECT_TIMEOUT'] == '600' and fields['JOB_ID']
    log = tmp_path / 'result' / '8p' / '5' / 'train_5.log'
    assert '--rank_size=8 --log_dir=%s --network=vgg16' % (tmp_path / 'result' / '8p') in \
        log.read_text()
    assert 'log of device 7: %s' % (tmp_path / 'result' / '8p' / '7' / 'train_7.log') in \
        result.stdout


def test_run_8p_on_the_second_of_two_servers(tmp_path):
    result, records = _run_8p_on_fake_npu(tmp_path, _table([8, 8]), env={'SERVER_INDEX': '1'})
    assert result.returncode == 0, result.stdout
    assert {d: (f['RANK_ID'], f['RANK_SIZE']) for d, f in records.items()} == {
        d: (str(8 + d), '16') for d in range(8)}


def test_run_8p_fails_when_a_rank_fails_or_the_table_is_bad(tmp_path):
    result, records = _run_8p_on_fake_npu(tmp_path / 'a', _table([4]), env={'FAIL_RANK': '2'})
    assert result.returncode == 1 and len(records) == 4
    assert 'rank 2 (device 2) failed' in result.stdout
    duplicate = _table([4])
    duplicate['server_list'][0]['device'][3]['rank_id'] = '0'
    result, records = _run_8p_on_fake_npu(tmp_path / 'b', duplicate)
    assert result.returncode == 2 and records == {}
    assert result.stdout.strip().splitlines() == [
        'error: rank table %s: rank_id 0 appears twice (%s and %s)' % (
            tmp_path / 'b' / 'table.json', 'rank table %s: server_list[0].device[0]' % (
                tmp_path / 'b' / 'table.json'),
            'rank table %s: server_list[0].device[3]' % (tmp_path / 'b' / 'table.json'))]


def _horovodrun():
    path = os.path.join(os.path.dirname(sys.executable), 'horovodrun')
    assert os.path.exists(path), "Horovod is missing: pip install -e '.[horovod]' (README)"
    return path


def test_two_horovod_ranks_average_gradients_and_stay_identical(demo_dir, tmp_path):
    result = subprocess.run(
        [_horovodrun(), '--gloo', '-np', '2', '-H', 'localhost:2', sys.executable,
         os.path.join(ROOT, 'tests', 'horovod_worker.py'), str(tmp_path), demo_dir],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
        timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    ranks = [dict(np.load(str(tmp_path / ('rank%d.npz' % r)))) for r in (0, 1)]
    # Disjoint shards: the two ranks' first batches differ.
    assert not np.array_equal(ranks[0]['images'], ranks[1]['images'])
    # One process given both batches finds the mean loss and the averaged gradients.
    cfg = horovod_worker.make_config(str(tmp_path), 1)
    single = horovod_worker.make_runtime(cfg, backend.Backend('cpu', 0, 1, 0, 1))
    with tf.Graph().as_default():
        loss, grads = horovod_worker.gradients(
            official.load(horovod_worker.NETWORK), cfg, single,
            np.concatenate([r['images'] for r in ranks]),
            np.concatenate([r['labels'] for r in ranks]))
        with tf.compat.v1.Session() as sess:
            for var in tf.compat.v1.global_variables():
                var.load(ranks[0]['initial/' + var.op.name], sess)
            single_loss, single_grads = sess.run([loss, grads])
    assert single_loss == pytest.approx((ranks[0]['loss'] + ranks[1]['loss']) / 2, rel=1e-5)
    assert len(single_grads) == 40
    for name, value in single_grads.items():
        for rank in ranks:
            np.testing.assert_allclose(rank['grad/' + name], value, rtol=1e-3, atol=1e-6,
                                       err_msg=name)
    # After training from different initial values: identical variables, changed by training.
    trained = sorted(k for k in ranks[0] if k.startswith('trained/'))
    assert len(trained) == 40
    for key in trained:
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key], err_msg=key)
    kernel = 'densenet121/conv0/kernel'
    assert not np.allclose(ranks[0]['trained/' + kernel], ranks[0]['initial/' + kernel])


def test_run_8p_with_two_horovod_processes(demo_dir, tmp_path):
    """Only rank 0 writes checkpoints, summaries, hparams.json and log lines; epochs, FPS and
    the evaluation are global; a second start of the finished run exits cleanly on all ranks."""
    env = dict(os.environ, PYTHON=sys.executable, RESULT_ROOT=str(tmp_path), RANK_SIZE='2')
    args = ['bash', os.path.join(ROOT, 'scripts', 'run_8p.sh'), '--data_dir=' + demo_dir,
            '--max_epochs=1', '--batch_size=16', '--display_every=22',
            '--save_checkpoints_steps=22'] + TINY
    result = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True, timeout=900)
    assert result.returncode == 0, result.stdout
    out = tmp_path / '8p'
    logs = [(out / str(d) / ('train_%d.log' % d)).read_text() for d in (0, 1)]
    # 1438 images / (16 x 2 ranks) = 44 steps per epoch.
    assert [(int(s), e) for s, e, *_ in train_lines(logs[0])] == [(22, 0.5), (44, 1.0)]
    assert train_lines(logs[1]) == [] and 'step:' not in logs[1]
    assert 'device: cpu, rank 0 of 2' in logs[0]
    rows = table_rows(logs[0])
    assert [r[0] for r in rows] == [44]
    assert checkpoint_steps(str(out)) == [22, 44]
    assert len(glob.glob(str(out / 'events.out.tfevents.*'))) == 1
    assert len(glob.glob(str(out / 'eval' / 'events.out.tfevents.*'))) == 1
    with open(str(out / 'hparams.json')) as f:
        assert json.load(f)['rank_size'] == 2
    assert 'Final Performance images/sec : ' in result.stdout
    again = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert again.returncode == 0, again.stdout
    assert 'training already finished: step 44 >= 44' in (out / '0' / 'train_0.log').read_text()
    # Evaluation on both ranks: each takes half of the 359 images; the sums make the table.
    evaluated = subprocess.run(args + ['--mode=evaluate'], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True, timeout=300)
    assert evaluated.returncode == 0, evaluated.stdout
    log = (out / '0' / 'train_0.log').read_text()
    assert 'images evaluated: 359' in log
    assert table_rows(log)[-1][:3] == rows[-1][:3]  # the same numbers as after training

"""The .pth reader (common/weights/pth.py) on files written here: strided tensors, pickles that
would run code, and crafted files that declare more than they hold or than the network needs
(refused before anything is allocated or inflated, in bounded time and memory)."""
import collections
import os
import pickle
import re
import resource
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import import_weights
from common.errors import UsageError
from common.weights import convert, pth, sources
from conftest import ROOT
from pth_files import (contiguous, state_dict_pickle, text_opcodes, write_legacy, write_pth,
                       write_zip)
from test_import_weights import WEIGHTS, _import, fixture_spec, read_arrays


def test_strided_tensors_are_rebuilt_from_their_storage(tmp_path):
    storage = np.arange(12, dtype=np.float32)
    path = str(tmp_path / 'strided.pth')
    # a transposed 3x4 view, as torch saves a non-contiguous tensor; one reaching past the end
    write_zip(path, state_dict_pickle([('t', '0', 12, 0, (4, 3), (1, 4)),
                                       ('out', '0', 12, 2, (3, 4), (4, 1))]),
              {'0': storage.tobytes()})
    state = pth.read_state_dict(path)
    np.testing.assert_array_equal(dict(state.arrays(['t']))['t'], storage.reshape(3, 4).T)
    with pytest.raises(UsageError, match='tensor out of shape .3, 4. reaches outside its storage'):
        state.arrays(['out'])


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ('touch %s' % self.marker,))


@pytest.mark.parametrize('container', ['legacy', 'zip'])
def test_a_pickle_that_would_run_code_is_refused_without_running_it(container, tmp_path):
    marker = tmp_path / 'pwned'
    payload = pickle.dumps(collections.OrderedDict(w=_Exploit(str(marker))), protocol=2)
    path = tmp_path / 'evil.pth'
    if container == 'zip':
        with zipfile.ZipFile(str(path), 'w') as archive:
            archive.writestr('evil/data.pkl', payload)
            archive.writestr('evil/version', '3\n')
    else:
        path.write_bytes(payload)
    with pytest.raises(UsageError, match=r'refused to load: the file names (posix|os)\.system'):
        pth.read_state_dict(str(path))
    assert not marker.exists()
    # the command line says so in one line and exits 2
    result = _import(['--network=vgg16', '--source=%s' % path,
                      '--output_dir=%s' % (tmp_path / 'out')])
    assert result.returncode == 2 and result.stderr.startswith('error: ') and (
        'refused to load' in result.stderr)
    assert not marker.exists() and not (tmp_path / 'out').exists()


def test_the_pth_writer_of_these_tests_is_read_back(tmp_path):
    tensors = collections.OrderedDict(
        [('a.weight', np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)),
         ('a.bias', np.array([1.5, -2.0], np.float32))])
    write_pth(str(tmp_path / 'x.pth'), tensors)
    read = read_arrays(str(tmp_path / 'x.pth'))
    assert list(read) == list(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(read[name], value)


READ_PTH = """import sys
sys.path.insert(0, %r)
from common.errors import UsageError
from common.weights import sources
try:
    print(sorted(sources.read(sys.argv[1], 'pth').shapes.items()))
except UsageError as e:
    sys.exit('error: %%s' %% e)
""" % ROOT


def read_bounded(path, megabytes=1024, seconds=60):
    """READ_PTH in a child limited to `megabytes` of address space and `seconds`: a reader
    that blows up fails the test, not the machine. Returns (CompletedProcess, seconds taken)."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (megabytes << 20, megabytes << 20))

    start = time.time()
    result = subprocess.run([sys.executable, '-c', READ_PTH, path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=seconds,
                            preexec_fn=limit, env=dict(os.environ, OPENBLAS_NUM_THREADS='1'))
    return result, time.time() - start


def shared_list_pickle(depth):
    """Opcodes of lists that each hold the list below twice (memo references), `depth` deep:
    a few bytes a level, 2**depth paths through it."""
    out = b']q\x000'  # EMPTY_LIST, BINPUT 0, POP
    for level in range(1, depth + 1):
        out += b']q%c(h%ch%ce0' % (level, level - 1, level - 1)  # [below, below]
    return out + b'h%c' % depth  # BINGET: the top one


def test_shared_references_are_read_in_linear_time(tmp_path):
    """Lists holding one list twice, 30 deep, beside the state dict: 2**30 paths but 31
    objects; the reader must not walk the paths (it took 80 s and 2.4 GB)."""
    path = str(tmp_path / 'shared.pth')
    weight = np.array([1.5, -2.0], np.float32)
    records, storages = contiguous({'w': weight})
    write_legacy(path, b'\x80\x02}(' + text_opcodes('state_dict')
                 + state_dict_pickle(records)[2:-1] + text_opcodes('meta')
                 + shared_list_pickle(30) + b'u.', storages)
    assert os.path.getsize(path) < 1024
    result, seconds = read_bounded(path)
    assert result.returncode == 0, result.stderr[-300:]
    assert result.stdout.strip() == "[('w', (2,))]" and seconds < 30
    np.testing.assert_array_equal(read_arrays(path)['w'], weight)


def _vgg_fixture_with(tmp_path, name, record, storages):
    """A zip .pth of the vgg16 fixture's names and shapes (zeros), tensor `name` replaced by
    `record` (storage key, numel, offset, shape, stride) over `storages` ({key: bytes});
    entries deflated."""
    shapes = sources.read(os.path.join(WEIGHTS, 'vgg16.pth'), 'pth').shapes
    records, kept = contiguous({n: np.zeros(shape) for n, shape in shapes.items()})
    records = [(n,) + tuple(record) if n == name else (n,) + tuple(r)
               for n, *r in records]
    path = str(tmp_path / 'crafted.pth')
    write_zip(path, state_dict_pickle(records), dict(kept, **storages), zipfile.ZIP_DEFLATED)
    return path


def test_a_tensor_the_network_cannot_take_is_refused_before_it_is_allocated(tmp_path):
    """A stride-0 tensor of 2**29 elements over one float: its shape is checked against the
    network's before anything is read (it took 2.3 GB)."""
    huge = 2 ** 29
    path = _vgg_fixture_with(tmp_path, 'features.0.bias', ('big', 1, 0, (huge,), (0,)),
                             {'big': b'\0' * 4})
    result, _ = read_bounded(path)
    assert result.returncode == 0 and "('features.0.bias', (%d,))" % huge in result.stdout, (
        result.stderr[-300:])
    options, _, _, _ = fixture_spec('vgg16')
    tracemalloc.start()
    try:
        with pytest.raises(UsageError, match=r'reference tensor features.0.bias \(%d, as stored: '
                           r'%d\) does not fit zoo variable vgg16/conv1_1/bias \(8\)'
                           % (huge, huge)):
            convert.convert('vgg16', path, str(tmp_path / 'out'), options=options)
        assert tracemalloc.get_traced_memory()[1] < 64 << 20
    finally:
        tracemalloc.stop()


def test_a_storage_larger_than_the_network_needs_is_refused_before_inflating(
        tmp_path, monkeypatch):
    """A deflated storage that inflates to 16 MiB (2 GiB took 4.4 GB) under a tensor of the
    right shape: the zip directory's size is checked against what the expected tensors need
    (the reduced VGG16's 120 KB) before the entry is opened."""
    numel = 4 << 20
    path = _vgg_fixture_with(tmp_path, 'features.0.bias', ('big', numel, 0, (8,), (1,)),
                             {'big': bytes(4 * numel)})
    assert os.path.getsize(path) < 1 << 20
    opened = []
    original_open = zipfile.ZipFile.open

    def spy(archive, name, *args, **kwargs):
        opened.append(getattr(name, 'filename', name))
        return original_open(archive, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, 'open', spy)
    options, _, _, _ = fixture_spec('vgg16')
    with pytest.raises(UsageError, match=r'crafted.pth: storage big of features.0.bias holds '
                       r'16777216 bytes, more than the 120872 bytes of all 12 tensors read'):
        convert.convert('vgg16', path, str(tmp_path / 'out'), options=options)
    assert 'archive/data/big' not in opened and not (tmp_path / 'out').exists()
    # a data.pkl beyond any state dict's pickle is not inflated either
    monkeypatch.setattr(pth, 'PICKLE_LIMIT', 64)
    with pytest.raises(UsageError, match=r'archive/data.pkl would inflate to \d+ bytes'):
        pth.read_state_dict(path)


@pytest.mark.parametrize('kind, message', [
    ('declared', r'truncated \(storage 0 declares 4398046511104 bytes, 0 are left\)'),
    ('deep', 'holds no state dict')])
def test_a_legacy_file_beyond_memory_or_recursion_is_one_error_line(kind, message, tmp_path,
                                                                    capsys):
    """2**40 elements declared over an empty storage (MemoryError), or a value nested 5000
    deep (RecursionError): one error line naming the file, exit status 2."""
    path = str(tmp_path / ('%s.pth' % kind))
    if kind == 'declared':
        records = [('features.0.bias', '0', 2 ** 40, 0, (2 ** 40,), (1,))]
        write_legacy(path, state_dict_pickle(records), {'0': b''})
        with open(path, 'r+b') as f:  # the element count before the (absent) bytes
            f.seek(-8, os.SEEK_END)
            f.write(struct.pack('<q', 2 ** 40))
    else:
        depth = 5000
        write_legacy(path, b'\x80\x02}' + text_opcodes('w') + b']' * depth + b'a' * (depth - 1) +
                     b's.', {})
    code = import_weights.main(['import_weights.py', '--network=vgg16', '--source=' + path,
                                '--output_dir=%s' % (tmp_path / 'out')])
    err = capsys.readouterr().err
    assert code == 2 and err.count('\n') == 1 and err.startswith('error: %s' % path), err
    assert re.search(message, err), err


@pytest.mark.parametrize('opcodes, named', [
    (b'\x80\x02cbuiltins\neval\n', 'builtins.eval'),
    (b'\x80\x02c__builtin__\neval\n', '__builtin__.eval'),  # Python 2's name, protocol 2's
    (b'\x80\x02ccommands\nPopen\n', 'commands.Popen'),
    (b'\x80\x04' + b'\x8c\nsubprocess\x8c\x05Popen\x93', 'subprocess.Popen')])  # STACK_GLOBAL
def test_a_refused_name_is_named_as_the_file_writes_it(opcodes, named, tmp_path):
    path = tmp_path / 'evil.pth'
    path.write_bytes(opcodes + text_opcodes('1') + b'\x85R.')
    with pytest.raises(UsageError, match=r'evil.pth: refused to load: the file names %s, '
                       % re.escape(named)):
        pth.read_state_dict(str(path))

"""Writes .pth files byte by byte, as torch lays them out (zip and legacy), so that the tests
can craft any file the reader must take or refuse, without torch."""
import pickle
import struct
import zipfile

import numpy as np

from common.weights import pth


def text_opcodes(value):
    """The opcodes of a str (BINUNICODE)."""
    data = value.encode()
    return b'X' + struct.pack('<I', len(data)) + data  # BINUNICODE


def integer_opcodes(values):
    """The opcodes of a tuple of ints (LONG1 each)."""
    return b'(' + b''.join(b'\x8a\x08' + struct.pack('<q', v) for v in values) + b't'  # LONG1


ORDERED_DICT = b'ccollections\nOrderedDict\n)R'


def tensor_pickle(key, numel, offset, shape, stride):
    """The opcodes of one float32 tensor as torch pickles it: _rebuild_tensor_v2 over a
    persistent storage id ('storage', FloatStorage, key, 'cpu', numel)."""
    storage = (b'(' + text_opcodes('storage') + b'ctorch\nFloatStorage\n' + text_opcodes(key)
               + text_opcodes('cpu') + integer_opcodes([numel])[1:-1] + b'tQ')
    return (b'ctorch._utils\n_rebuild_tensor_v2\n(' + storage + integer_opcodes([offset])[1:-1] +
            integer_opcodes(shape) + integer_opcodes(stride) + b'\x89' + ORDERED_DICT + b'tR')


def state_dict_pickle(records, extra=b''):
    """A protocol-2 pickle of an OrderedDict of tensors, written opcode by opcode (tests make
    files without torch this way): records are (name, storage key, storage numel, offset,
    shape, stride). extra: opcodes of more (key, value) pairs, after the tensors."""
    items = b''.join(text_opcodes(name) + tensor_pickle(*record) for name, *record in records)
    return b'\x80\x02' + ORDERED_DICT + b'(' + items + extra + b'u.'


def contiguous(tensors):
    """(records, {storage key: bytes}) of float32 arrays, each in a storage of its own."""
    records, storages = [], {}
    for key, (name, value) in enumerate(tensors.items()):
        value = np.ascontiguousarray(value, '<f4')
        strides = [int(np.prod(value.shape[i + 1:])) for i in range(value.ndim)]
        records.append((name, str(key), value.size, 0, value.shape, strides))
        storages[str(key)] = value.tobytes()
    return records, storages


def write_zip(path, data_pkl, storages, compression=zipfile.ZIP_STORED):
    """A .pth in torch >= 1.6's zip format."""
    with zipfile.ZipFile(path, 'w', compression) as archive:
        for key, raw in storages.items():
            archive.writestr('archive/data/%s' % key, raw)
        archive.writestr('archive/data.pkl', data_pkl)
        archive.writestr('archive/version', b'3\n')


def write_legacy(path, main_pickle, storages):
    """A .pth in torch's legacy format: magic, protocol, sys_info, the main pickle, the list
    of storage keys, then each storage as its element count and bytes (float32)."""
    sys_info = dict(protocol_version=pth.LEGACY_PROTOCOL, little_endian=True,
                    type_sizes=dict(short=2, int=4, long=4))
    with open(path, 'wb') as f:
        for header in (pth.LEGACY_MAGIC, pth.LEGACY_PROTOCOL, sys_info):
            f.write(pickle.dumps(header, protocol=2))
        f.write(main_pickle)
        f.write(pickle.dumps(list(storages), protocol=2))
        for raw in storages.values():
            f.write(struct.pack('<q', len(raw) // 4) + raw)


def write_pth(path, tensors):
    """Writes float32 `tensors` ({name: array}) as torch >= 1.6 saves a state dict."""
    records, storages = contiguous(tensors)
    write_zip(path, state_dict_pickle(records), storages)

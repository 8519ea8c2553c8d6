"""Reads PyTorch .pth files (the zip format of torch >= 1.6 and the legacy pickle format) into
numpy arrays, without torch and without running code from the file.

A .pth file is a pickle, and a pickle may name any Python callable to be called on load
(os.system, for one). The unpickler here resolves only the few globals a saved state dict
needs; any other name stops the read before anything is called.
"""
import collections
import io
import pickle
import struct
import zipfile

import numpy as np

from common.errors import UsageError

# torch storage class -> numpy dtype of its elements (little-endian, as torch writes them).
STORAGE_DTYPES = {
    'FloatStorage': '<f4', 'DoubleStorage': '<f8', 'HalfStorage': '<f2',
    'BFloat16Storage': 'bfloat16', 'LongStorage': '<i8', 'IntStorage': '<i4',
    'ShortStorage': '<i2', 'CharStorage': 'i1', 'ByteStorage': 'u1', 'BoolStorage': '?',
}
LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001


class _StorageType(collections.namedtuple('_StorageType', ['name'])):
    """Stands for torch.<name>Storage in the pickle: only its element type matters here."""

    @property
    def dtype(self):
        return STORAGE_DTYPES[self.name]


def _to_numpy(raw, dtype):
    """A flat array of the storage bytes; bfloat16 (absent in numpy) widened to float32."""
    if dtype == 'bfloat16':
        halves = np.frombuffer(raw, '<u2').astype(np.uint32)
        return (halves << 16).view(np.float32)
    return np.frombuffer(raw, dtype)


def _rebuild_tensor(storage, offset, size, stride, *unused):
    """What torch._utils._rebuild_tensor(_v2) does, on a numpy storage: a strided view, copied."""
    size, stride = tuple(size), tuple(stride)
    if size and any(n == 0 for n in size):
        return np.zeros(size, storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if offset < 0 or last >= len(storage) or min(stride, default=0) < 0:
        raise UsageError('a tensor of shape %s reaches outside its storage of %d elements'
                         % (list(size), len(storage)))
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], size, tuple(s * storage.itemsize for s in stride), writeable=False)
    return np.array(view)


def _rebuild_parameter(data, *unused):
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only _ALLOWED globals; storages come from `load_storage(persistent id)`."""

    def __init__(self, stream, load_storage, source):
        super().__init__(stream)
        self._load_storage = load_storage
        self._source = source

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UsageError(
                '%s: refused to load: the file names %s.%s, which a saved state dict never '
                'needs (a pickle may run any code it names; only tensors and dicts are read)'
                % (self._source, module, name)) from None

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != 'storage':
            raise UsageError('%s: unknown persistent id %r' % (self._source, pid))
        return self._load_storage(pid)


def _load(stream, load_storage, source):
    try:
        return _RestrictedUnpickler(stream, load_storage, source).load()
    except UsageError:
        raise
    except Exception as e:  # pylint: disable=broad-except
        raise UsageError('%s: not a readable .pth file (%s: %s)'
                         % (source, type(e).__name__, e)) from None


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith('/data.pkl') and n.count('/') == 1]
        if len(pickles) != 1:
            raise UsageError('%s: a zip but not a torch checkpoint (no single <dir>/data.pkl)'
                             % path)
        folder = pickles[0][:-len('data.pkl')]
        if folder + 'byteorder' in names and archive.read(folder + 'byteorder') != b'little':
            raise UsageError('%s: big-endian tensors are not supported' % path)
        storages = {}

        def load_storage(pid):
            _, storage_type, key, _, numel = pid[:5]
            if not isinstance(storage_type, _StorageType):
                raise UsageError('%s: storage of unknown type %r' % (path, storage_type))
            if key not in storages:
                raw = archive.read('%sdata/%s' % (folder, key))
                storages[key] = _to_numpy(raw, storage_type.dtype)
            return storages[key]

        with archive.open(pickles[0]) as stream:
            return _load(io.BytesIO(stream.read()), load_storage, path)


def _read_legacy(path):
    with open(path, 'rb') as f:
        header = _RestrictedUnpickler(f, None, path)
        try:
            magic, protocol = header.load(), header.load()
            header.load()  # sys_info: byte order and type sizes of the saving machine
        except UsageError:
            raise
        except Exception:  # pylint: disable=broad-except
            magic = protocol = None
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
            raise UsageError('%s: neither a zip nor a legacy torch checkpoint' % path)
        wanted = {}  # key -> storage type; the bytes follow the main pickle

        def note_storage(pid):
            _, storage_type, key = pid[:3]
            if len(pid) > 5 and pid[5] is not None:  # a view into another storage
                raise UsageError('%s: storage %s is a view of another storage, which this '
                                 'reader does not rebuild' % (path, key))
            if not isinstance(storage_type, _StorageType):
                raise UsageError('%s: storage of unknown type %r' % (path, storage_type))
            wanted[key] = storage_type
            return _Pending(key)

        obj = _load(f, note_storage, path)
        keys = _load(f, lambda pid: None, path)
        storages = {}
        for key in keys:
            count = f.read(8)
            numel = struct.unpack('<q', count)[0] if len(count) == 8 else -1
            dtype = wanted[key].dtype if key in wanted else 'u1'
            itemsize = 2 if dtype == 'bfloat16' else np.dtype(dtype).itemsize
            raw = f.read(numel * itemsize) if numel >= 0 else b''
            if numel < 0 or len(raw) != numel * itemsize:
                raise UsageError('%s: truncated (storage %s)' % (path, key))
            storages[key] = _to_numpy(raw, dtype)
    return _resolve_pending(obj, storages, path)


class _Pending(collections.namedtuple('_Pending', ['key'])):
    """A legacy storage whose bytes come after the pickle."""


class _PendingTensor(collections.namedtuple('_PendingTensor', ['key', 'args'])):
    """A tensor over a _Pending storage, rebuilt once the storage is read."""


def _resolve_pending(obj, storages, path):
    if isinstance(obj, _PendingTensor):
        if obj.key not in storages:
            raise UsageError('%s: storage %s is missing' % (path, obj.key))
        return _rebuild_tensor(storages[obj.key], *obj.args)
    if isinstance(obj, dict):
        resolved = type(obj)()
        for k, v in obj.items():
            resolved[k] = _resolve_pending(v, storages, path)
        return resolved
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve_pending(v, storages, path) for v in obj)
    return obj


def _rebuild_any(storage, *args):
    """torch._utils._rebuild_tensor(_v2): now, or once a legacy file's storage is read."""
    if isinstance(storage, _Pending):
        return _PendingTensor(storage.key, args)
    return _rebuild_tensor(storage, *args)


# (module, name) -> what the unpickler gives for it; nothing else is ever resolved.
_ALLOWED = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch._utils', '_rebuild_tensor'): _rebuild_any,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_any,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
}
_ALLOWED.update({('torch', name): _StorageType(name) for name in STORAGE_DTYPES})


def read(path):
    """The object saved in a .pth file, tensors as numpy arrays (dicts stay dicts)."""
    # is_zipfile swallows OSError (a directory, no permission): open it here to say which.
    try:
        with open(path, 'rb') as f:
            starts_as_zip = f.read(4) == b'PK\x03\x04'
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        if starts_as_zip:  # its directory at the end is missing: cut short
            raise UsageError('%s is damaged: a zip archive without its end (truncated?)' % path)
        return _read_legacy(path)
    except OSError as e:
        raise UsageError('cannot read %s: %s' % (path, e.strerror or e)) from None
    except (zipfile.BadZipFile, EOFError) as e:  # e.g. a truncated download
        raise UsageError('%s is damaged: %s' % (path, e)) from None


def read_state_dict(path):
    """{name: array} of a .pth file: a state dict, or a dict holding one under 'state_dict'
    (megvii's training checkpoints). Names are kept as saved (a network's name table knows
    its reference's prefixes, such as DataParallel's 'module.')."""
    obj = read(path)
    if isinstance(obj, dict) and 'state_dict' in obj and isinstance(obj['state_dict'], dict):
        obj = obj['state_dict']
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise UsageError('%s holds no state dict (a dict of tensors)' % path)
    return collections.OrderedDict(obj)

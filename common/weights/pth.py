"""Reads PyTorch .pth files (the zip format of torch >= 1.6 and the legacy pickle format) into
numpy arrays, without torch and without running code from the file.

A .pth file is a pickle, and a pickle may name any Python callable to be called on load
(os.system, for one). The unpickler here resolves only the few globals a saved state dict
needs; any other name stops the read before anything is called.

A file also declares its own sizes, and a crafted one may declare far more than it holds or
than anyone needs. So reading has two steps: read_state_dict() unpickles names, shapes and
storage records only; StateDict.arrays(names) reads the tensors a caller has checked (the
importer: against the network's shapes), refusing before any allocation or inflation a
tensor outside its storage, a storage other than the file holds, or one larger than the
named tensors together need.
"""
import collections
import contextlib
import functools
import operator
import os
import pickle
import reprlib
import struct
import zipfile
import zlib

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
# A state dict's pickle holds names and shapes, about 100 bytes a tensor: a larger data.pkl
# is not one, and would be inflated whole before anything could be checked.
PICKLE_LIMIT = 64 << 20

# Values from the file are shown short: a crafted one may be huge or contain itself many times.
_BRIEF = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxstring, _BRIEF.maxother = 2, 40, 40


class _StorageType(collections.namedtuple('_StorageType', ['name'])):
    """Stands for torch.<name>Storage in the pickle: only its element type matters here."""

    @property
    def dtype(self):
        return STORAGE_DTYPES[self.name]

    @property
    def itemsize(self):
        return 2 if self.dtype == 'bfloat16' else np.dtype(self.dtype).itemsize


# A storage as the pickle declares it: key of its bytes, element type, element count.
Storage = collections.namedtuple('Storage', ['key', 'type', 'numel'])


class Tensor(collections.namedtuple('Tensor', ['storage', 'offset', 'shape', 'stride'])):
    """A tensor as the pickle declares it; its bytes are read by StateDict.arrays."""

    @property
    def nbytes(self):
        return functools.reduce(operator.mul, self.shape, 1) * self.storage.type.itemsize

    def elements_needed(self):
        """How many elements of its storage the tensor reaches (0 if it is empty)."""
        if 0 in self.shape:
            return 0
        return self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride)) + 1


def _naturals(values, what):
    if not isinstance(values, (tuple, list)) or not all(
            isinstance(v, int) and v >= 0 for v in values):
        raise ValueError('tensor %s %s is not a list of non-negative integers'
                         % (what, _BRIEF.repr(values)))
    return tuple(values)


def _declare_tensor(storage, offset, size, stride, *unused):
    """torch._utils._rebuild_tensor(_v2), declared only: a Tensor record, nothing read."""
    if not isinstance(storage, Storage):
        raise ValueError('a tensor over %s, not a storage' % _BRIEF.repr(storage))
    offset = _naturals([offset], 'offset')[0]
    size, stride = _naturals(size, 'size'), _naturals(stride, 'stride')
    if len(size) != len(stride):
        raise ValueError('tensor size %s and stride %s differ in length' % (size, stride))
    return Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *unused):
    return data


def _to_numpy(raw, dtype):
    """A flat array of the storage bytes; bfloat16 (absent in numpy) widened to float32."""
    if dtype == 'bfloat16':
        halves = np.frombuffer(raw, '<u2').astype(np.uint32)
        return (halves << 16).view(np.float32)
    return np.frombuffer(raw, dtype)


def _materialize(tensor, raw):
    """What torch rebuilds, on the storage's bytes: a strided view, copied."""
    storage = _to_numpy(raw, tensor.storage.type.dtype)
    if tensor.elements_needed() == 0:
        return np.zeros(tensor.shape, storage.dtype)
    view = np.lib.stride_tricks.as_strided(
        storage[tensor.offset:], tensor.shape,
        tuple(s * storage.itemsize for s in tensor.stride), writeable=False)
    return np.array(view)


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only _ALLOWED globals; persistent ids become Storage records, the same key
    always the same record."""

    def __init__(self, stream, source):
        super().__init__(stream)
        self._source = source
        self.storages = {}

    def find_class(self, module, name):
        # module and name as the file spells them: the C unpickler maps Python 2 names only
        # in its own find_class, which this one replaces
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UsageError(
                '%s: refused to load: the file names %s.%s, which a saved state dict never '
                'needs (a pickle may run any code it names; only tensors and dicts are read)'
                % (self._source, module, name)) from None

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != 'storage':
            raise UsageError('%s: unknown persistent id %s' % (self._source, _BRIEF.repr(pid)))
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _StorageType):
            raise UsageError('%s: storage of unknown type %s'
                             % (self._source, _BRIEF.repr(storage_type)))
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise UsageError('%s: storage %s of %s elements is not a storage record'
                             % (self._source, _BRIEF.repr(key), _BRIEF.repr(numel)))
        if len(pid) > 5 and pid[5] is not None:  # legacy: a view into another storage
            raise UsageError('%s: storage %s is a view of another storage, which this reader '
                             'does not rebuild' % (self._source, key))
        storage = Storage(key, storage_type, numel)
        if self.storages.setdefault(key, storage) != storage:
            raise UsageError('%s: storage %s is declared twice, differently'
                             % (self._source, key))
        return storage


def _load(stream, source):
    """(object, {key: Storage}) of the pickle at the stream's position."""
    unpickler = _RestrictedUnpickler(stream, source)
    try:
        return unpickler.load(), unpickler.storages
    except UsageError:
        raise
    except Exception as e:
        raise UsageError('%s: not a readable .pth file (%s: %s)'
                         % (source, type(e).__name__, e)) from None


def _zip_pickle(archive, path):
    """The data.pkl entry of a torch zip checkpoint and the folder holding it."""
    pickles = [i for i in archive.infolist()
               if i.filename.endswith('/data.pkl') and i.filename.count('/') == 1]
    if len(pickles) != 1:
        raise UsageError('%s: a zip but not a torch checkpoint (no single <dir>/data.pkl)'
                         % path)
    if pickles[0].file_size > PICKLE_LIMIT:
        raise UsageError('%s: %s would inflate to %d bytes, more than a state dict\'s pickle '
                         '(limit %d)' % (path, pickles[0].filename, pickles[0].file_size,
                                         PICKLE_LIMIT))
    return pickles[0], pickles[0].filename[:-len('data.pkl')]


def _open_zip(path):
    """(object, {key: bytes held}, reader of storages) of a torch >= 1.6 zip checkpoint."""
    with zipfile.ZipFile(path) as archive:
        info, folder = _zip_pickle(archive, path)
        names = set(archive.namelist())
        if folder + 'byteorder' in names:
            order = archive.getinfo(folder + 'byteorder')
            if order.file_size != len(b'little') or archive.read(order) != b'little':
                raise UsageError('%s: big-endian tensors are not supported' % path)
        with archive.open(info) as stream:
            obj, storages = _load(stream, path)
        # the zip directory says how large each entry inflates, before anything is inflated
        entries = {key: archive.getinfo('%sdata/%s' % (folder, key)) for key in storages
                   if '%sdata/%s' % (folder, key) in names}
    held = {key: info.file_size for key, info in entries.items()}

    @contextlib.contextmanager
    def reader():
        with zipfile.ZipFile(path) as archive:
            yield lambda key: archive.read(entries[key])

    return obj, held, reader


def _legacy_storage_places(f, path, keys, storages):
    """{key: (position, bytes)} of a legacy file's storages, which follow the pickle, each an
    element count then the bytes: found by seeking, each checked against the count the pickle
    declared and against the bytes left in the file, none read."""
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise UsageError('%s: the list of storages is not a list of keys' % path)
    size, places = os.fstat(f.fileno()).st_size, {}
    for key in keys:
        if key not in storages or key in places:
            raise UsageError('%s: storage %s is listed %s' % (
                path, key, 'twice' if key in places else 'but no tensor uses it'))
        count = f.read(8)
        if len(count) != 8:
            raise UsageError('%s: truncated (storage %s)' % (path, key))
        count = struct.unpack('<q', count)[0]
        if count != storages[key].numel:
            raise UsageError('%s: storage %s holds %d elements, the pickle declares %d'
                             % (path, key, count, storages[key].numel))
        nbytes = count * storages[key].type.itemsize
        if f.tell() + nbytes > size:
            raise UsageError('%s: truncated (storage %s declares %d bytes, %d are left)'
                             % (path, key, nbytes, size - f.tell()))
        places[key] = (f.tell(), nbytes)
        f.seek(nbytes, os.SEEK_CUR)
    return places


def _open_legacy(path):
    """(object, {key: bytes held}, reader of storages) of a legacy (pre-1.6) checkpoint."""
    with open(path, 'rb') as f:
        header = _RestrictedUnpickler(f, path)
        try:
            magic, protocol = header.load(), header.load()
            header.load()  # sys_info: byte order and type sizes of the saving machine
        except UsageError:
            raise
        except Exception:
            magic = protocol = None
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
            raise UsageError('%s: neither a zip nor a legacy torch checkpoint' % path)
        obj, storages = _load(f, path)
        keys, _ = _load(f, path)
        places = _legacy_storage_places(f, path, keys, storages)
    held = {key: nbytes for key, (_, nbytes) in places.items()}

    @contextlib.contextmanager
    def reader():
        with open(path, 'rb') as stream:
            def read(key):
                start, nbytes = places[key]
                stream.seek(start)
                return stream.read(nbytes)
            yield read

    return obj, held, reader


class StateDict:
    """The tensors of a .pth state dict as declared (names, shapes, storages); arrays() reads
    them."""

    def __init__(self, path, tensors, held, reader):
        self.path = path
        self.tensors = tensors  # {name: Tensor}, in the file's order
        self._held = held  # {storage key: bytes the file holds for it}
        self._reader = reader

    @property
    def shapes(self):
        return collections.OrderedDict((k, t.shape) for k, t in self.tensors.items())

    def _check(self, names):
        """Refuses, before anything is read, a named tensor outside its storage or a storage
        other than the file holds or larger than all named tensors need together."""
        budget = sum(self.tensors[name].nbytes for name in names)
        for name in names:
            tensor = self.tensors[name]
            storage, itemsize = tensor.storage, tensor.storage.type.itemsize
            if storage.key not in self._held:
                raise UsageError('%s: storage %s of %s is missing' % (self.path, storage.key,
                                                                      name))
            held = self._held[storage.key]
            if held != storage.numel * itemsize:
                raise UsageError('%s: storage %s of %s declares %d bytes, the file holds %d'
                                 % (self.path, storage.key, name, storage.numel * itemsize,
                                    held))
            if held > budget:
                raise UsageError('%s: storage %s of %s holds %d bytes, more than the %d bytes '
                                 'of all %d tensors read' % (self.path, storage.key, name, held,
                                                             budget, len(names)))
            if tensor.elements_needed() > storage.numel:
                raise UsageError('%s: tensor %s of shape %s reaches outside its storage of %d '
                                 'elements' % (self.path, name, list(tensor.shape),
                                               storage.numel))

    def arrays(self, names):
        """(name, array) of the named tensors, in order, once all of them are checked."""
        names = list(names)
        self._check(names)
        return self._read(names)

    def _read(self, names):
        try:
            with self._reader() as read:
                for name in names:
                    tensor = self.tensors[name]
                    raw = read(tensor.storage.key)
                    if len(raw) != self._held[tensor.storage.key]:
                        raise UsageError('%s: truncated (storage %s)'
                                         % (self.path, tensor.storage.key))
                    yield name, _materialize(tensor, raw)
        except OSError as e:
            raise UsageError('cannot read %s: %s' % (self.path, e.strerror or e)) from None
        except (zipfile.BadZipFile, EOFError, zlib.error) as e:  # damaged, or changed since
            raise UsageError('%s is damaged: %s' % (self.path, e)) from None
        except MemoryError:
            raise UsageError('%s: out of memory reading its tensors' % self.path) from None


# (module, name) -> what the unpickler gives for it; nothing else is ever resolved.
_ALLOWED = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch._utils', '_rebuild_tensor'): _declare_tensor,
    ('torch._utils', '_rebuild_tensor_v2'): _declare_tensor,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
}
_ALLOWED.update({('torch', name): _StorageType(name) for name in STORAGE_DTYPES})


def _open(path):
    """(object, {key: bytes held}, reader of storages) of a .pth file of either format."""
    # is_zipfile swallows OSError (a directory, no permission): open it here to say which.
    try:
        with open(path, 'rb') as f:
            starts_as_zip = f.read(4) == b'PK\x03\x04'
        if zipfile.is_zipfile(path):
            return _open_zip(path)
        if starts_as_zip:  # its directory at the end is missing: cut short
            raise UsageError('%s is damaged: a zip archive without its end (truncated?)' % path)
        return _open_legacy(path)
    except OSError as e:
        raise UsageError('cannot read %s: %s' % (path, e.strerror or e)) from None
    except (zipfile.BadZipFile, EOFError, zlib.error) as e:  # e.g. a truncated download
        raise UsageError('%s is damaged: %s' % (path, e)) from None
    except (MemoryError, RecursionError) as e:  # declared sizes or nesting beyond reason
        raise UsageError('%s: not a readable .pth file (%s)' % (path, type(e).__name__)) from None


def read_state_dict(path):
    """The StateDict of a .pth file: a state dict, or a dict holding one under 'state_dict'
    (megvii's training checkpoints); nothing else in the file is looked at. Names are kept as
    saved (a network's name table knows its reference's prefixes, such as DataParallel's
    'module.')."""
    obj, held, reader = _open(path)
    if isinstance(obj, dict) and isinstance(obj.get('state_dict'), dict):
        obj = obj['state_dict']
    if not isinstance(obj, dict) or not all(
            isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()):
        raise UsageError('%s holds no state dict (a dict of tensors)' % path)
    return StateDict(path, collections.OrderedDict(obj), held, reader)

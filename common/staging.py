"""Output directories that appear complete or not at all (exports, imported weights): written
in a hidden sibling, renamed into place at the end; a failure leaves nothing behind.

The sibling is named .<target>.<host>-<pid>.<random>: one that a killed process (kill -9, a
power cut) left is removed by the next write of the same target on that host, once its process
is gone. An earlier target is replaced by swapping the two directories in one step
(renameat2's RENAME_EXCHANGE), so one of them is in place at every instant.
"""
import contextlib
import ctypes
import errno
import glob
import os
import shutil
import socket
import tempfile

from common.errors import UsageError
from common.logs import log

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _missing_parents(directory):
    """The directories makedirs(directory) would create, outermost first."""
    missing = []
    while directory and not os.path.exists(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    return list(reversed(missing))


def _exchange(first, second):
    """Swaps two directories atomically (Linux renameat2); False where the system or the
    file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                 _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), second)


def _move_into_place(staging, target, replace):
    """Renames staging to target. An existing non-empty target is replaced only when
    `replace`, and only once the new one is complete: swapped with it in one step where the
    system can, else renamed aside and back should the second rename fail."""
    if os.path.isdir(target) and os.listdir(target):
        if not replace:
            raise UsageError('%s exists and is not empty' % target)
        if _exchange(staging, target):
            shutil.rmtree(staging)  # now the old directory
            return
        old = staging + '.old'
        os.rename(target, old)
        try:
            os.rename(staging, target)
        except OSError:
            os.rename(old, target)
            raise
        shutil.rmtree(old)
        return
    if os.path.isdir(target):
        os.rmdir(target)
    os.rename(staging, target)


def _owner_prefix(target):
    return '.%s.%s-' % (os.path.basename(target), socket.gethostname())


def _process_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def remove_stale(target):
    """Removes the staging directories of `target` that a process of this host left when it
    was killed (its PID is in the name and no longer runs)."""
    prefix = _owner_prefix(target)
    for path in glob.glob(os.path.join(glob.escape(os.path.dirname(target)),
                                       glob.escape(prefix) + '*')):
        pid = os.path.basename(path)[len(prefix):].split('.')[0]
        if pid.isdigit() and int(pid) != os.getpid() and _process_gone(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            log.info('removed %s, left by a killed run (process %s)', path, pid)


@contextlib.contextmanager
def new_directory(target, replace=False):
    """Yields a staging directory that becomes `target` when the block succeeds (see
    _move_into_place for an existing target). On any failure the staging directory and the
    parent directories created for it are removed."""
    target = os.path.abspath(target)
    parent = os.path.dirname(target)
    created = _missing_parents(parent)
    try:
        os.makedirs(parent, exist_ok=True)
        remove_stale(target)
        staging = tempfile.mkdtemp(prefix='%s%d.' % (_owner_prefix(target), os.getpid()),
                                   dir=parent)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would stay on the result
    except OSError as e:
        _remove_empty(created)
        raise UsageError('cannot write %s: %s' % (target, e.strerror or e)) from None
    try:
        yield staging
        _move_into_place(staging, target, replace)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        raise UsageError('cannot write %s: %s' % (target, e.strerror or e)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        raise


def _remove_empty(directories):
    for directory in reversed(directories):
        try:
            os.rmdir(directory)
        except OSError:
            break  # not empty (something else wrote there): keep it and its parents

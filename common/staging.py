"""Output directories that appear complete or not at all (exports, imported weights): written
in a hidden sibling, renamed into place at the end; a failure leaves nothing behind."""
import contextlib
import os
import shutil
import tempfile

from common.errors import UsageError


def _missing_parents(directory):
    """The directories makedirs(directory) would create, outermost first."""
    missing = []
    while directory and not os.path.exists(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    return list(reversed(missing))


def _move_into_place(staging, target, replace):
    """Renames staging to target. An existing non-empty target is replaced only when
    `replace`, and only once the new one is complete; if the rename fails it is put back."""
    old = None
    if os.path.isdir(target):
        if os.listdir(target):
            if not replace:
                raise UsageError('%s exists and is not empty' % target)
            old = staging + '.old'
            os.rename(target, old)
        else:
            os.rmdir(target)
    try:
        os.rename(staging, target)
    except OSError:
        if old:
            os.rename(old, target)
        raise
    if old:
        shutil.rmtree(old)


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
        staging = tempfile.mkdtemp(prefix='.%s.' % os.path.basename(target), dir=parent)
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

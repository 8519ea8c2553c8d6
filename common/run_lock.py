"""The exclusive lock a training run holds on its run directory (rank 0), so that a second
training on the same --log_dir stops at start instead of overwriting checkpoints, events and
the log of the first.

An flock on <log_dir>/.lock, held for the process's life: the OS releases it when the process
ends in any way (kill -9 included), so a lock is never stale. The holder writes its PID and
host into the file, for the second one's message. Evaluation takes no lock: it reads a
directory that a training may be writing.
"""
import contextlib
import errno
import fcntl
import os
import socket

from common.errors import UsageError

LOCK_FILE = '.lock'
# The one line for a --log_dir that cannot be written (logs.setup_logging says it too).
UNWRITABLE = 'cannot write in --log_dir=%s: %s; give a --log_dir where you can write'


@contextlib.contextmanager
def held(log_dir):
    """Holds the run directory's lock for the block, which gets None, or a warning to log when
    the file system takes no locks (Lustre, NFS without lockd: the run goes on unlocked);
    UsageError naming the holder if another process has it."""
    path = os.path.join(log_dir, LOCK_FILE)
    try:
        os.makedirs(log_dir, exist_ok=True)
        handle = open(path, 'a+')
    except OSError as e:
        raise UsageError(UNWRITABLE % (log_dir, e.strerror or e)) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                yield ('warning: %s cannot be locked (%s): nothing stops a second training in '
                       'this --log_dir' % (path, e.strerror or e))
                return
            handle.seek(0)
            holder = handle.read().strip() or 'another process'
            raise UsageError('%s is in use by a training run (%s); wait for it to end, or give '
                             'another --log_dir' % (log_dir, holder)) from None
        handle.seek(0)
        handle.truncate()
        handle.write('pid %d on %s' % (os.getpid(), socket.gethostname()))
        handle.flush()
        yield None

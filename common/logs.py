"""The project's logger: rank 0 writes its lines to stdout and the run's log file."""
import logging
import os
import sys

from common.errors import UsageError

LOGGER_NAME = 'ascend_zoo'
# The one line for a --log_dir that cannot be written (run_directory.held says it too).
UNWRITABLE = 'cannot write in --log_dir=%s: %s; give a --log_dir where you can write'

log = logging.getLogger(LOGGER_NAME)


def setup_logging(log_dir, log_name, rank):
    """Rank 0 logs to stdout and <log_dir>/<log_name> (stdout only when log_dir is None);
    other ranks log only errors."""
    log.handlers[:] = []
    log.propagate = False
    log.setLevel(logging.INFO if rank == 0 else logging.ERROR)
    handlers = [logging.StreamHandler(sys.stdout)]
    if rank == 0 and log_dir is not None:
        try:
            os.makedirs(log_dir, exist_ok=True)
            handlers.append(logging.FileHandler(os.path.join(log_dir, log_name)))
        except OSError as e:
            raise UsageError(UNWRITABLE % (log_dir, e.strerror or e)) from None
    for handler in handlers:
        handler.setFormatter(logging.Formatter('%(message)s'))
        log.addHandler(handler)

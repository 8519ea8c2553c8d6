"""The error type for bad input: train.py prints its message as one line and exits non-zero."""


class UsageError(Exception):
    """Bad flags, data, checkpoints or settings, found before or while running."""

"""The record beside a model: hparams.json (what the weights are and how they were made) and
labels.txt (the class names in logit order). The one module that reads and writes both.

Every record holds the configuration's fields that the weights fix (network, num_classes,
image_size, preprocessing, label_offset, the network's options) and a `kind`:
  training  a run directory: the resolved configuration, the runtime and the command line
  imported  import_weights.py's output: the reference file and the variables left fresh
  export    an export directory: the checkpoint's configuration and `export`, what was written
Records written before `kind` existed are told apart by their fields (kind_of).
"""
import json
import os

from common.errors import UsageError

HPARAMS_FILE = 'hparams.json'
# A training's different earlier record, kept when a run in the same directory starts.
PREVIOUS_HPARAMS_FILE = 'hparams.previous.json'
LABELS_FILE = 'labels.txt'
KINDS = ('training', 'imported', 'export')


def read(directory):
    """The hparams.json of a directory, or None when it has none; one that cannot be read or is
    not a JSON object is an error naming it."""
    path = os.path.join(directory, HPARAMS_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError('%s is unreadable (%s): it records the network, sizes and '
                         'preprocessing of the checkpoints beside it; restore it, or remove it '
                         'and give them as flags' % (path, e)) from None
    if not isinstance(record, dict):
        raise UsageError('%s is unreadable: not a JSON object' % path)
    return record


def kind_of(record):
    """The kind of a record (None: no record), older records included."""
    if record is None:
        return None
    if record.get('kind') in KINDS:
        return record['kind']
    if 'export' in record:
        return 'export'
    return 'imported' if 'imported_from' in record else 'training'


def is_export(directory):
    return kind_of(read(directory)) == 'export'


def _replace(path, text):
    """Writes path whole or not at all."""
    with open(path + '.tmp', 'w') as f:
        f.write(text)
    os.replace(path + '.tmp', path)


def _differs(previous, record):
    """Whether two records describe different runs: the command line aside, and the fields an
    older zoo did not write (a later option at its value) not counted."""
    new = json.loads(json.dumps(record))  # as JSON gives it back: tuples become lists
    return any(previous.get(k) != new.get(k) for k in previous if k not in ('command', 'kind'))


def write(directory, kind, record, keep_previous=False):
    """Writes the directory's hparams.json of `kind`. keep_previous: a different record already
    there is kept as hparams.previous.json."""
    if kind not in KINDS:
        raise ValueError('unknown record kind %r' % kind)
    record = dict(record, kind=kind)
    path = os.path.join(directory, HPARAMS_FILE)
    if keep_previous:
        try:
            previous = read(directory)
        except UsageError:
            previous = None
        if previous is not None and _differs(previous, record):
            os.replace(path, os.path.join(directory, PREVIOUS_HPARAMS_FILE))
    _replace(path, json.dumps(record, indent=2, sort_keys=True))


def read_labels(directory):
    """The class names of labels.txt in the directory, or None when it has none."""
    path = os.path.join(directory, LABELS_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return [line.rstrip('\n') for line in f]


def write_labels(directory, names):
    _replace(os.path.join(directory, LABELS_FILE), ''.join(n + '\n' for n in names))

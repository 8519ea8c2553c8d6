"""Applying a network's name table to a reference's tensors: every reference tensor goes to
exactly one zoo variable of the right shape, every zoo variable receives one, or the
conversion stops naming both sides. Works on names and shapes only (no data)."""
import collections

from common.errors import UsageError
from common.weights import layouts

Assignment = collections.namedtuple('Assignment', ['source', 'target', 'layout'])
# fresh: classifier variables left fresh for another class count; absent: {scope: variables}
# of training-only branches the reference was trained without, left fresh too.
Plan = collections.namedtuple('Plan', ['assignments', 'fresh', 'ignored', 'num_classes',
                                       'source_classes', 'label_offset', 'absent'])
# torch batch-norm parameters -> the zoo's (common/layers.py batch_norm).
BATCH_NORM = {'weight': 'gamma', 'bias': 'beta', 'running_mean': 'moving_mean',
              'running_var': 'moving_variance'}
# Counters torch keeps beside the statistics; nothing in the zoo uses them.
TORCH_IGNORED = ('num_batches_tracked',)


def torch_destinations(shapes, scope_of, zoo_names):
    """{torch name: (zoo name, layout) or None (ignored)} for a state dict whose modules map
    to zoo scopes by scope_of(module) (None: no destination, left out of the result).

    Batch norms are the modules with running statistics; a conv goes to a depthwise kernel
    where the zoo has one under that scope.
    """
    modules = {name.rsplit('.', 1)[0] for name in shapes if name.endswith('.running_var')}
    found = collections.OrderedDict()
    for name, shape in shapes.items():
        module, param = name.rsplit('.', 1)
        if param in TORCH_IGNORED:
            found[name] = None
            continue
        scope = scope_of(module)
        if scope is None:
            continue
        if module in modules:
            if param in BATCH_NORM:
                found[name] = ('%s/%s' % (scope, BATCH_NORM[param]), layouts.SAME)
        elif param == 'bias':
            found[name] = (scope + '/bias', layouts.SAME)
        elif param == 'weight' and len(shape) == 4:
            if scope + '/depthwise_kernel' in zoo_names:
                found[name] = (scope + '/depthwise_kernel', layouts.DEPTHWISE)
            else:
                found[name] = (scope + '/kernel', layouts.CONV)
        elif param == 'weight' and len(shape) == 2:
            found[name] = (scope + '/kernel', layouts.LINEAR)
    return found


def _in_scopes(name, scopes):
    return any(name.startswith(s.rstrip('/') + '/') for s in scopes)


def _shape(shape):
    return 'x'.join(map(str, shape)) or 'scalar'


def source_classes(table, source):
    """The reference's class count, read from its classifier's shape."""
    try:
        return table.source_classes(source)
    except (KeyError, StopIteration, IndexError):
        raise UsageError('the reference has no classifier tensor of %s\'s reference (%s): '
                         'a file for another network?' % (table.NETWORK, table.SOURCE.reference)
                         ) from None


def offered_classes(table, source):
    """The classes a converted classifier has by default: the reference's, less
    tensorflow/tpu's background class."""
    return source_classes(table, source) - (1 if table.SOURCE.background_class else 0)


def absent_branches(table, zoo_shapes, received):
    """{scope: its variables} of the table's TRAINING_ONLY_SCOPES (AmoebaNet-D's auxiliary
    head) of which no variable receives anything: the reference was trained without that
    branch. A branch received in part is not absent; its other variables stay errors."""
    absent = collections.OrderedDict()
    for scope in table.TRAINING_ONLY_SCOPES:
        inside = sorted(t for t in zoo_shapes if _in_scopes(t, [scope]))
        if inside and not any(t in received for t in inside):
            absent[scope] = inside
    return absent


def plan(source, table, zoo_shapes, classifier_scopes, num_classes=None):
    """The Plan of converting `source` ({reference name: shape}) with a network's name table
    (official/<net>/weights.py) to the zoo variables {name: shape}.

    num_classes: None takes the reference's classes (1000; tensorflow/tpu's background class
    dropped); the reference's own count keeps every class; any other count leaves the
    classifier's class-bearing variables (last axis: the classes) freshly initialized, for
    fine-tuning to another label set. A training-only branch the reference lacks entirely is
    left freshly initialized too (absent_branches); any other variable must receive a tensor.
    """
    destinations = table.destinations(source, set(zoo_shapes))
    unmapped = [n for n in source if n not in destinations]
    if unmapped:
        raise UsageError('reference tensor %s (%s) maps to no variable of the zoo\'s %s%s' % (
            unmapped[0], _shape(source[unmapped[0]]), table.NETWORK,
            ' (and %d more)' % (len(unmapped) - 1) if len(unmapped) > 1 else ''))
    classes = source_classes(table, source)
    background = table.SOURCE.background_class
    offered = offered_classes(table, source)
    if num_classes is None:
        num_classes = offered
    keep_classifier = num_classes in (offered, classes)
    drop_background = background and num_classes == offered
    assignments, fresh, ignored, by_target = [], set(), [], {}
    for name, destination in destinations.items():
        if destination is None:
            ignored.append(name)
            continue
        target, layout = destination
        if target not in zoo_shapes:
            raise UsageError('reference tensor %s (%s) maps to %s, which the zoo\'s %s does '
                             'not have' % (name, _shape(source[name]), target, table.NETWORK))
        if target in by_target:
            raise UsageError('reference tensors %s and %s both map to %s'
                             % (by_target[target], name, target))
        by_target[target] = name
        converted = tuple(layout.shape(source[name]))
        # The classifier's (and an auxiliary head's) class axis is the last one in the zoo.
        if _in_scopes(target, classifier_scopes) and converted[-1:] == (classes,):
            if not keep_classifier:
                fresh.add(target)
                continue
            if drop_background:
                layout = layouts.drop_first_class(layout, len(converted) - 1)
                converted = tuple(layout.shape(source[name]))
        if converted != tuple(zoo_shapes[target]):
            raise UsageError('reference tensor %s (%s, %s: %s) does not fit zoo variable %s (%s)'
                             % (name, _shape(source[name]), layout.name, _shape(converted),
                                target, _shape(zoo_shapes[target])))
        assignments.append(Assignment(name, target, layout))
    absent = absent_branches(table, zoo_shapes, set(by_target) | fresh)
    left_fresh = fresh.union(*absent.values())
    for target in zoo_shapes:
        if target in by_target or target in left_fresh:
            continue
        raise UsageError('zoo variable %s (%s) receives nothing from the reference (%s tensors '
                         'read)' % (target, _shape(zoo_shapes[target]), len(source)))
    label_offset = 0 if (background and num_classes == classes) else 1
    return Plan(assignments, sorted(fresh), ignored, num_classes, classes, label_offset, absent)

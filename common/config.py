"""The configuration: one schema, resolve() and the read-only Config.

Order: SCHEMA defaults < the network's recipe < the dataset's description (num_classes) <
the demo's settings (--demo) < the checkpoint's hparams.json (what its weights need: sizes,
classes, preprocessing) < overrides (a plain dict: the command line, a test, a benchmark).
resolve() is pure and checks every value against the schema; nothing else in the project
builds a configuration. The command line (flags, --help) is common/command_line.py's; what
is learned at run time (backend, record counts, steps) is common/runtime.py's.
"""
import collections
import math
import re

from common import optimizer, preprocessing, schedules
from common.errors import UsageError

# kind: int | float | bool | str | enum | list | int_list (1 to max_length values, each within
# lower and upper). flag=False: set by recipes only, no flag.
Option = collections.namedtuple('Option', ['name', 'kind', 'default', 'help', 'choices',
                                           'lower', 'upper', 'multiple_of', 'flag',
                                           'max_length'])


def option(name, kind, default, help_text, choices=None, lower=None, upper=None,
           multiple_of=None, flag=True, max_length=None):
    return Option(name, kind, default, help_text, choices, lower, upper, multiple_of, flag,
                  max_length)


MODES = ('train', 'evaluate', 'train_and_evaluate', 'export', 'predict')
# Modes that read a trained model (--eval_dir) rather than train one.
MODEL_MODES = ('evaluate', 'export', 'predict')
EXPORT_FORMATS = ('saved_model', 'frozen_graph', 'onnx')
PRECISION_MODES = ('allow_mix_precision', 'allow_fp32_to_fp16', 'force_fp16', 'force_fp32',
                   'must_keep_origin_dtype')
# The choices of --optimizer, lr_schedule and --preprocessing are the names their modules
# implement.
OPTIMIZERS = tuple(optimizer.OPTIMIZERS)
LR_SCHEDULES = tuple(schedules.SCHEDULES)
PREPROCESSINGS = tuple(preprocessing.PREPROCESSINGS)

# Images above this many pixels are refused before decoding, by predict and by the TFRecord
# builder (common/images.py): PIL's own default limit, 256 MiB of 8-bit RGB once decoded.
MAX_IMAGE_PIXELS = 89478485

SCHEMA = (
    option('mode', 'enum', 'train_and_evaluate',
           'train | evaluate | train_and_evaluate | export | predict.', choices=MODES),
    option('device', 'enum', 'auto', 'Where to run; auto picks npu, then gpu, then cpu.',
           choices=('auto', 'npu', 'gpu', 'cpu')),
    option('precision_mode', 'enum', 'allow_mix_precision',
           'NPU precision mode; on GPU any mixed mode turns on automatic mixed precision.',
           choices=PRECISION_MODES),
    # Ascend's debugging and tuning switches, as the ModelZoo's test/train_*.sh scripts pass
    # them (NPURunConfig; common/estimator.py). Off Ascend they are said once and ignored.
    option('over_dump', 'bool', False, 'NPU: dump the inputs and outputs of operators that '
           'overflow (DumpConfig enable_dump_debug).'),
    option('over_dump_path', 'str', None, 'NPU: where --over_dump writes (default '
           '<log_dir>/overflow_dump).'),
    option('data_dump_flag', 'bool', False, 'NPU: dump every operator\'s inputs and outputs '
           'at --data_dump_step (DumpConfig enable_dump).'),
    option('data_dump_step', 'str', '10', 'NPU: steps that --data_dump_flag dumps, e.g. '
           '"0|5|10" or "0|10-20".'),
    option('data_dump_path', 'str', None, 'NPU: where --data_dump_flag writes (default '
           '<log_dir>/data_dump).'),
    option('profiling', 'bool', False, 'NPU: profile training (ProfilingConfig; task_trace '
           'and training_trace).'),
    option('profiling_dump_path', 'str', None, 'NPU: where --profiling writes (default '
           '<log_dir>/profiling).'),
    option('op_select_implmode', 'enum', None, 'NPU: operator implementations to prefer '
           '(default: the CANN\'s, high_performance).',
           choices=('high_precision', 'high_performance')),
    option('op_compiler_cache_dir', 'str', None, 'NPU: the operator-compile cache, so that a '
           'second start of the same graph skips recompiling (default '
           '<log_dir>/op_compiler_cache).'),
    option('rank_size', 'int', 1, 'Number of devices (processes) in the job.', lower=1),
    option('max_train_steps', 'int', None, 'Global steps to train to (mode=train).', lower=1),
    option('max_epochs', 'int', None, 'Epochs to train (default: the recipe).', lower=1),
    option('epochs_between_evals', 'int', 5, 'Epochs between evaluations.', lower=1),
    option('iterations_per_loop', 'int', 10, 'Steps run on the NPU per Session.run.', lower=1),
    option('save_checkpoints_steps', 'int', None,
           'Checkpoint interval in steps (default: one epoch).', lower=1),
    option('display_every', 'int', 100, 'Log a training line every N steps.', lower=1),
    option('data_dir', 'str', 'path/data',
           'Directory with train-* and validation-* TFRecord shards.'),
    option('eval_dir', 'str', None,
           'Checkpoint directory (or one checkpoint prefix) to evaluate, export or predict with '
           '(predict also takes an export directory); default log_dir.'),
    option('log_dir', 'str', './results', 'Output directory: checkpoints, log, hparams.json.'),
    option('log_name', 'str', 'train.log', 'Name of the log file inside log_dir (evaluate: '
           'evaluate.log).'),
    option('batch_size', 'int', 32, 'Batch size per device.', lower=1),
    option('lr', 'float', 0.1, 'Base learning rate.', lower=0.0),
    option('lr_batch', 'int', None, 'Global batch the recipe quotes lr for (None: no scaling).',
           lower=1, flag=False),
    option('lr_schedule', 'enum', 'cosine_per_epoch', 'Learning-rate schedule.',
           choices=LR_SCHEDULES, flag=False),
    option('T_max', 'int', 150, 'Cosine schedule length in epochs.', lower=1),
    option('lr_decay_rate', 'float', None, 'Exponential schedule: lr factor per epoch.',
           lower=0.0, upper=1.0),
    option('lr_warmup_epochs', 'float', 0.0, 'Linear warm-up from 0, in epochs.', lower=0.0),
    option('lr_floor', 'float', 0.0, 'The learning rate never falls below lr_floor * lr.',
           lower=0.0, upper=1.0, flag=False),
    option('optimizer', 'enum', 'momentum', 'Optimizer: momentum (SGD; --momentum, '
           '--use_nesterov), rmsprop (--momentum) or adam (beta1 0.9, beta2 0.999, epsilon 1e-8).',
           choices=OPTIMIZERS),
    option('momentum', 'float', 0.9, 'Momentum.', lower=0.0),
    option('rmsprop_decay', 'float', 0.9, 'RMSProp: decay of the squared-gradient average.',
           lower=0.0, upper=1.0, flag=False),
    option('rmsprop_epsilon', 'float', 1e-10, 'RMSProp: epsilon inside the square root.',
           lower=0.0, flag=False),
    option('use_nesterov', 'bool', True, 'Nesterov momentum.'),
    option('weight_decay', 'float', 1e-4, 'Weight decay (wd * sum(w^2) / 2 added to the loss).',
           lower=0.0),
    option('weight_decay_scope', 'enum', 'all',
           'all: every trainable variable (seed); kernels: conv/FC weights only.',
           choices=('all', 'kernels')),
    option('label_smoothing', 'float', 0.1, 'Label smoothing.', lower=0.0, upper=1.0),
    option('num_classes', 'int', 1000, 'Number of classes (logits).', lower=2),
    option('label_offset', 'int', 1, 'Subtracted from stored labels (slim records store 1..N).',
           lower=0),
    option('image_size', 'int', 224, 'Training and evaluation crop size.', lower=16),
    option('min_crop_area', 'float', None,
           'Training crops cover at least this fraction of the image (default: the '
           'preprocessing\'s own, 0.08 or 0.1); raise it when objects fill small images.',
           lower=0.01, upper=1.0),
    option('preprocessing', 'enum', 'imagenet_mean_std',
           'Preprocessing by name (default: the recipe\'s, or the one the checkpoint\'s weights '
           'expect).', choices=PREPROCESSINGS),
    option('restore_path', 'str', None, 'Checkpoint (file prefix or directory) to fine-tune from.'),
    option('restore_exclude', 'list', None,
           'Variable scopes not restored from restore_path (default: the classifier).'),
    option('seed', 'int', None, 'Seed for graph, ops and data order; makes runs repeatable '
           '(training preprocessing then runs on one thread).'),
    option('moving_average_decay', 'float', None,
           'Exponential moving average of the weights, used for evaluation; 0: off.',
           lower=0.0, upper=1.0),
    option('export_dir', 'str', None, 'mode=export: directory to create (must not exist, or '
           'be empty, unless --overwrite).'),
    option('export_formats', 'list', None, 'mode=export: any of %s (default: every one whose '
           'dependencies are installed).' % ', '.join(EXPORT_FORMATS)),
    option('export_batch_size', 'int', 1, 'mode=export: the frozen graph\'s fixed batch (ATC '
           'compiles one batch size).', lower=1),
    option('overwrite', 'bool', False, 'mode=export: replace an earlier export directory; '
           'mode=predict: replace an earlier predictions file (--output).'),
    option('max_image_pixels', 'int', MAX_IMAGE_PIXELS, 'mode=predict: images whose header '
           'declares more pixels are refused before decoding (decompression bombs).', lower=1),
    option('images', 'str', None, 'mode=predict: an image file, a directory or a glob.'),
    option('top_k', 'int', 5, 'mode=predict / export: classes reported per image.', lower=1),
    option('output', 'str', None, 'mode=predict: also write the predictions to this CSV file.'),
)
SCHEMA_BY_NAME = {o.name: o for o in SCHEMA}


class Config:
    """A resolved configuration: read-only attributes, one per schema option (plus
    `network`). Deep copies (tf.estimator copies its params) return the object itself."""

    __slots__ = ('_values',)

    def __init__(self, values):
        object.__setattr__(self, '_values', dict(values))

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError('configuration has no value %r' % name) from None

    def __setattr__(self, name, value):
        raise AttributeError('the configuration is read-only (resolve a new one)')

    def __deepcopy__(self, memo):
        return self

    def __eq__(self, other):
        return isinstance(other, Config) and self._values == other._values

    def __hash__(self):
        return hash(tuple(sorted(self._values)))

    def __repr__(self):
        return 'Config(%s)' % ', '.join('%s=%r' % kv for kv in sorted(self._values.items()))

    def as_dict(self):
        return dict(self._values)


def _check(opt, value, source):
    """The value, converted to the option's kind; UsageError naming the option otherwise."""
    if value is None:
        return None
    where = '--%s' % opt.name if source == 'overrides' else '%s: %s' % (source, opt.name)
    kind = opt.kind
    if kind in ('list', 'int_list'):
        if isinstance(value, str):
            value = [v for v in value.split(',') if v]
        if not isinstance(value, (list, tuple)):
            raise UsageError('%s=%r is not a list' % (where, value))
        if kind == 'list':
            return tuple(str(v) for v in value)
        if not value or (opt.max_length is not None and len(value) > opt.max_length):
            raise UsageError('%s=%s must have 1 to %s values' % (
                where, ','.join(map(str, value)), opt.max_length or 'any number of'))
        return tuple(_check_number(opt, v, where, 'int') for v in value)
    if kind == 'bool':
        if not isinstance(value, bool):
            raise UsageError('%s=%r is not true or false' % (where, value))
        return value
    if kind in ('str', 'enum'):
        value = str(value)
        if kind == 'enum' and value not in opt.choices:
            raise UsageError('%s=%s is not one of: %s' % (where, value, ', '.join(opt.choices)))
        return value
    return _check_number(opt, value, where, kind)


def _check_number(opt, value, where, kind):
    """An int or float option's value (or one value of an int_list) within its bounds."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise UsageError('%s=%r is not a number' % (where, value)) from None
    if not math.isfinite(number):
        raise UsageError('%s=%r is not a finite number' % (where, value))
    if kind == 'int' and (isinstance(value, bool) or not number.is_integer()):
        raise UsageError('%s=%r is not an integer' % (where, value))
    value = int(number) if kind == 'int' else number
    if opt.lower is not None and value < opt.lower:
        raise UsageError('%s=%s is below its minimum %s' % (where, value, opt.lower))
    if opt.upper is not None and value > opt.upper:
        raise UsageError('%s=%s is above its maximum %s' % (where, value, opt.upper))
    if opt.multiple_of and value % opt.multiple_of:
        raise UsageError('%s=%s must be a multiple of %d' % (where, value, opt.multiple_of))
    return value


def all_options(networks):
    """The common schema plus every network's own options (each name once)."""
    options = list(SCHEMA)
    for network in networks:
        options.extend(o for o in network.options if o.name not in {x.name for x in options})
    return options


# What a checkpoint's weights fix, taken from its hparams.json: in the modes that read a
# model all of these (and the network's own options), when fine-tuning only the preprocessing.
CHECKPOINT_KEYS = ('num_classes', 'image_size', 'preprocessing', 'moving_average_decay',
                   'label_offset')


# The log of --mode=evaluate when --log_name is not given.
EVALUATE_LOG = 'evaluate.log'
# DumpConfig's dump_step: steps and ranges joined by '|' (the ModelZoo's "0|5|10").
DUMP_STEP = re.compile(r'^\d+(-\d+)?(\|\d+(-\d+)?)*$')


def _check_dump_step(value):
    """What the NPU runtime takes (it aborts the process on anything else): steps and rising
    ranges joined by '|', at most 100 of them."""
    parts = value.split('|')
    if not DUMP_STEP.fullmatch(value) or len(parts) > 100 or any(
            int(p.split('-')[0]) > int(p.split('-')[-1]) for p in parts):
        raise UsageError('--data_dump_step=%s is not a list of at most 100 steps and rising '
                         'ranges such as "0|5|10" or "0|10-20"' % value)


def resolve(network, overrides=None, dataset=None, other_networks=(), checkpoint=None,
            demo=None):
    """Returns the Config of `network` (an official.load record).

    dataset: the data directory's description (dataset.json), whose num_classes sits above
    the recipe and below the other layers. demo: the demo's settings (common/demo.py), below the
    checkpoint's and the user's. checkpoint: the hparams.json of the model that --eval_dir
    (evaluate, export, predict) or --restore_path (fine-tuning) names. other_networks: the
    registry, so that an option of another network is named as such rather than as unknown.
    """
    overrides = dict(overrides or {})
    options = {o.name: o for o in SCHEMA}
    options.update({o.name: o for o in network.options})
    values = {}
    saved = _checkpoint_layer(checkpoint, network, overrides.get('mode', options['mode'].default),
                              overrides)
    for layer, source in ((dict((o.name, o.default) for o in options.values()), 'defaults'),
                          (network.recipe, '%s recipe' % network.name),
                          (_dataset_layer(dataset), 'dataset.json'),
                          (demo or {}, 'the demo\'s settings'),
                          (saved, 'the checkpoint\'s hparams.json'),
                          (overrides, 'overrides')):
        for name, value in layer.items():
            if name not in options:
                if source == 'overrides':
                    owners = [n.name for n in other_networks
                              if name in {o.name for o in n.options}]
                    if owners:
                        raise UsageError('--%s does not apply to --network=%s (only to %s)'
                                         % (name, network.name, ', '.join(owners)))
                raise UsageError('%s: unknown setting %r; known: %s'
                                 % (source, name, ', '.join(sorted(options))))
            values[name] = _check(options[name], value, source)
    if values['restore_exclude'] is None:
        values['restore_exclude'] = tuple(network.classifier_scopes)
    if values['eval_dir'] is None:
        values['eval_dir'] = values['log_dir']
    if values['mode'] == 'evaluate' and 'log_name' not in overrides:
        # beside the checkpoints, apart from the log of a training that may be writing there
        values['log_name'] = EVALUATE_LOG
    if values['image_size'] < network.min_image_size:
        raise UsageError('--image_size=%d is too small for %s%s; use --image_size >= %d' % (
            values['image_size'], network.name, network.min_image_size_reason,
            network.min_image_size))
    if '/' in values['log_name'] or values['log_name'] in ('', '.', '..'):
        raise UsageError('--log_name=%s must be a file name: the log is written inside '
                         '--log_dir' % values['log_name'])
    _check_dump_step(values['data_dump_step'])
    if values['lr_schedule'] == 'exponential_per_epoch' and values['lr_decay_rate'] is None:
        raise UsageError('lr_schedule exponential_per_epoch needs lr_decay_rate')
    values['network'] = network.name
    return Config(values)


def _checkpoint_layer(checkpoint, network, mode, overrides):
    """The values a checkpoint's weights fix. An explicit --num_classes that contradicts them
    is an error in every mode that reads the model; --image_size only in export and predict
    (evaluation at another size is legitimate)."""
    if not checkpoint:
        return {}
    if mode not in MODEL_MODES:
        return {k: checkpoint[k] for k in ('preprocessing',) if checkpoint.get(k)}
    keys = CHECKPOINT_KEYS + tuple(o.name for o in network.options)
    layer = {k: checkpoint[k] for k in keys if checkpoint.get(k) is not None}
    fixed = ('num_classes', 'image_size') if mode in ('export', 'predict') else ('num_classes',)
    for name in fixed:
        if name in overrides and name in layer and overrides[name] != layer[name]:
            raise UsageError('--%s=%s differs from the checkpoint\'s %s (its hparams.json); '
                             'leave the flag out' % (name, overrides[name], layer[name]))
    return layer


def _dataset_layer(dataset):
    if not dataset or dataset.get('num_classes') is None:
        return {}
    return {'num_classes': dataset['num_classes']}

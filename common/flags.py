"""Every command-line flag and the one place where configuration is resolved.

Order: COMMON_DEFAULTS < the network's recipe (official/<net>/hyper_param.py) < flags given
on the command line. Nothing else in the project reads FLAGS.
"""
import sys

from absl import flags

from common.errors import UsageError

DEVICES = ('auto', 'npu', 'gpu', 'cpu')
MODES = ('train', 'evaluate', 'train_and_evaluate')
PRECISION_MODES = ('allow_mix_precision', 'allow_fp32_to_fp16', 'force_fp16', 'force_fp32',
                   'must_keep_origin_dtype')
WEIGHT_DECAY_SCOPES = ('all', 'kernels')

# Values every network shares unless its recipe says otherwise (seed defaults where they exist).
COMMON_DEFAULTS = dict(
    mode='train_and_evaluate',
    device='auto',
    precision_mode='allow_mix_precision',
    rank_size=1,
    max_train_steps=None,
    max_epochs=None,
    epochs_between_evals=5,
    iterations_per_loop=10,
    save_checkpoints_steps=None,  # None: once per epoch, rounded to iterations_per_loop
    display_every=100,
    data_dir='path/data',
    eval_dir=None,  # None: log_dir
    log_dir='./results',
    log_name='train.log',
    batch_size=32,
    lr=0.1,
    lr_batch=None,  # global batch the recipe's lr is quoted for; None: no scaling
    lr_schedule='cosine_per_epoch',
    T_max=150,
    lr_decay_rate=None,  # exponential_per_epoch: factor per epoch
    lr_warmup_epochs=0.0,
    optimizer='momentum',
    momentum=0.9,
    use_nesterov=True,
    weight_decay=1e-4,
    weight_decay_scope='all',
    label_smoothing=0.1,
    num_classes=1000,
    label_offset=1,
    image_size=224,
    preprocessing='imagenet_mean_std',
    restore_path=None,
    restore_exclude=None,
    seed=None,
    moving_average_decay=None,  # None: no weight averaging; else evaluation uses the averages
    # Options of one architecture; a recipe that does not set them rejects the flags.
    num_cells=None,
    reduction_size=None,
    drop_path_keep_prob=None,
)
NETWORK_OPTIONS = ('num_cells', 'reduction_size', 'drop_path_keep_prob')

# Our own FlagValues: absl.logging already defines --log_dir in the global one.
FLAGS = flags.FlagValues()


def define_flags(network_names):
    """Defines the flags. Defaults live in COMMON_DEFAULTS and recipes, so flags default to None."""
    f = _Definer()
    f.DEFINE_enum('network', 'densenet121', network_names, 'Network to train or evaluate.')
    f.DEFINE_bool('list_networks', False, 'Print every network with its parameter count and exit.')
    f.DEFINE_enum('mode', None, MODES, 'train | evaluate | train_and_evaluate.')
    f.DEFINE_enum('device', None, DEVICES, 'Where to run; auto picks npu, then gpu, then cpu.')
    f.DEFINE_enum('precision_mode', None, PRECISION_MODES,
                  'NPU precision mode; on GPU any mixed mode turns on automatic mixed precision.')
    f.DEFINE_integer('rank_size', None, 'Number of devices (processes) in the job.', lower_bound=1)
    f.DEFINE_integer('max_train_steps', None, 'Global steps to train to (mode=train).',
                     lower_bound=1)
    f.DEFINE_integer('max_epochs', None, 'Epochs to train (default: the recipe).', lower_bound=1)
    f.DEFINE_integer('epochs_between_evals', None, 'Epochs between evaluations.', lower_bound=1)
    f.DEFINE_integer('iterations_per_loop', None, 'Steps run on the NPU per Session.run.',
                     lower_bound=1)
    f.DEFINE_integer('save_checkpoints_steps', None,
                     'Checkpoint interval in steps (default: one epoch).', lower_bound=1)
    f.DEFINE_integer('display_every', None, 'Log a training line every N steps.', lower_bound=1)
    f.DEFINE_string('data_dir', None, 'Directory with train-* and validation-* TFRecord shards.')
    f.DEFINE_string('eval_dir', None,
                    'Checkpoint directory (or one checkpoint prefix) to evaluate; default log_dir.')
    f.DEFINE_string('log_dir', None, 'Output directory: checkpoints, log, hparams.json.')
    f.DEFINE_string('log_name', None, 'Name of the log file inside log_dir.')
    f.DEFINE_integer('batch_size', None, 'Batch size per device.', lower_bound=1)
    f.DEFINE_float('lr', None, 'Base learning rate.', lower_bound=0.0)
    f.DEFINE_integer('T_max', None, 'Cosine schedule length in epochs.', lower_bound=1)
    f.DEFINE_float('lr_decay_rate', None, 'Exponential schedule: lr factor per epoch.',
                   lower_bound=0.0, upper_bound=1.0)
    f.DEFINE_float('lr_warmup_epochs', None, 'Linear warm-up from 0, in epochs.', lower_bound=0.0)
    f.DEFINE_float('momentum', None, 'Momentum.', lower_bound=0.0)
    f.DEFINE_float('weight_decay', None, 'Weight decay (wd * sum(w^2) / 2 added to the loss).',
                   lower_bound=0.0)
    f.DEFINE_enum('weight_decay_scope', None, WEIGHT_DECAY_SCOPES,
                  'all: every trainable variable (seed); kernels: conv/FC weights only.')
    f.DEFINE_float('label_smoothing', None, 'Label smoothing.', lower_bound=0.0, upper_bound=1.0)
    f.DEFINE_bool('use_nesterov', None, 'Nesterov momentum.')
    f.DEFINE_integer('num_classes', None, 'Number of classes (logits).', lower_bound=2)
    f.DEFINE_integer('label_offset', None,
                     'Subtracted from stored labels (slim records store 1..N).', lower_bound=0)
    f.DEFINE_integer('image_size', None, 'Training and evaluation crop size.', lower_bound=16)
    f.DEFINE_string('restore_path', None,
                    'Checkpoint (file prefix or directory) to fine-tune from.')
    f.DEFINE_list('restore_exclude', None,
                  'Variable scopes not restored from restore_path (default: the classifier).')
    f.DEFINE_float('moving_average_decay', None,
                   'Exponential moving average of the weights, used for evaluation; 0: off.',
                   lower_bound=0.0, upper_bound=1.0)
    f.DEFINE_integer('num_cells', None, 'AmoebaNet: normal cells over the three stacks.',
                     lower_bound=3)
    f.DEFINE_integer('reduction_size', None, 'AmoebaNet: filters of the first stack.',
                     lower_bound=8)
    f.DEFINE_float('drop_path_keep_prob', None,
                   'AmoebaNet: drop-path keep probability reached at the last step (1: off).',
                   lower_bound=0.01, upper_bound=1.0)
    f.DEFINE_integer('seed', None, 'Seed for graph, ops and data order; makes runs repeatable '
                     '(training preprocessing then runs on one thread).')


class _Definer:
    """flags.DEFINE_* bound to our FlagValues."""

    def __getattr__(self, name):
        define = getattr(flags, name)
        return lambda *args, **kwargs: define(*args, flag_values=FLAGS, **kwargs)


def parse(argv):
    """Parses argv; a bad flag becomes one UsageError line instead of absl's usage dump."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        raise UsageError(str(e)) from None


def resolve(recipe):
    """Returns the frozen configuration: COMMON_DEFAULTS < recipe < explicit flags."""
    unknown = set(recipe) - set(COMMON_DEFAULTS)
    if unknown:  # a recipe key nobody reads is a typo
        raise ValueError('recipe has unknown keys: %s' % sorted(unknown))
    config = dict(COMMON_DEFAULTS)
    config.update(recipe)
    for name in COMMON_DEFAULTS:
        if name in FLAGS and FLAGS[name].present:
            config[name] = FLAGS[name].value
    for name in NETWORK_OPTIONS:
        if recipe.get(name) is None and FLAGS[name].present:
            raise UsageError('--%s does not apply to --network=%s' % (name, FLAGS.network))
    config['network'] = FLAGS.network
    config['command'] = ' '.join(sys.argv)
    return config

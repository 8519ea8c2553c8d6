"""What a run learns when it starts: backend and ranks, record counts, steps, checkpoint interval.

Built once from the Config by make_runtime() (or fixed() for graphs built outside a run: tests,
benchmarks) and never changed; hparams.json records it beside the configuration, all but the
training shards' paths (RECORD_EXCLUDES).
"""
import collections
import functools
import math

from common import backend, input_pipeline, run_directory, run_record
from common.errors import UsageError

Runtime = collections.namedtuple('Runtime', [
    'device', 'rank', 'rank_size', 'local_rank', 'local_size',
    'num_train_images', 'steps_per_epoch', 'total_steps', 'save_checkpoints_steps',
    'restore_prefix', 'train_files'])
# Runtime fields hparams.json leaves out: a path per shard (1,024 for ImageNet).
RECORD_EXCLUDES = ('train_files',)


def record_fields(runtime):
    """The runtime's fields as hparams.json records them."""
    return {k: v for k, v in runtime._asdict().items() if k not in RECORD_EXCLUDES}


def fixed(config, device='cpu', rank=0, rank_size=1, local_rank=0, local_size=1,
          steps_per_epoch=1000, total_steps=10 ** 6, save_checkpoints_steps=10 ** 9,
          num_train_images=None, restore_prefix=None, train_files=None):
    """A Runtime with given numbers, for graphs built outside a run (tests, benchmarks)."""
    del config  # the same signature as make_runtime(): a runtime always belongs to a configuration
    return Runtime(device, rank, rank_size, local_rank, local_size, num_train_images,
                   steps_per_epoch, total_steps, save_checkpoints_steps, restore_prefix,
                   train_files)


def train_targets(config, steps_per_epoch):
    """Global steps at which training stops (and, in train_and_evaluate, evaluates)."""
    if config.mode == 'train':
        if config.max_train_steps:
            return [config.max_train_steps]
        return [config.max_epochs * steps_per_epoch]
    if config.max_train_steps:
        raise UsageError('--max_train_steps is for --mode=train; train_and_evaluate runs '
                         '--max_epochs epochs')
    epochs = list(range(config.epochs_between_evals, config.max_epochs,
                        config.epochs_between_evals)) + [config.max_epochs]
    return [e * steps_per_epoch for e in epochs]


def _largest_divisor_up_to(n, limit):
    return max(d for d in range(1, limit + 1) if n % d == 0)


def check_npu_loops(config, targets, steps_per_epoch, save_checkpoints_steps):
    """The NPU runs whole loops of iterations_per_loop steps: reject what it cannot do."""
    loop = config.iterations_per_loop
    if save_checkpoints_steps % loop:
        raise UsageError('--save_checkpoints_steps=%d is not a multiple of --iterations_per_loop=%d'
                         '; use %d' % (save_checkpoints_steps, loop,
                                       max(loop, save_checkpoints_steps // loop * loop)))
    for target in targets:
        if target % loop:
            divisor = _largest_divisor_up_to(functools.reduce(math.gcd, targets), loop)
            raise UsageError('training stops at step %d (steps per epoch: %d), not a multiple of '
                             '--iterations_per_loop=%d; use --iterations_per_loop=%d'
                             % (target, steps_per_epoch, loop, divisor))


def _train_size(config, rank_size):
    """(train shards, records in them, steps per epoch); in evaluate mode without training
    data the counts come from the checkpoint directory's hparams.json, or are unknown."""
    try:
        files = tuple(input_pipeline.find_files(config.data_dir, 'train'))
    except UsageError:
        if config.mode != 'evaluate':
            raise
        saved = run_record.read(config.eval_dir) or {}
        return None, saved.get('num_train_images'), saved.get('steps_per_epoch')
    num = input_pipeline.count_records(files)
    if config.mode == 'evaluate':
        return files, num, num // (config.batch_size * rank_size) or None
    global_batch = config.batch_size * rank_size
    if num < global_batch:
        raise UsageError('the global batch (--batch_size=%d x %d ranks) is larger than the %d '
                         'training images in %s' % (config.batch_size, rank_size, num,
                                                    config.data_dir))
    return files, num, num // global_batch


def make_runtime(config):
    """Detects the backend and ranks, counts the data and plans the steps; checks them."""
    where = backend.detect(config.device, config.rank_size)
    restore_prefix = None
    if config.restore_path:
        restore_prefix = run_directory.resolve_restore_path(config.restore_path)
    files, num_train, spe = _train_size(config, where.size)
    total_steps = save_steps = None
    if config.mode != 'evaluate':
        if config.max_epochs is None and not config.max_train_steps:
            raise UsageError('give --max_epochs or --max_train_steps')
        targets = train_targets(config, spe)
        total_steps = targets[-1]
        save_steps = config.save_checkpoints_steps
        loop = config.iterations_per_loop if where.device == 'npu' else 1
        if save_steps is None:  # once an epoch, in whole NPU loops
            save_steps = max(loop, spe // loop * loop)
        if where.device == 'npu':
            check_npu_loops(config, targets, spe, save_steps)
    return Runtime(where.device, where.rank, where.size, where.local_rank, where.local_size,
                   num_train, spe, total_steps, save_steps, restore_prefix, files)

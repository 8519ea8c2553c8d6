"""AmoebaNet-D recipe: seed 002's (tensorflow/tpu README's fast recipe, REFERENCES.md section
5.3), per device, and the options only this network has. lr 2.56 is quoted for a global batch
of 1024 and scales linearly: 8 devices x 64 train at 1.28. The seed ran 2.56 unscaled at
batch 64; we keep the recipe's rule instead.
"""
from common.config import option
from official.amoebanet_d import amoebanet_d

RECIPE = dict(
    batch_size=64,
    lr=2.56,
    lr_batch=1024,
    lr_schedule='exponential_per_epoch',
    lr_decay_rate=0.88,
    lr_warmup_epochs=0.35,
    lr_floor=1e-4,  # the reference never lets the rate fall below 1e-4 of the base rate
    max_epochs=35,
    optimizer='rmsprop',
    rmsprop_decay=0.9,
    # epsilon 1.0 inside the square root damps the normalization, so early steps behave like
    # momentum SGD (tensorflow/tpu's setting).
    rmsprop_epsilon=1.0,
    momentum=0.9,
    use_nesterov=False,
    weight_decay=4e-5,
    weight_decay_scope='kernels',  # conv and FC weights, as the reference's l2 regularizer
    label_smoothing=0.1,
    moving_average_decay=0.9999,  # evaluation uses the averaged weights
)

OPTIONS = (
    option('num_cells', 'int', amoebanet_d.NUM_CELLS,
           'AmoebaNet: normal cells over the three stacks.', lower=3),
    # The stem cells use reduction_size / 4 filters, split in two by factorized reduction.
    option('reduction_size', 'int', amoebanet_d.REDUCTION_SIZE,
           'AmoebaNet: filters of the first stack.', lower=8, multiple_of=8),
    option('drop_path_keep_prob', 'float', 1.0,
           'AmoebaNet: drop-path keep probability reached at the last step (1: off, the '
           'reference\'s default).', lower=0.01, upper=1.0),
)

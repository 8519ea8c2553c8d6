"""AmoebaNet-D recipe: seed 002's (tensorflow/tpu README's fast recipe, REFERENCES.md section
5.3), per device. lr 2.56 is quoted for a global batch of 1024 and scales linearly: 8 devices
x 64 train at 1.28. The seed ran 2.56 unscaled at batch 64; we keep the recipe's rule instead.
"""
from official.amoebanet_d import amoebanet_d

RECIPE = dict(
    batch_size=64,
    lr=2.56,
    lr_batch=1024,
    lr_schedule='exponential_per_epoch',
    lr_decay_rate=0.88,
    lr_warmup_epochs=0.35,
    max_epochs=35,
    optimizer='rmsprop',  # decay 0.9, epsilon 1.0 (common/optimizer.py)
    momentum=0.9,
    use_nesterov=False,
    weight_decay=4e-5,
    weight_decay_scope='kernels',  # conv and FC weights, as the reference's l2 regularizer
    label_smoothing=0.1,
    moving_average_decay=0.9999,  # evaluation uses the averaged weights
    num_cells=amoebanet_d.NUM_CELLS,
    reduction_size=amoebanet_d.REDUCTION_SIZE,
    drop_path_keep_prob=1.0,  # the reference's default: off; < 1 turns it on
    restore_exclude=['amoebanet_d/final_layer', 'amoebanet_d/aux_head'],
)

"""DenseNet-121 recipe: the Huawei seed's (REFERENCES.md section 3.2), per device, and the option
only this network has."""
from common.config import option
from official.densenet121 import densenet121

RECIPE = dict(
    batch_size=32,
    lr=0.1,  # as the seed: not rescaled with the number of devices
    lr_schedule='cosine_per_epoch',
    T_max=150,
    max_epochs=150,
    optimizer='momentum',
    momentum=0.9,
    use_nesterov=True,
    weight_decay=1e-4,
    weight_decay_scope='all',  # the seed decays every trainable variable, BN included
    label_smoothing=0.1,
)

OPTIONS = (
    # torchvision's size argument: other counts build a smaller or larger DenseNet of the same
    # design (the tests train a one-layer-per-block one); hparams.json records it. At most
    # four blocks: a fifth would halve the smallest images (32 px) to nothing.
    option('block_config', 'int_list', densenet121.BLOCK_LAYERS,
           'DenseNet: layers in each dense block, at most four blocks (6,12,24,16: '
           'DenseNet-121).', lower=1, upper=64, max_length=len(densenet121.BLOCK_LAYERS)),
)

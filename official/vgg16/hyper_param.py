"""VGG16 recipe: the Huawei seed's (REFERENCES.md section 4.2), per device, and the option only
this network has."""
from common.config import option
from official.vgg16 import vgg16

RECIPE = dict(
    batch_size=32,
    lr=0.01,  # as the seed: not rescaled with the number of devices
    lr_schedule='cosine_per_epoch',
    T_max=150,
    max_epochs=150,
    optimizer='momentum',
    momentum=0.9,
    use_nesterov=True,
    weight_decay=1e-4,
    weight_decay_scope='all',  # the seed decays every trainable variable, biases included
    label_smoothing=0.1,
)

OPTIONS = (
    # Small data from scratch: at 32 px the last map is 1x1 and its features barely differ
    # between images at initialization; fc6/fc7's dropout noise then hides that difference
    # (README, "Training VGG16 on small data").
    option('dropout', 'float', vgg16.DROPOUT, 'VGG16: dropout rate after fc6 and fc7 '
           '(0.5: the architecture\'s).', lower=0.0, upper=0.9),
)

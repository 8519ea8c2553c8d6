"""DenseNet-121 recipe: the Huawei seed's (REFERENCES.md section 3.2), per device."""
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

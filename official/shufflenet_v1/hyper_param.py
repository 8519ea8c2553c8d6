"""megvii ShuffleNet-Series recipe (REFERENCES.md section 1.2), per device: 8 devices x 128
give megvii's global batch 1024, where lr is 0.5; other global batches scale it linearly."""
RECIPE = dict(
    batch_size=128,
    lr=0.5,
    lr_batch=1024,
    lr_schedule='linear_to_zero',  # per step, 300k iterations ~ 240 epochs
    max_epochs=240,
    optimizer='momentum',
    momentum=0.9,
    use_nesterov=False,
    weight_decay=4e-5,
    weight_decay_scope='kernels',  # conv and FC weights only, as megvii
    label_smoothing=0.1,
)

"""ShuffleNetV2 1.0x (torchvision architecture, megvii recipe)."""

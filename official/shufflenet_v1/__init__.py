"""ShuffleNetV1 1.0x, groups 3 (megvii architecture and recipe)."""

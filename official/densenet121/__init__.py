"""DenseNet-121 (torchvision architecture, seed recipe)."""

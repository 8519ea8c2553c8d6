"""VGG16 configuration D (torchvision architecture, seed recipe)."""

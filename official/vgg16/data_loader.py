"""VGG16 input: ImageNet mean/std preprocessing at 224 px (256 px shorter side for eval)."""
PREPROCESSING = 'imagenet_mean_std'
IMAGE_SIZE = 224

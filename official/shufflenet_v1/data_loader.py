"""megvii input: random crop, flip, colour jitter 0.4, BGR in 0..255 without normalization;
eval resizes the shorter side to 256 and crops 224."""
PREPROCESSING = 'megvii_bgr'
IMAGE_SIZE = 224

"""The reference's inception preprocessing: random crop of 10-100% of the image, flip, fast
colour distortion; eval takes the central 87.5%; inputs in [-1, 1]."""
PREPROCESSING = 'inception'
IMAGE_SIZE = 224

"""VGG16's model_fn: the common one; nothing differs."""
from common import model_fn as common_model_fn
from official.vgg16 import vgg16

model_fn = common_model_fn.build(vgg16.build)

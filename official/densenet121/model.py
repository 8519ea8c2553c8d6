"""DenseNet-121's model_fn: the common one; nothing differs."""
from common import model_fn as common_model_fn
from official.densenet121 import densenet121

model_fn = common_model_fn.build(densenet121.build)

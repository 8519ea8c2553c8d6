"""ShuffleNetV1's model_fn: the common one; nothing differs."""
from common import model_fn as common_model_fn
from official.shufflenet_v1 import shufflenet_v1

model_fn = common_model_fn.build(shufflenet_v1.build)

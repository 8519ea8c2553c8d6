"""ShuffleNetV2's model_fn: the common one; nothing differs."""
from common import model_fn as common_model_fn
from official.shufflenet_v2 import shufflenet_v2

model_fn = common_model_fn.build(shufflenet_v2.build)

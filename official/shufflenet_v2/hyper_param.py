"""megvii ShuffleNet-Series recipe: ShuffleNetV2 trains with the same train.py as ShuffleNetV1
(REFERENCES.md section 2.2), so the recipe is that one."""
from official.shufflenet_v1.hyper_param import RECIPE  # noqa: F401

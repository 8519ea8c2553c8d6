"""megvii ShuffleNet-Series recipe, the same train.py as ShuffleNetV1's (REFERENCES.md
section 2.2): only the classifier's scope differs."""
from official.shufflenet_v1 import hyper_param as shufflenet_v1

RECIPE = dict(shufflenet_v1.RECIPE, restore_exclude=['shufflenet_v2/fc'])

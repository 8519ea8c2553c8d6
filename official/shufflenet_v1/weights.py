"""megvii ShuffleNet-Series ShuffleNetV1 (groups 3) checkpoint -> this package's variables.
megvii numbers its units in one Sequential (features.<i>) and the layers inside two branches;
the grouped 1x1 kernels keep torch's group order (common/layers.py group_conv1x1) and the
shuffle is megvii's own order, so no channel is permuted."""
import re

from common.weights import mapping
from common.weights.sources import Source
from official.shufflenet_v1 import shufflenet_v1

NETWORK = 'shufflenet_v1'
SOURCE = Source('megvii ShuffleNet-Series', 'the 1.0x (group=3) checkpoint',
                'megvii-model/ShuffleNet-Series, ShuffleNetV1 README, "Trained Models"', 67.8,
                'pth', 'megvii_bgr', False)
TRAINING_ONLY_SCOPES = ()  # every variable is in the reference's file
MAIN = {('1', '0'): 'conv1', ('1', '1'): 'bn1', ('1', '3'): 'dw', ('1', '4'): 'bn2',
        ('2', '0'): 'conv2', ('2', '1'): 'bn3'}
TOP = {'first_conv.0': 'conv1', 'first_conv.1': 'conv1_bn', 'classifier.0': 'fc'}
PREFIX = 'module.'
_UNIT = re.compile(r'^features\.(\d+)\.branch_main_([12])\.(\d+)$')


def unit_scope(index):
    """features.<index> -> 'stage<s>/unit<u>' (stages 2..4 of STAGE_REPEATS units)."""
    stage = 2
    for repeats in shufflenet_v1.STAGE_REPEATS:
        if index < repeats:
            return 'stage%d/unit%d' % (stage, index)
        index -= repeats
        stage += 1
    return None


def _scope_of(module):
    # megvii saves its DataParallel model: every name starts with 'module.'
    if module.startswith(PREFIX):
        module = module[len(PREFIX):]
    if module in TOP:
        return NETWORK + '/' + TOP[module]
    match = _UNIT.match(module)
    if not match:
        return None
    unit, layer = unit_scope(int(match.group(1))), MAIN.get(match.groups()[1:])
    if unit is None or layer is None:
        return None
    return '%s/%s/%s' % (NETWORK, unit, layer)


def destinations(shapes, zoo_names):
    return mapping.torch_destinations(shapes, _scope_of, zoo_names)


def source_classes(shapes):
    name = next(n for n in shapes if n in ('classifier.0.weight', PREFIX + 'classifier.0.weight'))
    return shapes[name][0]

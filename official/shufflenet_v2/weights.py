"""torchvision's shufflenet_v2_x1_0 state dict -> this package's variables. torchvision numbers
the layers inside each branch's Sequential; the table names them. Concat order ([shortcut,
branch2]) and the shuffle (2 groups, torchvision's order) are the same in both."""
import re

from common.weights import mapping
from common.weights.sources import Source

NETWORK = 'shufflenet_v2'
SOURCE = Source('torchvision', 'shufflenetv2_x1-5666bf0f80.pth', 'download.pytorch.org/models/',
                69.362, 'pth', 'imagenet_mean_std', False)
TRAINING_ONLY_SCOPES = ()  # every variable is in the reference's file
# Sequential index -> our layer name (ReLUs take the missing indices).
BRANCH1 = {'0': 'dw', '1': 'bn1', '2': 'conv', '3': 'bn2'}
BRANCH2 = {'0': 'conv1', '1': 'bn1', '3': 'dw', '4': 'bn2', '5': 'conv2', '6': 'bn3'}
TOP = {'conv1.0': 'conv1', 'conv1.1': 'conv1_bn', 'conv5.0': 'conv5', 'conv5.1': 'conv5_bn',
       'fc': 'fc'}
_UNIT = re.compile(r'^stage(\d)\.(\d+)\.branch([12])\.(\d+)$')


def _scope_of(module):
    if module in TOP:
        return NETWORK + '/' + TOP[module]
    match = _UNIT.match(module)
    if not match:
        return None
    stage, unit, branch, index = match.groups()
    layer = (BRANCH1 if branch == '1' else BRANCH2).get(index)
    if layer is None:
        return None
    return '%s/stage%s/unit%s/branch%s/%s' % (NETWORK, stage, unit, branch, layer)


def destinations(shapes, zoo_names):
    return mapping.torch_destinations(shapes, _scope_of, zoo_names)


def source_classes(shapes):
    return shapes['fc.weight'][0]

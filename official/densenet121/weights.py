"""torchvision's densenet121 state dict -> this package's variables. torchvision's module
names are ours with '.' for '/', except the published file's old dense-layer names
('norm.1', 'conv.2'), which torchvision itself renames on load."""
import re

from common.weights import mapping
from common.weights.sources import Source

NETWORK = 'densenet121'
SOURCE = Source('torchvision', 'densenet121-a639ec97.pth', 'download.pytorch.org/models/', 74.434,
                'pth', 'imagenet_mean_std', False)
TRAINING_ONLY_SCOPES = ()  # every variable is in the reference's file
_OLD_NAME = re.compile(r'^(.*denselayer\d+\.(?:norm|relu|conv))\.([12])$')


def _scope_of(module):
    if not module.startswith('features.') and module != 'classifier':
        return None
    module = _OLD_NAME.sub(r'\1\2', module[len('features.'):] if module != 'classifier'
                           else module)
    return NETWORK + '/' + module.replace('.', '/')


def destinations(shapes, zoo_names):
    return mapping.torch_destinations(shapes, _scope_of, zoo_names)


def source_classes(shapes):
    return shapes['classifier.weight'][0]

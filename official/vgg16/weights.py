"""torchvision's vgg16 state dict -> this package's variables. torchvision numbers its layers
(features.<i>, classifier.<i>); the convs are renumbered as conv<block>_<index> by walking the
indices (a pool sits between two blocks), and fc6's rows are reordered from torch's NCHW
flatten to the zoo's NHWC one."""
import re

from common.weights import layouts, mapping
from common.weights.sources import Source
from official.vgg16 import vgg16

NETWORK = 'vgg16'
SOURCE = Source('torchvision', 'vgg16-397923af.pth', 'download.pytorch.org/models/', 71.592,
                'pth', 'imagenet_mean_std', False)
TRAINING_ONLY_SCOPES = ()  # every variable is in the reference's file
_FEATURE = re.compile(r'^features\.(\d+)\.')
FC_LAYERS = {'classifier.0': 'fc6', 'classifier.3': 'fc7', 'classifier.6': 'fc8'}


def _conv_scopes(shapes):
    """{features.<i>: conv<block>_<index>}: within a block a conv is 2 modules after the last
    (conv, ReLU); a max pool in between makes it 3."""
    indices = sorted({int(m.group(1)) for m in map(_FEATURE.match, shapes) if m})
    scopes, block, index, previous = {}, 1, 0, None
    for i in indices:
        if previous is not None and i - previous > 2:
            block, index = block + 1, 0
        index += 1
        scopes['features.%d' % i] = 'conv%d_%d' % (block, index)
        previous = i
    return scopes


def destinations(shapes, zoo_names):
    scopes = dict(_conv_scopes(shapes), **FC_LAYERS)
    found = mapping.torch_destinations(
        shapes, lambda m: NETWORK + '/' + scopes[m] if m in scopes else None, zoo_names)
    if 'classifier.0.weight' in found:
        pooled = vgg16.POOLED_SIZE
        found['classifier.0.weight'] = (found['classifier.0.weight'][0],
                                        layouts.linear_from_nchw_flatten(pooled, pooled))
    return found


def source_classes(shapes):
    return shapes['classifier.6.weight'][0]

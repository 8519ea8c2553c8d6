"""The registry: network name (= package name = variable scope) -> its parts."""
import collections
import importlib

NETWORK_NAMES = ('densenet121', 'shufflenet_v1', 'shufflenet_v2', 'vgg16', 'amoebanet_d')

Network = collections.namedtuple('Network', ['name', 'build', 'model_fn', 'defaults', 'trainer'])


def load(name):
    """Returns the Network record of a registered network."""
    if name not in NETWORK_NAMES:
        raise ValueError('unknown network %r; known: %s' % (name, ', '.join(NETWORK_NAMES)))

    def part(module):
        return importlib.import_module('official.%s.%s' % (name, module))

    data_loader = part('data_loader')
    defaults = dict(part('hyper_param').RECIPE, image_size=data_loader.IMAGE_SIZE,
                    preprocessing=data_loader.PREPROCESSING)
    return Network(name, part(name).build, part('model').model_fn, defaults, part('trainer'))

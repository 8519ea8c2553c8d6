"""The registry: network name (= package name = variable scope) -> its parts."""
import collections
import importlib

from common import model_fn as common_model_fn

NETWORK_NAMES = ('densenet121', 'shufflenet_v1', 'shufflenet_v2', 'vgg16', 'amoebanet_d')

# build(images, is_training, num_classes, **options) -> (logits, end_points); recipe: plain
# data over common/config.py's schema; options: the network's own config.Option records;
# classifier_scopes: left out when fine-tuning (the default --restore_exclude).
Network = collections.namedtuple('Network', [
    'name', 'build', 'model_fn', 'recipe', 'options', 'classifier_scopes', 'min_image_size',
    'min_image_size_reason'])


def load(name):
    """Returns the Network record of a registered network."""
    if name not in NETWORK_NAMES:
        raise ValueError('unknown network %r; known: %s' % (name, ', '.join(NETWORK_NAMES)))

    def part(module):
        return importlib.import_module('official.%s.%s' % (name, module))

    architecture = part(name)
    data_loader = part('data_loader')
    hyper_param = part('hyper_param')
    recipe = dict(hyper_param.RECIPE, image_size=data_loader.IMAGE_SIZE,
                  preprocessing=data_loader.PREPROCESSING)
    options = tuple(getattr(hyper_param, 'OPTIONS', ()))
    return Network(name, architecture.build, model_fn_for(name, architecture.build, options),
                   recipe, options, architecture.CLASSIFIER_SCOPES, architecture.MIN_IMAGE_SIZE,
                   getattr(architecture, 'MIN_IMAGE_SIZE_REASON', ''))


def model_fn_for(name, build, options):
    """The common model_fn over `build`, given the network's options and what its model.py
    changes, if it has one: arguments() (values that depend on the step) and the auxiliary
    head's loss weight."""
    try:
        model = importlib.import_module('official.%s.model' % name)
    except ModuleNotFoundError as e:
        if e.name != 'official.%s.model' % name:
            raise
        model = None
    return common_model_fn.make_model_fn(build, options, getattr(model, 'arguments', None),
                                 getattr(model, 'AUX_LOSS_WEIGHT', 0.0))


def load_all():
    return [load(name) for name in NETWORK_NAMES]

"""VGG16's model_fn: the common one, with its dropout option."""
from common import model_fn as common_model_fn
from official.vgg16 import vgg16


def arguments(config, runtime, global_step, is_training):
    del runtime, global_step, is_training
    return dict(dropout=config.dropout)


model_fn = common_model_fn.build(vgg16.build, arguments=arguments)

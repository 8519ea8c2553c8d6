"""AmoebaNet-D trains with the common trainer after checking its architecture flags."""
from common import trainer
from common.errors import UsageError
from official.amoebanet_d import amoebanet_d


def check(params):
    """Rejects sizes the graph cannot be built with, before anything is written."""
    if params['reduction_size'] % 8:
        # The stem cells use reduction_size / 4 filters, split in two by factorized reduction.
        raise UsageError('--reduction_size=%d must be a multiple of 8' % params['reduction_size'])
    if params['mode'] != 'evaluate' and amoebanet_d.aux_head_input_size(
            params['image_size']) < amoebanet_d.AUX_POOL:
        smallest = next(n for n in range(params['image_size'], 1000)
                        if amoebanet_d.aux_head_input_size(n) >= amoebanet_d.AUX_POOL)
        raise UsageError('--image_size=%d is too small for the auxiliary head (its %dx%d pool '
                         'needs a %dx%d map); use --image_size >= %d' % (
                             params['image_size'], amoebanet_d.AUX_POOL, amoebanet_d.AUX_POOL,
                             amoebanet_d.AUX_POOL, amoebanet_d.AUX_POOL, smallest))


def run(network, params):
    check(params)
    trainer.run(network, params)

"""AmoebaNet-D's model_fn: the common one, with its architecture flags and the auxiliary
head's loss weight (0.4, hard-coded in the reference)."""
from common import model_fn as common_model_fn
from official.amoebanet_d import amoebanet_d

AUX_LOSS_WEIGHT = 0.4


def options(params):
    return dict(num_cells=params['num_cells'], reduction_size=params['reduction_size'],
                drop_path_keep_prob=params['drop_path_keep_prob'],
                total_steps=params.get('total_steps'))


model_fn = common_model_fn.build(amoebanet_d.build, options=options,
                                 aux_loss_weight=AUX_LOSS_WEIGHT)

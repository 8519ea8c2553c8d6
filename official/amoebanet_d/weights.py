"""tensorflow/tpu amoeba_net checkpoint -> this package's variables. Our scopes are the
reference's, except: slim's 'weights'/'biases' are 'kernel'/'bias' here; the reduction of a
cell's previous input has its own scope (prev_reduction); the 'cell_output' scope, the aux
head's cell number and its unnamed 'Conv' are not kept. Layouts are TF's on both sides.

The reference evaluates with the moving averages of its weights: where a checkpoint holds
them they are the ones taken. Optimizer slots and the step are training state, not model."""
import re

from common import checkpoints
from common.weights import layouts
from common.weights.sources import Source

NETWORK = 'amoebanet_d'
SOURCE = Source('tensorflow/tpu amoeba_net (AmoebaNet-D, N=6, F=256)',
                'a model_dir checkpoint of amoeba_net.py (model.ckpt-N)',
                'trained with tensorflow/tpu models/official/amoeba_net (no file is published '
                'for these sizes)', None, 'tf_checkpoint', 'inception', True)
AVERAGE = checkpoints.AVERAGE_SUFFIX
TRAINING_STATE = re.compile(r'(^global_step$|/(RMSProp|RMSProp_1|Momentum)$)')
RENAMES = (
    # the factorized reduction of a cell's previous input sits in the cell's own scope there
    (re.compile(r'^([^/]+)/(path1_conv|path2_conv|final_path_bn)/'), r'\1/prev_reduction/\2/'),
    (re.compile(r'/weights$'), '/kernel'),
    (re.compile(r'/biases$'), '/bias'),
    (re.compile(r'/cell_output/'), '/'),
    (re.compile(r'^aux_\d+/aux_logits/Conv/'), 'aux_head/aux_logits/conv/'),
    (re.compile(r'^aux_\d+/'), 'aux_head/'),
)
# The auxiliary head feeds only the training loss; tensorflow/tpu's --use_aux_head=false
# trains without it, and then it starts fresh here.
TRAINING_ONLY_SCOPES = (NETWORK + '/aux_head',)


def zoo_name(name):
    for pattern, replacement in RENAMES:
        name = pattern.sub(replacement, name)
    return NETWORK + '/' + name


def destinations(shapes, zoo_names):
    del zoo_names  # the same layouts everywhere
    found = {}
    for name in shapes:
        if TRAINING_STATE.search(name):
            found[name] = None
        elif name.endswith(AVERAGE):
            found[name] = (zoo_name(name[:-len(AVERAGE)]), layouts.SAME)
        elif name + AVERAGE in shapes:
            found[name] = None  # its moving average is taken instead
        else:
            found[name] = (zoo_name(name), layouts.SAME)
    return found


def source_classes(shapes):
    name = 'final_layer/FC/biases'
    return shapes[name + AVERAGE if name + AVERAGE in shapes else name][0]

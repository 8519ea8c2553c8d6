"""What export changes in tf2onnx's model.onnx, none of it changing the values (a permutation
of channels, the same sums): rewrite(model).

Channel shuffles in NCHW. tf2onnx gives an NHWC graph's convolutions NCHW and cancels the
transposes between them, but it cannot move a transpose through a Reshape: each channel shuffle
(reshape to [N, H, W, a, b], swap the last two axes, reshape back) kept a transpose to NHWC
before it and one back after it, full copies of the feature map with the channels last; and its
optimizer keeps the transposes around a multi-output Split or a transpose that has two uses.
In ShuffleNetV2's model.onnx they took 65% of onnxruntime's time (103 of 158 ms a batch of 32).
The same shuffle on NCHW is a reshape to [N, a, b, H, W] and a swap of axes 1 and 2, moving
blocks of H x W, as the reference's own export does. Its reshapes keep the batch dimension
(0, not -1): onnxruntime fuses a convolution with the residual Add and ReLU after it only where
it can tell the two inputs' shapes equal (ShuffleNetV1: 10 of its 13 residual blocks).

Grouped convolutions as one Conv. TensorFlow 1.15 has no grouped convolution on the CPU, so the
inference graph splits the channels, convolves each group and concatenates (ShuffleNetV1's
grouped 1x1s); ONNX's Conv has a group attribute, and a batch norm after it then folds into it.
"""
import numpy as np

NCHW_TO_NHWC = [0, 2, 3, 1]
NHWC_TO_NCHW = [0, 3, 1, 2]
SWAP_LAST_TWO = [0, 1, 2, 4, 3]


def _perm(node):
    """A Transpose's perm, None where it has none (ONNX's default: the axes reversed)."""
    return next((list(a.ints) for a in node.attribute if a.name == 'perm'), None)


def _shuffle_at(reshape_back, producer, constants, uses):
    """The (to_nhwc, reshape, swap) nodes of an NHWC channel shuffle ending in reshape_back,
    or None: transpose NCHW->NHWC, reshape to [-1, H, W, a, b], swap a and b, reshape to
    [-1, H, W, a * b], each intermediate used once."""
    swap = producer.get(reshape_back.input[0])
    if swap is None or swap.op_type != 'Transpose' or _perm(swap) != SWAP_LAST_TWO:
        return None
    reshape = producer.get(swap.input[0])
    if reshape is None or reshape.op_type != 'Reshape' or reshape.input[1] not in constants:
        return None
    to_nhwc = producer.get(reshape.input[0])
    if to_nhwc is None or to_nhwc.op_type != 'Transpose' or _perm(to_nhwc) != NCHW_TO_NHWC:
        return None
    split, merged = constants[reshape.input[1]], constants.get(reshape_back.input[1])
    if (merged is None or len(split) != 5 or split[0] != -1 or list(merged) != list(
            split[:3]) + [split[3] * split[4]]):
        return None
    if any(uses[n.output[0]] != 1 for n in (to_nhwc, reshape, swap)):
        return None
    return to_nhwc, reshape, swap


def _is_transpose(node, perm):
    return node.op_type == 'Transpose' and _perm(node) == perm


def _round_trips_removed(graph):
    """Removes each transpose to NHWC whose every use goes back to NCHW: an inverse transpose,
    or a Split of the channels whose parts all go through one (tf2onnx's optimizer moves
    transposes through single-output nodes only, and keeps a transpose that has two uses);
    such a Split splits the NCHW channels instead."""
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}

    def back_to_nchw(name):
        uses = consumers.get(name, [])
        return uses and all(_is_transpose(u, NHWC_TO_NCHW) and u.output[0] not in outputs
                            for u in uses)

    def channel_split(node):
        return node.op_type == 'Split' and [a.i for a in node.attribute if a.name == 'axis'] == [3]

    removed, renamed = set(), {}
    for to_nhwc in graph.node:
        if not _is_transpose(to_nhwc, NCHW_TO_NHWC) or to_nhwc.output[0] in outputs:
            continue
        uses = consumers.get(to_nhwc.output[0], [])
        if not uses or not all(_is_transpose(u, NHWC_TO_NCHW) or (
                channel_split(u) and all(back_to_nchw(o) for o in u.output)) for u in uses):
            continue
        if any(o in outputs for u in uses for o in u.output):
            continue  # a graph output keeps its name and layout
        removed.add(to_nhwc.output[0])
        for use in uses:
            backs = [use]
            if use.op_type == 'Split':
                use.input[0] = to_nhwc.input[0]
                for a in use.attribute:
                    if a.name == 'axis':
                        a.i = 1
                backs = [b for o in use.output for b in consumers[o]]
            else:
                use.input[0] = to_nhwc.input[0]
            for back in backs:
                removed.add(back.output[0])
                renamed[back.output[0]] = back.input[0]
    if not removed:
        return False

    def resolve(name):
        while name in renamed:
            name = renamed[name]
        return name

    for node in graph.node:
        node.input[:] = [resolve(name) for name in node.input]
    _replace_nodes(graph, lambda n: n.output[0] not in removed)
    return True


def _initializer(graph, name):
    return next((c for c in graph.initializer if c.name == name), None)


def _grouped_convolutions(graph):
    """A Split of the channels into equal parts, each part's own Conv (same attributes, same
    weight shape, no bias) and a Concat of their outputs in order -> one Conv, group = parts."""
    from onnx import helper, numpy_helper
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    removed = set()
    for split in graph.node:
        if split.op_type != 'Split' or [a.i for a in split.attribute if a.name == 'axis'] != [1]:
            continue
        if any(o in outputs for o in split.output):
            continue
        convs = [consumers.get(o, []) for o in split.output]
        if len(convs) < 2 or any(len(c) != 1 or c[0].op_type != 'Conv' or len(c[0].input) != 2
                                 for c in convs):
            continue
        convs = [c[0] for c in convs]
        weights = [_initializer(graph, c.input[1]) for c in convs]
        concat = consumers.get(convs[0].output[0], [None])[0]
        if (any(w is None for w in weights) or concat is None or concat.op_type != 'Concat'
                or [a.i for a in concat.attribute if a.name == 'axis'] != [1]
                or list(concat.input) != [c.output[0] for c in convs]
                or any(len(consumers[c.output[0]]) != 1 or c.output[0] in outputs
                       for c in convs)
                or len({tuple(w.dims) for w in weights}) != 1
                or len({tuple(a.SerializeToString() for a in c.attribute) for c in convs}) != 1
                or any(a.name == 'group' and a.i != 1 for a in convs[0].attribute)):
            continue
        kernel = np.concatenate([numpy_helper.to_array(w) for w in weights], axis=0)
        name = '%s/grouped_%d' % (convs[0].input[1], len(removed))
        graph.initializer.append(numpy_helper.from_array(kernel, name))
        grouped = convs[0]
        grouped.input[:] = [split.input[0], name]
        attributes = [type(a).FromString(a.SerializeToString()) for a in grouped.attribute
                      if a.name != 'group']
        grouped.ClearField('attribute')
        grouped.attribute.extend(attributes + [helper.make_attribute('group', len(convs))])
        concat_output = concat.output[0]
        concat.output[0] = concat_output + '/grouped_conv_replaced'
        grouped.output[0] = concat_output
        removed.update([split.output[0], concat.output[0]] + [c.output[0] for c in convs[1:]])
    if removed:
        _replace_nodes(graph, lambda n: n.output[0] not in removed)
    return bool(removed)


def _replace_nodes(graph, keep):
    """Rebuilds graph.node from copies of the nodes keep(node) accepts, in order."""
    kept = [type(n).FromString(n.SerializeToString()) for n in graph.node if keep(n)]
    graph.ClearField('node')
    graph.node.extend(kept)


def _shuffles_in_nchw(graph):
    """Rewrites each NHWC channel shuffle (_shuffle_at) on the NCHW tensor, its transpose to
    NHWC moved behind it (for _round_trips_removed and the optimizer). Returns whether any."""
    from onnx import helper, numpy_helper
    constants = {c.name: numpy_helper.to_array(c) for c in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    uses = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    shuffles = [(n,) + found for n in graph.node if n.op_type == 'Reshape'
                for found in [_shuffle_at(n, producer, constants, uses)] if found]
    after = {}  # the output of a shuffle -> its transpose to NHWC, which moves behind it
    for index, (reshape_back, to_nhwc, reshape, swap) in enumerate(shuffles):
        _, height, width, a, b = (int(v) for v in constants[reshape.input[1]])
        shapes = []
        for suffix, shape in (('split', [0, a, b, height, width]),
                              ('merged', [0, a * b, height, width])):
            name = 'channel_shuffle_%d/%s_nchw' % (index, suffix)
            graph.initializer.append(numpy_helper.from_array(np.array(shape, np.int64), name))
            shapes.append(name)
        nchw_output = 'channel_shuffle_%d/nchw' % index
        reshape.input[:] = [to_nhwc.input[0], shapes[0]]
        swap.ClearField('attribute')
        swap.attribute.extend([helper.make_attribute('perm', [0, 2, 1, 3, 4])])
        shuffled = reshape_back.output[0]
        reshape_back.input[1], reshape_back.output[0] = shapes[1], nchw_output
        to_nhwc.input[:] = [nchw_output]
        to_nhwc.output[0] = shuffled
        after[nchw_output] = to_nhwc
    if not after:
        return False
    moved = {n.output[0] for n in after.values()}
    order = []
    for node in graph.node:
        if node.output[0] not in moved:
            order.append(node)
            order.extend(after[o] for o in node.output if o in after)
    nodes = [type(n).FromString(n.SerializeToString()) for n in order]
    graph.ClearField('node')
    graph.node.extend(nodes)
    return True


def rewrite(model):
    """Returns the tf2onnx ModelProto `model` with its NHWC channel shuffles done in NCHW, the
    transposes that cancel removed and split-convolve-concatenate groups as grouped Convs,
    then tf2onnx's optimizer run again (it folds batch norms into the grouped Convs); `model`
    itself when none of these is found."""
    import onnx
    from tf2onnx import optimizer
    from tf2onnx.graph import GraphUtil
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    changed = [_shuffles_in_nchw(graph), _round_trips_removed(graph),
               _grouped_convolutions(graph)]
    if not any(changed):
        return model
    optimized = optimizer.optimize_graph(GraphUtil.create_graph_from_onnx_model(model))
    return optimized.make_model(model.graph.doc_string, graph_name=model.graph.name,
                                **GraphUtil.get_onnx_model_properties(model))

"""Channel shuffles of a tf2onnx model moved to ONNX's NCHW layout.

tf2onnx gives an NHWC graph's convolutions NCHW and cancels the transposes between them, but it
cannot move a transpose through a Reshape: each channel shuffle (reshape to [N, H, W, a, b],
swap the last two axes, reshape back) kept a transpose to NHWC before it and one back after it,
full copies of the feature map with the channels last. In ShuffleNetV2's model.onnx they took
65% of onnxruntime's time (103 of 158 ms a batch of 32). The same shuffle on NCHW is a reshape
to [N, a, b, H, W] and a swap of axes 1 and 2: moving blocks of H x W, as the reference's own
export does. shuffles_in_nchw rewrites each such shuffle so, then lets tf2onnx's optimizer cancel
the transposes that are left; the values are the same (a permutation of channels).
"""
import numpy as np

NCHW_TO_NHWC = [0, 2, 3, 1]
NHWC_TO_NCHW = [0, 3, 1, 2]
SWAP_LAST_TWO = [0, 1, 2, 4, 3]


def _perm(node):
    return [list(a.ints) for a in node.attribute if a.name == 'perm'][0]


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

    def back_to_nchw(name):
        uses = consumers.get(name, [])
        return uses and all(_is_transpose(u, NHWC_TO_NCHW) for u in uses)

    def channel_split(node):
        return node.op_type == 'Split' and [a.i for a in node.attribute if a.name == 'axis'] == [3]

    removed, renamed = set(), {}
    for to_nhwc in graph.node:
        if not _is_transpose(to_nhwc, NCHW_TO_NHWC):
            continue
        uses = consumers.get(to_nhwc.output[0], [])
        if not uses or not all(_is_transpose(u, NHWC_TO_NCHW) or (
                channel_split(u) and all(back_to_nchw(o) for o in u.output)) for u in uses):
            continue
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
        return

    def resolve(name):
        while name in renamed:
            name = renamed[name]
        return name

    for node in graph.node:
        node.input[:] = [resolve(name) for name in node.input]
    kept = [type(n).FromString(n.SerializeToString()) for n in graph.node
            if n.output[0] not in removed]
    graph.ClearField('node')
    graph.node.extend(kept)


def shuffles_in_nchw(model):
    """Returns the tf2onnx ModelProto `model` with its NHWC channel shuffles done in NCHW and
    the transposes that cancel removed; `model` itself unchanged if it has none."""
    import onnx
    from onnx import helper, numpy_helper
    from tf2onnx import optimizer
    from tf2onnx.graph import GraphUtil
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    constants = {c.name: numpy_helper.to_array(c) for c in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    uses = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    shuffles = [(n,) + found for n in graph.node if n.op_type == 'Reshape'
                for found in [_shuffle_at(n, producer, constants, uses)] if found]
    if not shuffles:
        return model
    after = {}  # the output of a shuffle -> its transpose to NHWC, which moves behind it
    for index, (reshape_back, to_nhwc, reshape, swap) in enumerate(shuffles):
        _, height, width, a, b = (int(v) for v in constants[reshape.input[1]])
        shapes = []
        for suffix, shape in (('split', [-1, a, b, height, width]),
                              ('merged', [-1, a * b, height, width])):
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
    moved = {n.output[0] for n in after.values()}
    order = []
    for node in graph.node:
        if node.output[0] not in moved:
            order.append(node)
            order.extend(after[o] for o in node.output if o in after)
    nodes = [onnx.NodeProto.FromString(n.SerializeToString()) for n in order]
    graph.ClearField('node')
    graph.node.extend(nodes)
    _round_trips_removed(graph)
    optimized = optimizer.optimize_graph(GraphUtil.create_graph_from_onnx_model(model))
    return optimized.make_model(model.graph.doc_string, graph_name=model.graph.name,
                                **GraphUtil.get_onnx_model_properties(model))

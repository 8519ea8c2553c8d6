"""Layout changes from the references' tensors to the zoo's variables, each on an array and on
a shape alone (so that a mapping can be checked against name/shape lists without the data)."""
import collections

import numpy as np

Layout = collections.namedtuple('Layout', ['name', 'shape', 'apply'])

SAME = Layout('as stored', tuple, lambda a: a)
# torch conv weight [out, in/groups, kh, kw] -> TF kernel [kh, kw, in/groups, out]; also the
# grouped 1x1 convs, whose single zoo kernel keeps torch's group order.
CONV = Layout('OIHW -> HWIO', lambda s: (s[2], s[3], s[1], s[0]),
              lambda a: a.transpose(2, 3, 1, 0))
# torch depthwise weight [channels, 1, kh, kw] -> TF depthwise kernel [kh, kw, channels, 1].
DEPTHWISE = Layout('C1HW -> HWC1', lambda s: (s[2], s[3], s[0], s[1]),
                   lambda a: a.transpose(2, 3, 0, 1))
# torch linear weight [out, in] -> TF dense kernel [in, out].
LINEAR = Layout('[out, in] -> [in, out]', lambda s: (s[1], s[0]), lambda a: a.T)


def linear_from_nchw_flatten(height, width):
    """A linear layer after a flatten: torch flattens [C, H, W], the zoo [H, W, C], so the
    kernel's rows are reordered as well as transposed."""

    def shape(s):
        return (s[1], s[0])

    def apply(a):
        out, inputs = a.shape
        channels = inputs // (height * width)
        return a.reshape(out, channels, height, width).transpose(2, 3, 1, 0).reshape(inputs, out)

    return Layout('[out, C*H*W] -> [H*W*C, out]', shape, apply)


def drop_first_class(layout, axis):
    """`layout`, then the first entry along `axis` (of the result) removed: tensorflow/tpu's
    background class 0 of 1001 when converting to 1000 classes."""

    def shape(s):
        s = list(layout.shape(s))
        s[axis] -= 1
        return tuple(s)

    def apply(a):
        return np.delete(layout.apply(a), 0, axis=axis)

    return Layout(layout.name + ', background class dropped', shape, apply)

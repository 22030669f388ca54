"""Convolution gradients that avoid oneDNN's slow backward kernels on CPU.

oneDNN's depthwise backward is fast for a 3x3 kernel but 10-25x slower than the forward pass
for 5x5 and dilated kernels (the DARTS sep_conv_5x5 and dil_conv ops). For a stride-1
depthwise convolution the input gradient is itself a depthwise convolution: the output
gradient correlated with the 180-degree-rotated kernel, padded by dilation * (k - 1) - padding.
That runs on the fast forward kernel; the weight gradient stays with aten.
"""

import torch
import torch.nn.functional as F


def conv2d_backward(grad_y, x, weight, stride, padding, dilation, groups,
                    need_x: bool, need_w: bool):
    """(grad_x, grad_w) of y = conv2d(x, weight) (no bias), None where not needed. Computed in
    grad_y's dtype (bfloat16 after an autocast forward), returned in x's and weight's."""
    dtypes = x.dtype, weight.dtype
    x, weight = x.to(grad_y.dtype), weight.to(grad_y.dtype)
    grads = _backward(grad_y, x, weight, stride, padding, dilation, groups, need_x, need_w)
    return tuple(None if g is None else g.to(dtype) for g, dtype in zip(grads, dtypes,
                                                                         strict=True))


def _backward(grad_y, x, weight, stride, padding, dilation, groups, need_x, need_w):
    if need_x and _flip_conv_applies(x, weight, stride, padding, dilation, groups):
        grad_x = F.conv2d(grad_y, weight.flip(2, 3), None, 1, _flip_padding(weight, padding,
                                                                              dilation),
                          dilation, groups)
        grad_w = _aten_backward(grad_y, x, weight, stride, padding, dilation, groups,
                                False, need_w)[1]
        return grad_x, grad_w
    return _aten_backward(grad_y, x, weight, stride, padding, dilation, groups, need_x, need_w)


def _aten_backward(grad_y, x, weight, stride, padding, dilation, groups, need_x, need_w):
    if not (need_x or need_w):
        return None, None
    grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
        grad_y, x, weight, None, list(stride), list(padding), list(dilation), False, [0, 0],
        groups, [need_x, need_w, False])
    return grad_x, grad_w


def _flip_padding(weight, padding, dilation):
    return [d * (k - 1) - p for k, p, d in zip(weight.shape[2:], padding, dilation, strict=True)]


def _flip_conv_applies(x, weight, stride, padding, dilation, groups) -> bool:
    depthwise = weight.shape[1] == 1 and groups == x.shape[1] == weight.shape[0]
    return (depthwise and tuple(stride) == (1, 1)
            and min(_flip_padding(weight, padding, dilation)) >= 0)

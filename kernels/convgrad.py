"""Convolution gradients that avoid oneDNN's slow backward kernels on CPU.

oneDNN's depthwise backward is fast for a 3x3 kernel but 10-25x slower than the forward pass
for 5x5 and dilated kernels (the DARTS sep_conv_5x5 and dil_conv ops). For a stride-1
depthwise convolution the input gradient is itself a depthwise convolution: the output
gradient correlated with the 180-degree-rotated kernel, padded by dilation * (k - 1) - padding.
That runs on the fast forward kernel. oneDNN's depthwise weight gradient is fast only for
undilated 3x3 kernels, so a stride-1 5x5 one is assembled from four 3x3 weight gradients,
each over the padded input shifted by 0 or 2 pixels per axis (the blocks overlap on the middle
taps). A dilated one (dilation d) on a map smaller than twice its padding, where oneDNN's
is 3x slower still, or on any map without AVX-512 kernels (oneDNN's AVX2 dilated weight
gradient is 15x its undilated one), is the sum of the undilated weight gradients of its d x d
polyphase components (every d-th row and column of the output gradient against the matching
phase of the padded input; bench/dilated_weight_grad.py compares the two).

A depthwise convolution whose stride s divides its dilation d (the stride-2 dil_convs of a
reduction cell; aten's backward takes 20-40x their forward time) reads only one polyphase
component of its padded input, xpad[::s, ::s], with dilation d / s and stride 1:
y[p] = sum_i w[i] * xpad[s * (p + (d / s) * i)]. Its gradients are those of that stride-1
convolution; the input gradient is zero off the component.

A strided 1x1 convolution of a channels-last map with fewer than FEW_CHANNELS_1X1 input
channels (FactorizedReduce on a PC-DARTS channel slice) is computed as the stride-1 1x1
convolution of the subsampled map x[:, :, ::s, ::s] (`subsampled_pointwise`): oneDNN's AVX2
kernel for its weight gradient (jit_avx2_1x1_convolution_bwd_weights_t, which copies the
strided input to a unit-stride buffer) overruns its buffer there: wrong gradients, heap
corruption, a segfault or a hang (torch 2.14.1, ONEDNN_MAX_CPU_ISA=AVX2; the AVX-512 kernel is
correct). The stride-1 kernel is correct for every channel count and here as fast or faster.

Every rewrite here applies on the CPU only: CUDA runs aten's own backward.
"""

import functools

import torch
import torch.nn.functional as F


def conv2d_backward(grad_y, x, weight, stride, padding, dilation, groups,
                    need_x: bool, need_w: bool):
    """(grad_x, grad_w) of y = conv2d(x, weight) (no bias), None where not needed. Computed in
    grad_y's dtype (bfloat16 after an autocast forward), returned in x's and weight's."""
    dtypes = x.dtype, weight.dtype
    x, weight = x.to(grad_y.dtype), weight.to(grad_y.dtype)
    backward = _backward if grad_y.device.type == "cpu" else _aten_backward
    grads = backward(grad_y, x, weight, stride, padding, dilation, groups, need_x, need_w)
    return tuple(None if g is None else g.to(dtype) for g, dtype in zip(grads, dtypes,
                                                                         strict=True))


def _backward(grad_y, x, weight, stride, padding, dilation, groups, need_x, need_w):
    if subsampled_pointwise(x, weight, stride, padding, dilation):
        return _subsampled_pointwise_backward(grad_y, x, weight, stride, groups, need_x,
                                              need_w)
    if _phase_conv_applies(x, weight, stride, dilation, groups):
        return _phase_backward(grad_y, x, weight, stride, padding, dilation, groups, need_x,
                               need_w)
    if not _flip_conv_applies(x, weight, stride, padding, dilation, groups):
        return _aten_backward(grad_y, x, weight, stride, padding, dilation, groups, need_x,
                              need_w)
    grad_x = grad_w = None
    if need_x:
        grad_x = _flip_conv_input_grad(grad_y, weight, padding, dilation, groups)
    if need_w and tuple(weight.shape[2:]) == (5, 5) and tuple(dilation) == (1, 1):
        grad_w = _depthwise_5x5_weight_grad(grad_y, x, padding)
    elif need_w and max(dilation) > 1 and (_mostly_padding(x, padding) or not _avx512()):
        grad_w = _dilated_weight_grad(grad_y, x, weight, padding, dilation, groups)
    elif need_w:
        grad_w = _aten_backward(grad_y, x, weight, stride, padding, dilation, groups,
                                False, True)[1]
    return grad_x, grad_w


def _depthwise_5x5_weight_grad(grad_y, x, padding):
    """Weight gradient of a stride-1, undilated 5x5 depthwise conv from four 3x3 ones."""
    channels = x.shape[1]
    (pad_h, pad_w), (out_h, out_w) = padding, grad_y.shape[2:]
    padded = F.pad(x, (pad_w, pad_w, pad_h, pad_h))
    block_weight = x.new_zeros(channels, 1, 3, 3)
    grad_w = x.new_empty(channels, 1, 5, 5)
    for top in (0, 2):
        for left in (0, 2):
            window = padded[:, :, top:top + out_h + 2, left:left + out_w + 2]
            grad_w[:, :, top:top + 3, left:left + 3] = _aten_backward(
                grad_y, window, block_weight, (1, 1), (0, 0), (1, 1), channels, False, True)[1]
    return grad_w


FEW_CHANNELS_1X1 = 8  # one AVX2 vector of float32: below it oneDNN's strided 1x1 kernel fails


def subsampled_pointwise(x, weight, stride, padding, dilation) -> bool:
    """A strided, unpadded 1x1 conv of a CPU channels-last map with fewer than FEW_CHANNELS_1X1
    input channels: run it as the stride-1 conv of `subsample(x, stride)` (see module doc)."""
    return (x.device.type == "cpu" and x.dim() == 4 and tuple(weight.shape[2:]) == (1, 1)
            and tuple(stride) != (1, 1) and not any(padding) and max(dilation) == 1
            and x.shape[1] < FEW_CHANNELS_1X1 and memory_format_of(x) == torch.channels_last)


def subsample(x, stride):
    """x[:, :, ::s_h, ::s_w] as a dense tensor in x's memory format: the pixels a strided 1x1
    convolution reads."""
    return x[:, :, ::stride[0], ::stride[1]].contiguous(memory_format=memory_format_of(x))


def _subsampled_pointwise_backward(grad_y, x, weight, stride, groups, need_x, need_w):
    """Gradients of a strided 1x1 conv from those of the stride-1 conv of the subsampled map
    (the input gradient is zero off the subsampled pixels)."""
    grad_sub, grad_w = _aten_backward(grad_y, subsample(x, stride), weight, (1, 1), (0, 0),
                                      (1, 1), groups, need_x, need_w)
    grad_x = None
    if need_x:
        grad_x = torch.zeros_like(x, memory_format=memory_format_of(x))
        grad_x[:, :, ::stride[0], ::stride[1]] = grad_sub
    return grad_x, grad_w


def _phase_backward(grad_y, x, weight, stride, padding, dilation, groups, need_x, need_w):
    """Gradients of a depthwise conv whose stride divides its dilation (see module doc). Only
    x's pixels on the phase are touched: no padded copy of x is made."""
    phase_dilation = [d // s for d, s in zip(dilation, stride, strict=True)]
    extents = [out + d * (k - 1) for out, d, k in zip(grad_y.shape[2:], phase_dilation,
                                                       weight.shape[2:], strict=True)]
    windows = [_phase_window(*axis)
               for axis in zip(x.shape[2:], padding, stride, extents, strict=True)]
    grad_x = grad_w = None
    if need_x:
        (x_h, phase_h, count_h), (x_w, phase_w, count_w) = windows
        grad_phase = _flip_conv_input_grad(grad_y, weight, (0, 0), phase_dilation, groups)
        grad_x = torch.zeros_like(x, memory_format=memory_format_of(x))
        grad_x[:, :, x_h::stride[0], x_w::stride[1]][:, :, :count_h, :count_w] = grad_phase[
            :, :, phase_h:phase_h + count_h, phase_w:phase_w + count_w]
    if need_w:
        phase = _padded_phase(x, windows, stride, extents)
        grad_w = _backward(grad_y, phase, weight, (1, 1), (0, 0), phase_dilation, groups,
                           False, True)[1]
    return grad_x, grad_w


def _dilated_weight_grad(grad_y, x, weight, padding, dilation, groups):
    """Weight gradient of a stride-1 dilated depthwise conv as a sum of undilated ones (fast
    in oneDNN, its dilated one is not) over the d x d polyphase components (a, b):
    dw[i] = sum_p gy[p] xpad[p + d i] = sum_a sum_m gy[a + d m] xpad[a + d m + d i]."""
    grad_w = torch.zeros_like(weight)
    for row in range(dilation[0]):
        for col in range(dilation[1]):
            grad_phase = grad_y[:, :, row::dilation[0], col::dilation[1]]
            if grad_phase.numel() == 0:
                continue
            extents = [out + k - 1 for out, k in zip(grad_phase.shape[2:], weight.shape[2:],
                                                     strict=True)]
            windows = [_phase_window(*axis) for axis in zip(
                x.shape[2:], padding, dilation, extents, (row, col), strict=True)]
            phase = _padded_phase(x, windows, dilation, extents)
            grad_w += _backward(grad_phase.contiguous(memory_format=memory_format_of(x)),
                                phase, weight, (1, 1), (0, 0), (1, 1), groups, False, True)[1]
    return grad_w


def _phase_window(size, pad, stride, extent, offset=0):
    """(first input index, first phase index, count) of the input pixels that lie on the
    phase xpad[offset::stride][:extent] of the input padded by `pad`."""
    first_phase = max(0, -(-(pad - offset) // stride))
    first_input = offset + stride * first_phase - pad
    count = min(extent - first_phase, -(-(size - first_input) // stride))
    return first_input, first_phase, max(count, 0)


def _padded_phase(x, windows, stride, extents):
    """The phase xpad[offset::stride][:extent] (per axis, as `windows` locate it) as a dense
    tensor built from x's pixels on it: no padded copy of the whole input is made."""
    (x_h, phase_h, count_h), (x_w, phase_w, count_w) = windows
    on_phase = x[:, :, x_h::stride[0], x_w::stride[1]][:, :, :count_h, :count_w]
    phase = F.pad(on_phase, (phase_w, extents[1] - phase_w - count_w,
                             phase_h, extents[0] - phase_h - count_h))
    return phase.contiguous(memory_format=memory_format_of(x))


def _flip_conv_input_grad(grad_y, weight, padding, dilation, groups):
    """Input gradient of a stride-1 depthwise conv: grad_y correlated with the flipped kernel."""
    return F.conv2d(grad_y, weight.flip(2, 3), None, 1, _flip_padding(weight, padding, dilation),
                    dilation, groups)


def _aten_backward(grad_y, x, weight, stride, padding, dilation, groups, need_x, need_w):
    if not (need_x or need_w):
        return None, None
    grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
        grad_y, x, weight, None, list(stride), list(padding), list(dilation), False, [0, 0],
        groups, [need_x, need_w, False])
    return grad_x, grad_w


def _flip_padding(weight, padding, dilation):
    return [d * (k - 1) - p for k, p, d in zip(weight.shape[2:], padding, dilation, strict=True)]


@functools.cache
def _avx512() -> bool:
    """Whether aten (and with it oneDNN, unless ONEDNN_MAX_CPU_ISA says otherwise) runs its
    AVX-512 kernels. Without them oneDNN's dilated depthwise weight gradient is slow everywhere:
    the polyphase sum was 2.3-4.2x faster on a 2-core AMD EPYC with AVX2 only (batch 128, 3x3,
    dilation 2, 8-64 channels, 4-32 px; bench/dilated_weight_grad.py, 2026-12-02)."""
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def _mostly_padding(x, padding) -> bool:
    """Padding at least half the input per axis (a 5x5 dilation-2 conv on an 8x8 map): there
    oneDNN's dilated weight gradient is 3x slower than the polyphase sum; elsewhere the two
    are within 2x of each other either way (measured at batch 64, 4-64 channels)."""
    return all(2 * pad >= size for pad, size in zip(padding, x.shape[2:], strict=True))


def _is_depthwise(x, weight, groups) -> bool:
    return weight.shape[1] == 1 and groups == x.shape[1] == weight.shape[0]


def _phase_conv_applies(x, weight, stride, dilation, groups) -> bool:
    return (_is_depthwise(x, weight, groups) and tuple(stride) != (1, 1)
            and all(d % s == 0 for d, s in zip(dilation, stride, strict=True)))


def memory_format_of(x) -> torch.memory_format:
    """channels_last for a 4-d tensor laid out so, else contiguous_format."""
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if channels_last else torch.contiguous_format


def _flip_conv_applies(x, weight, stride, padding, dilation, groups) -> bool:
    return (_is_depthwise(x, weight, groups) and tuple(stride) == (1, 1)
            and min(_flip_padding(weight, padding, dilation)) >= 0)

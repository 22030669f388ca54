"""Lean layers: twins of torch layers that compute the same values and first-order gradients
as the layer they replace, with less memory saved for backward or a faster CPU kernel.

The supernet's cells are built with the plain layers and swapped to these by `make_lean`
(through `operations.make_lean`, which names the SepConv blocks to fuse); `set_lean(module,
False)` switches them (every `LeanSwitch`, the emulated convs included) back, e.g. for a
double backward (create_graph=True), which they refuse with a clear error (`ConvAvgPool2d` is
put in by search/candidates.py). What each replaces, why, and what it gained (one search
step: the DARTS standard config, first order, batch 64, 2 threads on a 2-core AMD EPYC Zen 4;
figures from docs/reference/search_speed.md, from docs/search_step.md, or from the commit
that introduced the layer):

- `LeadingReLU` (mixin of the ops that open with a ReLU): `after_relu(relu_x)` runs the rest
  of the op, so a supernet computes one ReLU per cell state, shared by all ops reading it,
  instead of one per op (part of the 2026-11-21 speed series, no separate figure).
- `LeanBatchNorm2d` replaces training-mode `nn.BatchNorm2d(affine=False)`: it saves its output
  instead of its input, so the convolution output before it is freed at once (memory; no
  separate figure, commit bebef2f, 2026-11-21). A channels-last map of at most FEW_CHANNELS
  channels (a PC-DARTS slice, a 12-channel retrain cell) runs through the NCHW kernel on the
  CPU: 3-6x faster at 4 channels (README), the PC-DARTS step 6.2 -> 3.9 s together with dense
  channel slices (commit be01f27, 2026-11-21).
- `LayoutBatchNorm2d` is the `nn.BatchNorm2d` the networks are built with (operations.py):
  the same layer, with the same NCHW round trip for channels-last CPU maps of at most
  FEW_CHANNELS channels, affine or not. BatchNorm forward + backward of a 128 x 12 x 16 x 16
  map: 4.0-4.3 ms in aten's channels-last kernel, 2.0 ms through the NCHW one (AVX-512 and
  forced AVX2 alike; the channels-last kernel is fast only where the channels are a multiple
  of 16); the default retrain's step in docs/search_profile.md (2026-12-06).
- `LeanMaxPool2d` replaces `nn.MaxPool2d`: it keeps no int64 argmax indices (twice a float
  tensor's size); backward recomputes them. Its stride-1 CPU forward is a pass of row maxima
  then column maxima, 1.4-20x faster than aten's on channels-last CPU maps (commit 48560eb,
  2026-11-21).
- `LeanConv2d` replaces a bias-free float depthwise conv: its backward is
  `kernels.convgrad.conv2d_backward` (oneDNN's depthwise backward is 10-40x slower than its
  forward for 5x5, dilated and strided-dilated kernels; README). With `relu_input` it
  convolves relu(x) but saves x: `make_lean` so fuses the ReLU + depthwise conv that opens the
  second half of each SepConv, which then keeps the BatchNorm output it reads instead of the
  ReLU's output: peak RSS 5.52 -> 4.99 GiB (commit 46835bb, 2026-11-21; README: 5.5 -> 5.0).
  `float_conv_forward` runs the float mode of an emulated conv (approx.module) the same way
  where it is depthwise: the default search's float32 warm-up step 0.43-0.51 -> 0.38-0.41 s,
  its 20 warm-up epochs 2.5-2.7 -> 2.15 minutes (2026-12-06, 2-core AMD EPYC Zen 5; README).
- `ConvAvgPool2d` replaces the search cell's `nn.AvgPool2d(count_include_pad=False)`: on the
  CPU a depthwise box-filter convolution divided by the count of real pixels (the same values
  up to float rounding), whose oneDNN forward and input gradient run ~10x faster than aten's
  avg_pool2d backward (commit c98a732, 2026-11-21).
- `StridedPointwiseConv2d` replaces a strided 1x1 `nn.Conv2d`: on a CPU channels-last map of
  few channels it convolves the subsampled map with stride 1. A correctness workaround (oneDNN's
  AVX2 weight gradient corrupts memory there, see kernels/convgrad.py), as fast or faster
  (commit c165a81, 2026-12-01).

Devices: tuned on the CPU (oneDNN). On CUDA the layers run too (tests/test_cuda.py checks the
supernet's gradients there against the CPU's): the memory savings hold on any device, while
every CPU-kernel rewrite (NCHW round trip, separable max pooling, box-filter average pooling,
convgrad's backward, the subsampled 1x1) checks `device.type == "cpu"` and leaves other
devices on aten's kernels. No gain was measured on a GPU.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from kernels.convgrad import conv2d_backward, memory_format_of, subsample, subsampled_pointwise

# channels-last BatchNorm maps of at most this many channels run through the NCHW kernel on the
# CPU (below one 16-float vector aten's channels-last kernel is 2-6x slower than a round trip;
# at 16 and 32 it is 2-3x faster, at 24 on a par: measured 2026-12-06, AVX-512 and AVX2)
FEW_CHANNELS = 15


class LeadingReLU:
    """Mixin of ops whose first step is a ReLU: `after_relu(relu_x)` runs the rest, so a
    supernet can compute one ReLU per tensor and share it among every op reading it."""

    def after_relu(self, x):
        for module in list(self)[1:]:
            x = module(x)
        return x


class StridedPointwiseConv2d(nn.Conv2d):
    """nn.Conv2d for a strided 1x1 conv. Where convgrad.subsampled_pointwise says so (a CPU
    channels-last map of few channels, whose oneDNN AVX2 weight gradient is broken), it
    convolves the subsampled map with stride 1: the same values, and autograd's gradients then
    come from the stride-1 kernel (double backward included)."""

    def forward(self, x):
        if not subsampled_pointwise(x, self.weight, self.stride, self.padding, self.dilation):
            return super().forward(x)
        return torch.nn.functional.conv2d(subsample(x, self.stride), self.weight, self.bias, 1,
                                          0, 1, self.groups)


class LeanSwitch:
    """Mixin of the layers `set_lean` switches: `lean` True runs their lean path."""

    lean = True


def _check_single_backward(layer: str) -> None:
    """The lean layers save less than a double backward (create_graph=True) would need."""
    if torch.is_grad_enabled():
        raise RuntimeError(f"{layer} has no double backward (create_graph=True); switch it "
                           f"off with kernels.lean.set_lean(model, False)")


class _OutputSavingBatchNorm(torch.autograd.Function):
    """Training-mode BatchNorm without affine parameters that saves its output y = x_hat for
    backward instead of its input (dx = invstd * (g - mean(g) - y * mean(g * y))), so the
    input (a convolution's output) is freed as soon as the forward moves on."""

    @staticmethod
    def forward(ctx, x, running_mean, running_var, momentum, eps):
        layout = _batch_norm_layout(x)
        y, _, invstd = torch.ops.aten.native_batch_norm(
            x.contiguous(memory_format=layout), None, None, running_mean, running_var, True,
            momentum, eps)
        y = y.contiguous(memory_format=memory_format_of(x))
        ctx.save_for_backward(y, invstd)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx, grad_y):
        _check_single_backward("LeanBatchNorm2d")
        y, invstd = ctx.saved_tensors
        layout = _batch_norm_layout(y)
        # x_hat is y itself: pass mean 0 and invstd 1, and invstd as the affine weight
        grad_x = torch.ops.aten.native_batch_norm_backward(
            grad_y.contiguous(memory_format=layout), y.contiguous(memory_format=layout), invstd,
            None, None, torch.zeros_like(invstd), torch.ones_like(invstd), True, ctx.eps,
            [True, False, False])[0]
        return grad_x.contiguous(memory_format=memory_format_of(y)), None, None, None, None


def _batch_norm_layout(x):
    """The memory format to run aten's BatchNorm in: x's own, except for a channels-last map
    of at most FEW_CHANNELS channels on the CPU, where the channels-last kernel (which
    vectorises over channels) is 2-6x slower than a round trip through the NCHW one."""
    layout = memory_format_of(x)
    if layout == torch.channels_last and x.shape[1] <= FEW_CHANNELS and x.device.type == "cpu":
        return torch.contiguous_format
    return layout


class LayoutBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d (the same parameters, buffers and values) running a channels-last CPU map
    of at most FEW_CHANNELS channels through aten's NCHW kernel, its output channels-last
    again; autograd carries the two layout copies."""

    def forward(self, x):
        layout = _batch_norm_layout(x)
        if layout == memory_format_of(x):
            return super().forward(x)
        y = super().forward(x.contiguous(memory_format=layout))
        return y.contiguous(memory_format=memory_format_of(x))


class LeanBatchNorm2d(LeanSwitch, nn.BatchNorm2d):
    """nn.BatchNorm2d(affine=False) keeping only its output for backward in training mode
    (first-order gradients only; `lean=False` restores the aten path, e.g. for a Hessian
    by double backward)."""

    def forward(self, x):
        if not (self.lean and self.training and not self.affine and self.track_running_stats
                and x.requires_grad and x.dtype == self.running_mean.dtype):
            return super().forward(x)
        self.num_batches_tracked.add_(1)
        momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                    else self.momentum)
        return _OutputSavingBatchNorm.apply(x, self.running_mean, self.running_var, momentum,
                                            self.eps)


class _IndexFreeMaxPool(torch.autograd.Function):
    """max_pool2d saving its input (alive anyway as a cell state) instead of int64 argmax
    indices (twice a float tensor's size); backward recomputes the indices."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding):
        ctx.save_for_backward(x)
        ctx.geometry = (kernel_size, stride, padding)
        if stride == [1, 1] and min(kernel_size) > 1 and x.device.type == "cpu":
            return _separable_max_pool(x, kernel_size, padding)
        return torch.nn.functional.max_pool2d(x, kernel_size, stride, padding)

    @staticmethod
    def backward(ctx, grad_y):
        _check_single_backward("LeanMaxPool2d")
        (x,) = ctx.saved_tensors
        kernel_size, stride, padding = ctx.geometry
        _, indices = torch.ops.aten.max_pool2d_with_indices(x, kernel_size, stride, padding)
        grad_x = torch.ops.aten.max_pool2d_with_indices_backward(
            grad_y, x, kernel_size, stride, padding, [1, 1], False, indices)
        return grad_x, None, None, None


def _separable_max_pool(x, kernel_size, padding):
    """Stride-1 max pooling as a pass over rows, then over columns, of elementwise maxima of
    shifted views of the -inf-padded input: the same values as aten's max_pool2d (a max
    rounds nothing; NaN propagates in both), 1.4-20x faster on channels-last CPU maps."""
    (k_h, k_w), (pad_h, pad_w) = kernel_size, padding
    padded = torch.nn.functional.pad(x, (pad_w, pad_w, pad_h, pad_h), value=float("-inf"))
    rows = _max_of_shifts(padded, 3, k_w)
    return _max_of_shifts(rows, 2, k_h)


def _max_of_shifts(t, dim, kernel):
    """Elementwise max over shift < kernel (>= 2) of t.narrow(dim, shift, size - kernel + 1)."""
    size = t.shape[dim] - kernel + 1
    out = torch.maximum(t.narrow(dim, 0, size), t.narrow(dim, 1, size))
    for shift in range(2, kernel):
        torch.maximum(out, t.narrow(dim, shift, size), out=out)
    return out


class LeanMaxPool2d(LeanSwitch, nn.MaxPool2d):
    """nn.MaxPool2d (dilation 1, floor mode) that keeps no indices for backward."""

    def forward(self, x):
        if not (self.lean and x.requires_grad):
            return super().forward(x)
        return _IndexFreeMaxPool.apply(x, _pair(self.kernel_size), _pair(self.stride),
                                       _pair(self.padding))


class _LeanConv(torch.autograd.Function):
    """Bias-free conv2d with convgrad's backward (fast depthwise input gradients). With
    `relu_input` it convolves relu(x) but saves x: when x is kept anyway (a lean BatchNorm's
    output) the ReLU's output costs no memory; backward recomputes it."""

    @staticmethod
    def forward(ctx, x, weight, stride, padding, dilation, groups, relu_input):
        ctx.save_for_backward(x, weight)
        ctx.geometry = (stride, padding, dilation, groups)
        ctx.relu_input = relu_input
        return torch.nn.functional.conv2d(torch.relu(x) if relu_input else x, weight, None,
                                          stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad_y):
        _check_single_backward("LeanConv2d")
        x, weight = ctx.saved_tensors
        conv_input = torch.relu(x) if ctx.relu_input else x
        grad_x, grad_w = conv2d_backward(grad_y, conv_input, weight, *ctx.geometry,
                                         need_x=ctx.needs_input_grad[0],
                                         need_w=ctx.needs_input_grad[1])
        if ctx.relu_input and grad_x is not None:
            grad_x = torch.ops.aten.threshold_backward(grad_x, x, 0)
        return grad_x, grad_w, None, None, None, None, None


class LeanConv2d(LeanSwitch, nn.Conv2d):
    """Bias-free nn.Conv2d run through `_LeanConv`; `activation` (Identity, or the ReLU that
    preceded it when `relu_input`) is applied first."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=False, *, relu_input: bool = False, device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, device=device, dtype=dtype)
        self.activation = nn.ReLU() if relu_input else nn.Identity()

    def forward(self, x):
        relu_input = type(self.activation) is nn.ReLU  # a test may swap in another activation
        supported = self.bias is None and (relu_input or type(self.activation) is nn.Identity)
        if not (self.lean and supported and (x.requires_grad or self.weight.requires_grad)):
            return super().forward(self.activation(x))
        return _LeanConv.apply(x, self.weight, list(self.stride), list(self.padding),
                               list(self.dilation), self.groups, relu_input)


def _lean_conv(conv: nn.Conv2d, relu_input: bool = False) -> LeanConv2d:
    """The LeanConv2d twin of `conv`, holding its weight (built uninitialised: no RNG draws,
    so a seed gives the same run with and without the lean layers)."""
    lean = nn.utils.skip_init(LeanConv2d, conv.in_channels, conv.out_channels,
                              conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                              conv.groups, bias=False, relu_input=relu_input,
                              device=conv.weight.device, dtype=conv.weight.dtype)
    lean.load_state_dict(conv.state_dict())
    return lean


def convgrad_depthwise(conv: nn.Conv2d) -> bool:
    """A bias-free, zero-padded depthwise conv whose stride is 1 or divides its dilation:
    convgrad computes its gradients with fast forward kernels."""
    return (conv.bias is None and conv.padding_mode == "zeros"
            and isinstance(conv.padding, tuple)
            and conv.groups == conv.in_channels == conv.out_channels
            and all(d % s == 0 for d, s in zip(conv.dilation, conv.stride, strict=True)))


def _is_float_depthwise(module: nn.Module) -> bool:
    """A plain nn.Conv2d that convgrad_depthwise accepts."""
    return type(module) is nn.Conv2d and convgrad_depthwise(module)


def float_conv_forward(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """nn.Conv2d's forward of `conv` (a LeanSwitch layer), through `_LeanConv` (the same values,
    convgrad's backward) where it is lean, convgrad_depthwise accepts it and a gradient will
    be taken: the float mode of an emulated conv (the search's float warm-up, the retrain's
    float epochs), whose dilated and strided depthwise convs aten's backward runs 2-40x slower."""
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad)
    if not (conv.lean and needs_grad and convgrad_depthwise(conv)):
        return nn.Conv2d.forward(conv, x)
    return _LeanConv.apply(x, conv.weight, list(conv.stride), list(conv.padding),
                           list(conv.dilation), conv.groups, False)


def _fuse_relu_conv(block: nn.Sequential) -> None:
    """[ReLU, depthwise Conv2d, ...] -> [Identity, LeanConv2d(relu_input), ...]."""
    if type(block[0]) is nn.ReLU and _is_float_depthwise(block[1]):
        block[0], block[1] = nn.Identity(), _lean_conv(block[1], relu_input=True)


def _pair(value):
    return list(value) if isinstance(value, tuple | list) else [value, value]


def make_lean(module: nn.Module, fused: Iterable[nn.Sequential] = ()) -> nn.Module:
    """Swap every BatchNorm2d(affine=False), MaxPool2d and float depthwise conv (stride 1 or
    dividing the dilation) under `module` for its lean twin; first fuse the ReLU + depthwise
    conv that opens each block of `fused` (blocks whose input is kept anyway, e.g. a lean
    BatchNorm's output)."""
    for block in list(fused):
        _fuse_relu_conv(block)
    for parent in module.modules():
        for name, child in parent.named_children():
            if type(child) in (nn.BatchNorm2d, LayoutBatchNorm2d) and not child.affine:
                lean = LeanBatchNorm2d(child.num_features, child.eps, child.momentum,
                                       affine=False)
                lean.load_state_dict(child.state_dict())
                setattr(parent, name, lean)
            elif type(child) is nn.MaxPool2d and child.dilation == 1 and not child.ceil_mode:
                setattr(parent, name, LeanMaxPool2d(child.kernel_size, child.stride,
                                                    child.padding))
            elif _is_float_depthwise(child):
                setattr(parent, name, _lean_conv(child))
    return module


def set_lean(module: nn.Module, enabled: bool) -> int:
    """Switch the lean layers under `module` on or off; returns how many."""
    layers = [m for m in module.modules() if isinstance(m, LeanSwitch)]
    for layer in layers:
        layer.lean = enabled
    return len(layers)


class ConvAvgPool2d(nn.AvgPool2d):
    """avg_pool (count_include_pad=False) as a depthwise box-filter convolution divided by the
    count of real pixels: the same values up to float rounding, but oneDNN's depthwise
    convolution and its input gradient run ~10x faster than aten's avg_pool2d backward on the
    CPU (elsewhere aten's avg_pool2d runs)."""

    def __init__(self, kernel_size, stride, padding):
        super().__init__(kernel_size, stride, padding, count_include_pad=False)

    def forward(self, x):
        if x.device.type != "cpu":
            return super().forward(x)
        kernel = torch.ones(x.shape[1], 1, self.kernel_size, self.kernel_size,
                            device=x.device, dtype=x.dtype)
        sums = F.conv2d(x, kernel, stride=self.stride, padding=self.padding, groups=x.shape[1])
        counts = F.conv2d(torch.ones_like(x[:1, :1]), kernel[:1], stride=self.stride,
                          padding=self.padding)
        return sums / counts

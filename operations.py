"""Candidate operations of the DARTS cell space and their approximate-multiplier variants.

`OPS[name](C, stride, affine)` builds a float32 op. `build_op('sep_conv_3x3@drum4', C, stride,
affine, lut_dir)` builds the same op with every convolution emulated on that 8-bit multiplier
(`@exact` = exact int8 arithmetic). Every block takes a `conv` factory with the signature of
`nn.Conv2d`, so the float and the approximate variants share one definition.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

import torch
import torch.nn as nn

import topology
from approx import ApproxConv2d, MixedApproxConv2d, MultiplierMixture, load_multiplier
from approx.mixed import FLOAT
from genotypes import CONV_PRIMITIVES, PRIMITIVES, op_name_problem, split_op_name
from kernels.convgrad import conv2d_backward, memory_format_of, subsample, subsampled_pointwise

ConvFactory = Callable[..., nn.Conv2d]


class OperationError(ValueError):
    """An unknown op or multiplier name in a candidate set or genotype."""


class LeadingReLU:
    """Mixin of ops whose first step is a ReLU: `after_relu(relu_x)` runs the rest, so a
    supernet can compute one ReLU per tensor and share it among every op reading it."""

    def after_relu(self, x):
        for module in list(self)[1:]:
            x = module(x)
        return x


class ReLUConvBN(LeadingReLU, nn.Sequential):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True, conv=nn.Conv2d):
        super().__init__(
            nn.ReLU(inplace=False),
            conv(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class DilConv(LeadingReLU, nn.Sequential):
    """ReLU, depthwise dilated conv, pointwise conv, BN."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, dilation, affine=True,
                 conv=nn.Conv2d):
        super().__init__(
            nn.ReLU(inplace=False),
            conv(C_in, C_in, kernel_size, stride=stride, padding=padding, dilation=dilation,
                 groups=C_in, bias=False),
            conv(C_in, C_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class SepConv(LeadingReLU, nn.Sequential):
    """Two stacked DilConv blocks with dilation 1 (the DARTS separable convolution)."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True, conv=nn.Conv2d):
        super().__init__(
            DilConv(C_in, C_in, kernel_size, stride, padding, 1, affine, conv),
            DilConv(C_in, C_out, kernel_size, 1, padding, 1, affine, conv),
        )

    def after_relu(self, x):
        return self[1](self[0].after_relu(x))


class Identity(nn.Module):
    def forward(self, x):
        return x


class Zero(nn.Module):
    """The `none` op: a zero tensor of the output shape."""

    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


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


class FactorizedReduce(LeadingReLU, nn.Module):
    """Halve the resolution with two offset stride-2 1x1 convs, concatenated (float convs are
    StridedPointwiseConv2d; approximate ones route their backward through convgrad)."""

    def __init__(self, C_in, C_out, affine=True, conv=nn.Conv2d):
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even C_out, got {C_out}")
        conv = StridedPointwiseConv2d if conv is nn.Conv2d else conv
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = conv(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = conv(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x):
        return self.after_relu(self.relu(x))

    def after_relu(self, x):
        out = torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1)
        return self.bn(out)


def _skip(C, stride, affine, conv=nn.Conv2d):
    return Identity() if stride == 1 else FactorizedReduce(C, C, affine, conv)


def cifar_stem(C_out: int) -> nn.Sequential:
    """The stem of the CIFAR-style networks: a 3x3 conv of the RGB image and a BatchNorm."""
    return nn.Sequential(nn.Conv2d(3, C_out, 3, padding=1, bias=False), nn.BatchNorm2d(C_out))


def preprocess_ops(C_prev_prev: int, C_prev: int, C: int, reduction_prev: bool,
                   affine: bool = True) -> tuple[nn.Module, nn.Module]:
    """The ops bringing a cell's inputs s0 and s1 to its C channels: 1x1 ReLUConvBNs, s0's a
    FactorizedReduce where `topology.preprocess0_stride` halves it (after a reduction)."""
    if topology.preprocess0_stride(reduction_prev) == 2:
        preprocess0 = FactorizedReduce(C_prev_prev, C, affine=affine)
    else:
        preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=affine)
    return preprocess0, ReLUConvBN(C_prev, C, 1, 1, 0, affine=affine)


OPS: dict[str, Callable[..., nn.Module]] = {
    "none": lambda C, stride, affine, conv=nn.Conv2d: Zero(stride),
    "avg_pool_3x3": lambda C, stride, affine, conv=nn.Conv2d: nn.AvgPool2d(
        3, stride=stride, padding=1, count_include_pad=False),
    "max_pool_3x3": lambda C, stride, affine, conv=nn.Conv2d: nn.MaxPool2d(
        3, stride=stride, padding=1),
    "skip_connect": _skip,
    "sep_conv_3x3": lambda C, stride, affine, conv=nn.Conv2d: SepConv(
        C, C, 3, stride, 1, affine, conv),
    "sep_conv_5x5": lambda C, stride, affine, conv=nn.Conv2d: SepConv(
        C, C, 5, stride, 2, affine, conv),
    "dil_conv_3x3": lambda C, stride, affine, conv=nn.Conv2d: DilConv(
        C, C, 3, stride, 2, 2, affine, conv),
    "dil_conv_5x5": lambda C, stride, affine, conv=nn.Conv2d: DilConv(
        C, C, 5, stride, 4, 2, affine, conv),
}
assert set(OPS) == set(PRIMITIVES), "OPS and genotypes.PRIMITIVES must name the same ops"


def conv_factory(multiplier: str | MultiplierMixture | None, lut_dir=None) -> ConvFactory:
    """`nn.Conv2d` for float32, an `ApproxConv2d` bound to the named multiplier (a spec, e.g.
    `my_mul.bin:0.21`), or a `MixedApproxConv2d` reading a `MultiplierMixture`."""
    if multiplier is None:
        return nn.Conv2d
    if isinstance(multiplier, MultiplierMixture):
        return functools.partial(MixedApproxConv2d, mixture=multiplier)
    try:
        resolved = load_multiplier(multiplier, lut_dir=lut_dir)
    except ValueError as error:
        raise OperationError(str(error)) from None
    return functools.partial(ApproxConv2d, multiplier=resolved)


def build_op(name: str, C: int, stride: int, affine: bool, lut_dir=None) -> nn.Module:
    """Build `name` (a primitive or `<conv primitive>@<multiplier>`)."""
    base, multiplier = split_op_name(name)
    check_op_name(name, lut_dir)
    return OPS[base](C, stride, affine, conv_factory(multiplier, lut_dir))


def check_op_name(name: str, lut_dir=None) -> None:
    """Raise OperationError for an unknown op or multiplier (the multiplier is loaded)."""
    problem = op_name_problem(name)
    if problem:
        raise OperationError(problem)
    conv_factory(split_op_name(name)[1], lut_dir)


def check_multipliers(names: Iterable[str], lut_dir=None) -> None:
    """Raise OperationError for a multiplier set member that cannot be loaded ('float', a
    float32 conv, is always valid)."""
    for name in names:
        if name != FLOAT:
            conv_factory(name, lut_dir)


def candidate_ops(primitives: Iterable[str] = PRIMITIVES, multipliers: Iterable[str] = (),
                  lut_dir=None) -> list[str]:
    """The candidate set: the primitives plus `<conv primitive>@<m>` for each multiplier.

    Every name is checked (multipliers are loaded, so a bad name or table fails here,
    before any run directory is written).
    """
    primitives = list(primitives)
    candidates = primitives + [f"{p}@{m}" for m in multipliers
                               for p in primitives if p in CONV_PRIMITIVES]
    for name in candidates:
        check_op_name(name, lut_dir)
    if len(set(candidates)) != len(candidates):
        raise OperationError(f"duplicate candidate ops in {candidates}")
    return candidates


# --- memory-lean blocks for the supernet (same values and gradients, less saved memory) ----
def _check_single_backward(layer: str) -> None:
    """The lean layers save less than a double backward (create_graph=True) would need."""
    if torch.is_grad_enabled():
        raise RuntimeError(f"{layer} has no double backward (create_graph=True); switch it "
                           f"off with operations.set_lean(model, False)")


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


FEW_CHANNELS = 8


def _batch_norm_layout(x):
    """The memory format to run aten's BatchNorm in: x's own, except for a channels-last map
    of at most FEW_CHANNELS channels (PC-DARTS slices) on the CPU, where the channels-last
    kernel (which vectorises over channels) is up to 6x slower than a round trip through the
    NCHW one."""
    layout = memory_format_of(x)
    if layout == torch.channels_last and x.shape[1] <= FEW_CHANNELS and x.device.type == "cpu":
        return torch.contiguous_format
    return layout


class LeanBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d(affine=False) keeping only its output for backward in training mode
    (first-order gradients only; `lean=False` restores the aten path, e.g. for a Hessian
    by double backward)."""

    lean = True

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


class LeanMaxPool2d(nn.MaxPool2d):
    """nn.MaxPool2d (dilation 1, floor mode) that keeps no indices for backward."""

    lean = True

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


class LeanConv2d(nn.Conv2d):
    """Bias-free nn.Conv2d run through `_LeanConv`; `activation` (Identity, or the ReLU that
    preceded it when `relu_input`) is applied first."""

    lean = True

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


def _is_float_depthwise(module: nn.Module) -> bool:
    """A bias-free float depthwise conv whose stride is 1 or divides its dilation: convgrad
    computes its gradients with fast forward kernels."""
    return (type(module) is nn.Conv2d and module.bias is None
            and module.groups == module.in_channels == module.out_channels
            and all(d % s == 0 for d, s in zip(module.dilation, module.stride, strict=True)))


def _fuse_relu_conv(block: nn.Sequential) -> None:
    """[ReLU, depthwise Conv2d, ...] -> [Identity, LeanConv2d(relu_input), ...]."""
    if type(block[0]) is nn.ReLU and _is_float_depthwise(block[1]):
        block[0], block[1] = nn.Identity(), _lean_conv(block[1], relu_input=True)


def _pair(value):
    return list(value) if isinstance(value, tuple | list) else [value, value]


def make_lean(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm2d(affine=False), MaxPool2d and float depthwise conv (stride 1 or
    dividing the dilation) under `module` for its lean twin, and fuse the ReLU + depthwise
    conv that opens the second half of each SepConv (it reads the first half's lean
    BatchNorm output)."""
    for block in module.modules():
        if isinstance(block, SepConv):
            _fuse_relu_conv(block[1])
    for parent in module.modules():
        for name, child in parent.named_children():
            if type(child) is nn.BatchNorm2d and not child.affine:
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
    lean_types = LeanBatchNorm2d | LeanMaxPool2d | LeanConv2d
    layers = [m for m in module.modules() if isinstance(m, lean_types)]
    for layer in layers:
        layer.lean = enabled
    return len(layers)

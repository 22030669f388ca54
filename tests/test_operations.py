"""Candidate operations: shapes, approximate variants computing through their multiplier, names."""

import pytest
import torch

import kernels.lean
import operations
from approx.module import ApproxConv2d, emulating
from approx.settings import FLOAT_MODE
from genotypes import CONV_PRIMITIVES, PRIMITIVES
from kernels.convgrad import memory_format_of
from operations import OperationError, build_op, candidate_ops


@pytest.mark.parametrize("name", list(PRIMITIVES) + [f"{p}@trunc6" for p in CONV_PRIMITIVES])
@pytest.mark.parametrize("stride", [1, 2])
def test_every_op_keeps_shapes(name, stride):
    x = torch.randn(2, 6, 8, 8, requires_grad=True)
    y = build_op(name, 6, stride, affine=True)(x)
    assert y.shape == (2, 6, 8 // stride, 8 // stride)
    if name != "none":
        y.sum().backward()
        assert x.grad is not None


@pytest.mark.parametrize("base", CONV_PRIMITIVES)
def test_approximate_variant_computes_through_its_multiplier(base):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    outputs = {}
    for multiplier in ("exact", "trunc8", "drum4"):
        torch.manual_seed(1)
        op = build_op(f"{base}@{multiplier}", 4, 1, affine=False).eval()
        outputs[multiplier] = op(x)
    torch.manual_seed(1)
    float_out = build_op(base, 4, 1, affine=False).eval()(x)
    assert not torch.allclose(outputs["exact"], outputs["trunc8"])
    assert not torch.allclose(outputs["trunc8"], outputs["drum4"])
    # exact 8-bit arithmetic stays close to float32 (quantisation error only)
    assert (outputs["exact"] - float_out).abs().max() < 0.1 * float_out.abs().max()


def test_candidate_set_expands_conv_ops_only():
    names = candidate_ops(PRIMITIVES, ["trunc6"])
    assert names[: len(PRIMITIVES)] == list(PRIMITIVES)
    assert names[len(PRIMITIVES):] == [f"{p}@trunc6" for p in CONV_PRIMITIVES]


@pytest.mark.parametrize("name, message", [
    ("conv_9x9", "unknown op 'conv_9x9'; valid ops: none, max_pool_3x3"),
    ("max_pool_3x3@trunc6", "only conv ops"),
    ("sep_conv_3x3@no_such_multiplier", "no_such_multiplier"),
])
def test_unknown_names_are_clear_errors(name, message):
    with pytest.raises(OperationError, match=message):
        operations.check_op_name(name)


def test_duplicate_candidates_rejected():
    with pytest.raises(OperationError, match="duplicate"):
        candidate_ops(["sep_conv_3x3", "sep_conv_3x3"])


@pytest.mark.parametrize("channels", [4, 16])  # 4: the few-channel NCHW round trip
@pytest.mark.parametrize("channels_last", [False, True])
def test_lean_batch_norm_matches_batch_norm(channels, channels_last):
    torch.manual_seed(0)
    x = torch.randn(3, channels, 5, 6, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    plain = torch.nn.BatchNorm2d(channels, affine=False).double()
    lean = operations.make_lean(torch.nn.Sequential(
        torch.nn.BatchNorm2d(channels, affine=False))).double()[0]
    assert isinstance(lean, kernels.lean.LeanBatchNorm2d)
    grad_y = torch.randn(x.shape, dtype=torch.float64)
    outputs = []
    for layer in (plain, lean):
        x_in = x.clone().requires_grad_()
        y = layer(x_in)
        outputs.append((y, torch.autograd.grad(y, x_in, grad_y)[0], layer.running_var))
    (y_ref, grad_ref, var_ref), (y, grad, var) = outputs
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(grad, grad_ref)
    torch.testing.assert_close(var, var_ref)
    assert y.is_contiguous(memory_format=memory_format_of(x))


@pytest.mark.parametrize("kernel, stride", [(3, 1), (3, 2), (5, 1), (1, 1)])
@pytest.mark.parametrize("channels", [4, 16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_lean_max_pool_matches_max_pool(kernel, stride, channels, channels_last):
    torch.manual_seed(0)
    x = torch.randn(3, channels, 7, 6).round(decimals=1)  # rounded: ties in windows
    x[0, 0, 2, 3] = float("nan")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    grad_y = torch.randn(3, channels, -(-7 // stride), -(-6 // stride))
    padding = kernel // 2
    results = []
    for layer in (torch.nn.MaxPool2d(kernel, stride, padding),
                  kernels.lean.LeanMaxPool2d(kernel, stride, padding)):
        x_in = x.clone().requires_grad_()
        y = layer(x_in)
        results.append((y, torch.autograd.grad(y, x_in, grad_y)[0]))
    (y_ref, grad_ref), (y, grad) = results
    torch.testing.assert_close(y, y_ref, equal_nan=True, rtol=0, atol=0)
    torch.testing.assert_close(grad, grad_ref, equal_nan=True, rtol=0, atol=0)


@pytest.mark.parametrize("channels", [12, 16])  # 12: through the NCHW kernel; 16: its own
@pytest.mark.parametrize("affine", [False, True])
def test_layout_batch_norm_matches_batch_norm(channels, affine):
    """The networks' BatchNorm: aten's values, gradients and running statistics, and the
    input's channels-last layout, whichever kernel it runs."""
    torch.manual_seed(0)
    x = torch.randn(3, channels, 5, 6, dtype=torch.float64).contiguous(
        memory_format=torch.channels_last)
    plain = torch.nn.BatchNorm2d(channels, affine=affine).double()
    layout = kernels.lean.LayoutBatchNorm2d(channels, affine=affine).double()
    layout.load_state_dict(plain.state_dict())
    grad_y = torch.randn(x.shape, dtype=torch.float64)
    results = []
    for layer in (plain, layout):
        x_in = x.clone().requires_grad_()
        y = layer(x_in)
        params = list(layer.parameters())
        grads = torch.autograd.grad(y, [x_in, *params], grad_y)
        results.append((y, grads, layer.running_mean, layer.running_var))
        assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(results[1], results[0])


@pytest.mark.parametrize("kernel, stride, dilation", [(3, 1, 2), (3, 2, 2), (5, 1, 1), (3, 2, 1),
                                                      (1, 1, 1)])
def test_emulated_conv_float_mode_matches_conv(kernel, stride, dilation):
    """An emulated conv's float mode (the float warm-ups) computes nn.Conv2d's values and
    gradients, its depthwise gradients through convgrad while lean (kernels.lean
    float_conv_forward), aten's after set_lean(False), which a double backward needs."""
    torch.manual_seed(0)
    channels, padding = 6, dilation * (kernel - 1) // 2
    groups = channels if kernel > 1 else 1
    plain = torch.nn.Conv2d(channels, channels, kernel, stride, padding, dilation, groups,
                            bias=False).double()
    emulated = ApproxConv2d(channels, channels, kernel, stride, padding, dilation, groups,
                            multiplier="drum4").double()
    emulated.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, channels, 9, 8, dtype=torch.float64).contiguous(
        memory_format=torch.channels_last)
    results = []
    with emulating(emulated, mode=FLOAT_MODE):
        for layer in (plain, emulated):
            x_in = x.clone().requires_grad_()
            y = layer(x_in)
            grad_y = torch.randn(y.shape, dtype=torch.float64,
                                 generator=torch.Generator().manual_seed(1))
            results.append((y, torch.autograd.grad(y, [x_in, layer.weight], grad_y)))
        torch.testing.assert_close(results[1], results[0])
        through_convgrad = type(y.grad_fn).__name__ == "_LeanConvBackward"
        assert through_convgrad == kernels.lean.convgrad_depthwise(emulated)
        kernels.lean.set_lean(emulated, False)
        x_in = x.clone().requires_grad_()
        (grad_x,) = torch.autograd.grad(emulated(x_in).square().sum(), x_in, create_graph=True)
        assert grad_x.requires_grad  # aten's conv: twice differentiable

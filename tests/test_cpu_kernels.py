"""The float32 kernels the ops reach on this CPU (oneDNN's, chosen by the ISA: CI runs this file
natively and with ONEDNN_MAX_CPU_ISA=AVX2) against float64 references, at the few-channel
channels-last shapes of PC-DARTS channel slices."""

import pytest
import torch

from genotypes import PRIMITIVES
from kernels.lean import StridedPointwiseConv2d
from operations import FactorizedReduce, build_op, make_lean


def _gradients(module, x, dtype):
    module = module.to(dtype)
    x = x.to(dtype).requires_grad_()
    y = module(x)
    y.backward(torch.randn(y.shape, generator=torch.Generator().manual_seed(2)).to(dtype))
    return [y.detach(), x.grad, *(p.grad for p in module.parameters())]


def _check_against_float64(make_module, x):
    reference = make_module()
    got = _gradients(make_module(), x.contiguous(memory_format=torch.channels_last),
                     torch.float32)
    expected = _gradients(reference, x, torch.float64)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g.double(), e, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("channels", [2, 3, 4, 6, 8])
def test_factorized_reduce_gradients_on_few_channels(channels):
    x = torch.randn(16, channels, 16, 16, generator=torch.Generator().manual_seed(channels))
    def make():
        torch.manual_seed(0)
        return FactorizedReduce(channels, 4, affine=True).to(memory_format=torch.channels_last)
    _check_against_float64(make, x)


@pytest.mark.parametrize("name", PRIMITIVES[1:])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("channels", [2, 4])
def test_lean_supernet_ops_on_few_channels(name, stride, channels):
    """Each candidate as the supernet runs it (lean layers, convgrad's backward)."""
    x = torch.randn(8, channels, 8, 8, generator=torch.Generator().manual_seed(1))
    def make():
        torch.manual_seed(0)
        op = build_op(name, channels, stride, affine=False)
        return make_lean(op.to(memory_format=torch.channels_last))
    _check_against_float64(make, x)


def test_strided_pointwise_conv_is_a_plain_conv_elsewhere():
    conv = StridedPointwiseConv2d(16, 8, 1, stride=2, bias=False)
    x = torch.randn(2, 16, 8, 8).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(conv(x), torch.nn.functional.conv2d(x, conv.weight, stride=2))

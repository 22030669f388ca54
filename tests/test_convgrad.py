"""kernels.convgrad.conv2d_backward against autograd's convolution gradients, in float64."""

import pytest
import torch
import torch.nn.functional as F

from kernels import convgrad
from kernels.convgrad import conv2d_backward

GEOMETRIES = {  # (in channels, out channels, kernel, stride, padding, dilation, groups)
    "depthwise_3x3": (6, 6, 3, 1, 1, 1, 6),
    "depthwise_5x5": (6, 6, 5, 1, 2, 1, 6),
    "depthwise_3x3_dil2": (6, 6, 3, 1, 2, 2, 6),
    "depthwise_5x5_dil2": (6, 6, 5, 1, 4, 2, 6),
    "depthwise_stride2": (6, 6, 3, 2, 1, 1, 6),
    "depthwise_3x3_dil2_stride2": (6, 6, 3, 2, 2, 2, 6),
    "depthwise_5x5_dil2_stride2": (6, 6, 5, 2, 4, 2, 6),
    "depthwise_3x3_dil4_stride2": (6, 6, 3, 2, 3, 4, 6),
    "depthwise_5x5_dil2_stride2_no_padding": (6, 6, 5, 2, 0, 2, 6),
    "depthwise_3x3_dil2_stride2_odd_padding": (6, 6, 3, 2, 1, 2, 6),
    "depthwise_no_padding": (6, 6, 3, 1, 0, 1, 6),
    "dense_3x3": (6, 4, 3, 1, 1, 1, 1),
    "pointwise": (6, 4, 1, 1, 0, 1, 1),
    "pointwise_stride2": (4, 4, 1, 2, 0, 1, 1),  # channels-last: the subsampled route
}


@pytest.mark.parametrize("name", GEOMETRIES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_gradients_equal_autograd(name, channels_last):
    check_gradients(GEOMETRIES[name], (11, 12), channels_last)


@pytest.mark.parametrize("geometry, size", [
    ((6, 6, 5, 1, 4, 2, 6), (7, 8)),  # padding >= half the map: the polyphase weight gradient
    ((6, 6, 3, 1, 2, 2, 6), (4, 3)),
    ((6, 6, 3, 1, 3, 3, 6), (5, 6)),
])
@pytest.mark.parametrize("channels_last", [False, True])
def test_dilated_gradients_on_small_maps_equal_autograd(geometry, size, channels_last):
    check_gradients(geometry, size, channels_last)


@pytest.mark.parametrize("avx512", [False, True])
def test_dilated_gradients_on_either_kernel_set_equal_autograd(monkeypatch, avx512):
    """Without AVX-512 every dilated depthwise weight gradient takes the polyphase sum, with
    it only those on maps mostly padding: both routes on an ordinary map."""
    monkeypatch.setattr(convgrad, "_avx512", lambda: avx512)
    for geometry in ((6, 6, 3, 1, 2, 2, 6), (6, 6, 5, 1, 4, 2, 6)):
        check_gradients(geometry, (16, 15), channels_last=True)


def check_gradients(geometry, size, channels_last):
    c_in, c_out, k, stride, padding, dilation, groups = geometry
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, c_in, *size, generator=generator, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(c_out, c_in // groups, k, k, generator=generator, dtype=torch.float64)
    x.requires_grad_()
    weight.requires_grad_()
    y = F.conv2d(x, weight, None, stride, padding, dilation, groups)
    grad_y = torch.randn(y.shape, generator=generator, dtype=torch.float64)
    expected = torch.autograd.grad(y, (x, weight), grad_y)
    got = conv2d_backward(grad_y, x.detach(), weight.detach(), (stride, stride),
                          (padding, padding), (dilation, dilation), groups, True, True)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)
    only_x = conv2d_backward(grad_y, x.detach(), weight.detach(), (stride, stride),
                             (padding, padding), (dilation, dilation), groups, True, False)
    assert only_x[1] is None
    torch.testing.assert_close(only_x[0], expected[0])

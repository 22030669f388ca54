"""approx.sharing: a shared input is quantised once for every approximate conv reading it, with
the same outputs and gradients as unshared convs."""

import torch

import approx.conv
from approx import approx_conv2d
from approx.sharing import share, shared_codes


def run_convs(x, weights, shared: bool):
    x = x.clone().requires_grad_()
    with shared_codes():
        source = share(torch.relu(x)) if shared else torch.relu(x)
        outs = [approx_conv2d(source, w, "mitchell", padding=1, groups=4 // w.shape[1])
                for w in weights]
    sum(o.square().sum() for o in outs).backward()
    return [o.detach() for o in outs], x.grad, [w.grad.clone() for w in weights]


def test_shared_input_is_quantised_once_with_identical_results(monkeypatch):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 6, 6, generator=generator)
    weights = [torch.randn(4, 1, 3, 3, generator=generator).requires_grad_(),
               torch.randn(4, 4, 3, 3, generator=generator).requires_grad_()]
    calls = []
    quantize = approx.conv.activation_codes
    monkeypatch.setattr(approx.conv, "activation_codes",
                        lambda t, *args: calls.append(t) or quantize(t, *args))
    alone = run_convs(x, weights, shared=False)
    for w in weights:
        w.grad = None
    assert len(calls) == 2
    together = run_convs(x, weights, shared=True)
    assert len(calls) == 3  # one more quantisation for both convs
    for a, b in zip(alone[0] + [alone[1]] + alone[2], together[0] + [together[1]] + together[2],
                    strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_sharing_ends_with_its_block_and_ignores_modified_tensors(monkeypatch):
    calls = []
    quantize = approx.conv.activation_codes
    monkeypatch.setattr(approx.conv, "activation_codes",
                        lambda t, *args: calls.append(t) or quantize(t, *args))
    x, weight = torch.rand(1, 2, 4, 4), torch.randn(2, 2, 1, 1)
    with shared_codes():
        share(x)
        first = approx_conv2d(x, weight, "drum4")
        x.mul_(2)  # an in-place change invalidates what was cached for x
        second = approx_conv2d(x, weight, "drum4")
    approx_conv2d(x, weight, "drum4")  # outside the block: computed afresh
    assert len(calls) == 3
    torch.testing.assert_close(second, 2 * first)

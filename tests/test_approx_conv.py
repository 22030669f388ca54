"""Emulated convolution: exact mode vs an explicit-loop reference, low-rank bounds, gradients."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from approx import ApproxConv2d, Emulation, Multiplier, approx_conv2d, emulating, load_multiplier
from approx.lowrank import default_rank, relative_residuals, true_rank
from approx.reference import gather_conv2d

SHARED_LUTS = Path(__file__).resolve().parents[2] / "shared" / "evoapprox" / "luts"
SIGNED_TABLE = SHARED_LUTS / "mul8s_1L2J.bin"
FORMS = {
    "plain": {"kernel": 3},
    "stride2_pad1": {"kernel": 3, "stride": 2, "padding": 1},
    "dilation2": {"kernel": 3, "padding": 2, "dilation": 2},
    "depthwise": {"kernel": 3, "padding": 1, "groups": 6},
    "grouped": {"kernel": 3, "padding": 1, "groups": 2},
    "1x1": {"kernel": 1},
}


def signed_multiplier() -> Multiplier:
    """A signed table with errors: the shared mul8s_1L2J, else a synthetic one."""
    if SIGNED_TABLE.is_file():
        return load_multiplier(str(SIGNED_TABLE))
    values = torch.arange(256)
    values = torch.where(values >= 128, values - 256, values)
    return Multiplier("signed_test", True, torch.outer(values, values) + (values % 3).view(-1, 1))


def operands(form, signed, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 6, 7, 8, generator=generator)
    x = x if signed else torch.relu(x)
    x[0, 0, 0, :3] = torch.tensor([1e-12, -1e-12, 0.0])  # code-0 activations with a sign
    groups = form.get("groups", 1)
    weight = torch.randn(6, 6 // groups, form["kernel"], form["kernel"], generator=generator)
    return x, weight


def geometry(form):
    return {k: v for k, v in form.items() if k != "kernel"}


def code(value: float, scale: float, signed: bool) -> tuple[int, int]:
    """(LUT index, sign factor) of one operand, straight from the contract."""
    if signed:
        return round_half_even(value / scale) & 255, 1
    return round_half_even(abs(value) / scale), (value > 0) - (value < 0)


def round_half_even(v: float) -> int:
    return int(torch.round(torch.tensor(v, dtype=torch.float32)))


def loop_reference(x, weight, m):
    """The contract's sum for a 1x1 convolution, one product at a time."""
    levels = 127 if m.signed else 255
    sx = float(x.abs().max()) / levels
    out = torch.zeros(x.shape[0], weight.shape[0], *x.shape[2:], dtype=torch.float64)
    for o in range(weight.shape[0]):
        sw = float(weight[o].abs().max()) / levels
        for n, c, i, j in torch.cartesian_prod(*(torch.arange(d) for d in x.shape)).tolist():
            a, sign_a = code(float(x[n, c, i, j]), sx, m.signed)
            b, sign_b = code(float(weight[o, c, 0, 0]), sw, m.signed)
            out[n, o, i, j] += sign_a * sign_b * int(m.lut[a, b]) * sx * sw
    return out.float()


@pytest.mark.parametrize("signed", [False, True])
def test_gather_reference_matches_explicit_loops(signed):
    m = signed_multiplier() if signed else load_multiplier("mitchell")
    x, weight = operands(FORMS["1x1"], signed)
    torch.testing.assert_close(gather_conv2d(x, weight, m), loop_reference(x, weight, m),
                               rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("signed", [False, True])
def test_exact_mode_equals_gather_reference(form, signed):
    m = signed_multiplier() if signed else load_multiplier("mitchell")
    x, weight = operands(FORMS[form], signed)
    bias = torch.randn(6)
    expected = gather_conv2d(x, weight, m, bias, **geometry(FORMS[form]))
    got = approx_conv2d(x, weight, m, bias, mode="exact", **geometry(FORMS[form]))
    assert got.shape == F.conv2d(x, weight, bias, **geometry(FORMS[form])).shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4 * expected.abs().max().item())


@pytest.mark.parametrize("name", ["trunc6", "bam4_8", "drum4", "kulkarni", "bam2_4"])
def test_low_rank_designs_are_emulated_exactly(name):
    m = load_multiplier(name)
    assert default_rank(m) == true_rank(m) <= 8 and relative_residuals(m)[true_rank(m)] < 1e-9
    x, weight = operands(FORMS["stride2_pad1"], False)
    exact = approx_conv2d(x, weight, m, mode="exact", stride=2, padding=1)
    torch.testing.assert_close(approx_conv2d(x, weight, m, mode="lowrank", stride=2, padding=1),
                               exact, rtol=1e-4, atol=1e-4 * exact.abs().max().item())


def test_truncation_rank_equals_k():
    assert [true_rank(load_multiplier(f"trunc{k}")) for k in (2, 4, 6, 8)] == [2, 4, 6, 8]
    assert default_rank(load_multiplier("exact")) == 0


def test_mitchell_lowrank_within_stated_bound():
    """Rank 3 keeps <= 10 % weighted table residual; on post-ReLU data the output error vs exact
    emulation stays well below the multiplier's own effect (exact products vs exact emulation)."""
    m = load_multiplier("mitchell")
    assert default_rank(m) == 3 and relative_residuals(m)[3] <= 0.1
    generator = torch.Generator().manual_seed(1)
    x = torch.relu(torch.randn(2, 32, 10, 10, generator=generator))
    weight = torch.randn(32, 32, 3, 3, generator=generator)
    exact = approx_conv2d(x, weight, m, mode="exact", padding=1)
    lowrank = approx_conv2d(x, weight, m, mode="lowrank", padding=1)
    effect = approx_conv2d(x, weight, m, mode="lowrank", padding=1, rank=0)
    error = (lowrank - exact).norm() / exact.norm()
    assert error < 0.2 * (effect - exact).norm() / exact.norm() and error < 0.01


@pytest.mark.parametrize("mode", ["exact", "lowrank"])
def test_gradients_are_straight_through(mode):
    m = load_multiplier("drum4")
    x, weight = operands(FORMS["stride2_pad1"], False)
    x.requires_grad_()
    weight.requires_grad_()
    bias = torch.randn(6, requires_grad=True)
    approx_conv2d(x, weight, m, bias, stride=2, padding=1, mode=mode).square().sum().backward()
    out = approx_conv2d(x, weight, m, bias, stride=2, padding=1, mode=mode).detach()
    sx = x.detach().abs().max() / 255
    sw = weight.detach().abs().amax(dim=(1, 2, 3), keepdim=True) / 255
    x_deq = (torch.round(x.detach() / sx) * sx).requires_grad_()
    w_deq = (torch.round(weight.detach() / sw) * sw).requires_grad_()
    b = bias.detach().clone().requires_grad_()
    F.conv2d(x_deq, w_deq, b, stride=2, padding=1).mul(2 * out).sum().backward()
    torch.testing.assert_close(x.grad, x_deq.grad)
    torch.testing.assert_close(weight.grad, w_deq.grad)
    torch.testing.assert_close(bias.grad, b.grad)


def test_module_wrapper_and_mode_switch():
    model = nn.Sequential(
        ApproxConv2d(3, 4, 3, padding=1, multiplier="trunc6"),
        nn.ReLU(),
        ApproxConv2d(4, 4, 3, padding=1, groups=4, multiplier=load_multiplier("mitchell")),
    )
    assert isinstance(model[0], nn.Conv2d) and model[0].multiplier.name == "trunc6"
    assert model[0].mode == "lowrank" and "trunc6" in repr(model)
    x = torch.randn(2, 3, 8, 8)
    fast = model(x)
    with emulating(model, mode="exact") as switched:
        assert switched == 2 and model[2].mode == "exact"
        exact = model(x)
    assert model[2].mode == "lowrank"  # restored on exit
    assert (fast - exact).norm() / exact.norm() < 0.05
    with pytest.raises(ValueError, match="mode="), emulating(model, mode="fast"):
        pass
    assert model[0].mode == "lowrank"


def test_zero_tensors_give_zero_output():
    out = approx_conv2d(torch.zeros(1, 2, 4, 4), torch.randn(3, 2, 3, 3), "mitchell", mode="exact")
    assert out.abs().max() == 0
    out = approx_conv2d(torch.randn(1, 2, 4, 4), torch.zeros(3, 2, 3, 3), "drum4")
    assert out.abs().max() == 0


def zero_row_multiplier() -> Multiplier:
    """An unsigned table with LUT[0, b] != 0 (as mul8u_0AB): code-0 activations of a nonzero x
    must still select sign(x) * LUT[0, b]."""
    shared = SHARED_LUTS / "mul8u_0AB.bin"
    if shared.is_file():
        return load_multiplier(str(shared))
    values = torch.arange(256)
    return Multiplier("zero_row_test", False, torch.outer(values, values) + (values % 5) + 3)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("table", ["zero_row", "signed"])
def test_full_rank_lowrank_equals_exact(form, table):
    """At full rank the low-rank terms sum E exactly: the term lookup (signed codes, the sign
    of code-0 activations) and the per-term convolutions equal the exact LUT sum."""
    m = zero_row_multiplier() if table == "zero_row" else signed_multiplier()
    x, weight = operands(FORMS[form], m.signed)
    if table == "zero_row":
        assert m.lut[0].any()
    kwargs = geometry(FORMS[form])
    exact = approx_conv2d(x, weight, m, mode="exact", **kwargs)
    lowrank = approx_conv2d(x, weight, m, mode="lowrank", rank=256, **kwargs)
    torch.testing.assert_close(lowrank, exact, rtol=1e-4, atol=1e-4 * exact.abs().max().item())


def test_lowrank_keeps_channels_last():
    x = torch.relu(torch.randn(2, 6, 7, 8)).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(6, 1, 3, 3)
    out = approx_conv2d(x, weight, "drum4", padding=1, groups=6)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, approx_conv2d(x.contiguous(), weight, "drum4", padding=1,
                                                  groups=6))


def capped(rank_cap, truncate_low_rank=False) -> list:
    """The ranks of three convs built with a search rank cap."""
    emulation = Emulation(rank_cap=rank_cap, truncate_low_rank=truncate_low_rank)
    model = nn.Sequential(*(ApproxConv2d(2, 2, 1, multiplier=name, emulation=emulation)
                            for name in ("drum4", "mitchell", "trunc8")))  # ranks 2, 3 and 8
    return [m.rank for m in model]


def test_rank_cap_keeps_exactly_low_rank_designs_and_caps_the_others():
    assert capped(1) == [2, 1, 8]
    assert capped(2) == [2, 2, 8]
    assert capped(1, truncate_low_rank=True) == [1, 1, 1]  # only when explicitly asked
    assert capped(None) == [None, None, None]
    with pytest.raises(ValueError, match="rank cap -1"):
        Emulation(rank_cap=-1)
    assert Emulation.for_search(None, -1).rank_cap is None  # --approx_rank -1: no cap


@pytest.mark.parametrize("mode", ["exact", "lowrank"])
def test_non_finite_input_gives_non_finite_output(mode):
    """A NaN or inf activation must reach the loss (the search's NaN guard), not be hidden."""
    x = torch.rand(1, 2, 4, 4)
    x[0, 0, 1, 1] = float("nan")
    out = approx_conv2d(x, torch.randn(3, 2, 3, 3), zero_row_multiplier(), mode=mode)
    assert not torch.isfinite(out).all()
    x[0, 0, 1, 1] = float("inf")
    assert not torch.isfinite(approx_conv2d(x, torch.randn(3, 2, 1, 1), "mitchell",
                                            mode=mode)).all()

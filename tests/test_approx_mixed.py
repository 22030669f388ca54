"""approx.mixed: a mixture of multipliers as one emulation equals the weighted sum of the
single-multiplier emulations, with exact mixture-weight gradients and shared weights."""

import pytest
import torch
import torch.nn.functional as F

from approx import (
    ApproxConv2d,
    Emulation,
    MixedApproxConv2d,
    MultiplierMixture,
    approx_conv2d,
    mixed_approx_conv2d,
    mixed_conv,
)
from approx.sharing import share, shared_codes

MEMBERS = ("exact", "drum6", "kulkarni", "drum4", "bam4_4", "mitchell", "float")
FORMS = [{"padding": 1, "groups": 1}, {"padding": 1, "groups": 4},
         {"padding": 2, "groups": 4, "dilation": 2}, {"padding": 1, "groups": 4, "stride": 2}]


def operands(groups: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.relu(torch.randn(2, 4, 7, 6, generator=generator))
    weight = torch.randn(5 if groups == 1 else 4, 4 // groups, 3, 3, generator=generator)
    weights = torch.softmax(torch.randn(len(MEMBERS), generator=generator), 0)
    return x, weight, weights


def single(x, weight, name, mode, **geometry):
    if name == "float":
        return F.conv2d(x, weight, **geometry)
    return approx_conv2d(x, weight, name, mode=mode, **geometry)


@pytest.mark.parametrize("mode", ["exact", "lowrank"])
@pytest.mark.parametrize("form", FORMS)
def test_mixture_is_the_weighted_sum_of_single_emulations(mode, form):
    x, weight, weights = operands(form["groups"])
    mixture = MultiplierMixture(MEMBERS)
    out = mixed_approx_conv2d(x, weight, mixture, weights, mode=mode, **form)
    expected = sum(w * single(x, weight, name, mode, **form)
                   for w, name in zip(weights, MEMBERS, strict=True))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("members", [MEMBERS, MEMBERS[:-1]], ids=["float", "8-bit"])
@pytest.mark.parametrize("mode", ["exact", "lowrank"])
def test_mixture_weight_gradient_is_each_member_output(mode, members):
    x, weight, weights = operands(1)
    weights = weights[:len(members)].double().requires_grad_()
    projection = torch.randn(2, 5, 7, 6, generator=torch.Generator().manual_seed(1))
    mixture = MultiplierMixture(members)

    def loss(w):
        out = mixed_approx_conv2d(x, weight, mixture, w, mode=mode, padding=1)
        return (out.double() * projection).sum()

    loss(weights).backward()
    outputs = torch.stack([(single(x, weight, name, mode, padding=1).double() * projection).sum()
                           for name in members])
    torch.testing.assert_close(weights.grad, outputs, rtol=1e-5, atol=1e-4)
    step = 1e-3
    for m in (0, 2, len(members) - 1):
        bump = torch.zeros_like(weights)
        bump[m] = step
        with torch.no_grad():
            difference = (loss(weights + bump) - loss(weights - bump)) / (2 * step)
        assert float(difference) == pytest.approx(float(weights.grad[m]), rel=1e-3, abs=1e-2)


def test_input_and_weight_gradients_are_the_weighted_straight_through_ones():
    x, weight, weights = operands(4)
    mixture = MultiplierMixture(MEMBERS)
    grads = []
    for mixed in (True, False):
        xg, wg = x.clone().requires_grad_(), weight.clone().requires_grad_()
        if mixed:
            out = mixed_approx_conv2d(xg, wg, mixture, weights, padding=1, groups=4)
        else:
            out = sum(w * single(xg, wg, n, "lowrank", padding=1, groups=4)
                      for w, n in zip(weights, MEMBERS, strict=True))
        out.square().sum().backward()
        grads.append((xg.grad, wg.grad))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["exact", "lowrank"])
def test_one_hot_weights_reproduce_approx_conv2d(mode):
    torch.manual_seed(0)
    mixture = MultiplierMixture(["exact", "drum4", "mitchell"])
    emulation = Emulation(mode=mode)
    mixed = MixedApproxConv2d(4, 4, 3, padding=1, groups=2, mixture=mixture, emulation=emulation)
    plain = ApproxConv2d(4, 4, 3, padding=1, groups=2, multiplier="mitchell",
                         emulation=emulation)
    plain.weight.data.copy_(mixed.weight.data)
    mixture.weights = torch.tensor([0.0, 0.0, 1.0])
    x = torch.relu(torch.randn(2, 4, 6, 6))
    torch.testing.assert_close(mixed(x), plain(x), rtol=0, atol=1e-6)


def test_one_shared_weight_and_one_conv_per_term(monkeypatch):
    mixture = MultiplierMixture(["exact", "drum6", "kulkarni", "drum4", "bam4_4"])
    conv = MixedApproxConv2d(4, 4, 1, mixture=mixture)
    assert [name for name, _ in conv.named_parameters()] == ["weight"]
    calls = []
    conv2d = F.conv2d
    monkeypatch.setattr(F, "conv2d", lambda *a, **k: calls.append(1) or conv2d(*a, **k))
    conv(torch.rand(1, 4, 3, 3))
    assert len(calls) == 1 + 3  # ranks 0 + 2 + 1 + 2 + 1 span 3 directions besides a


def test_shared_input_is_quantised_once_for_mixed_and_plain_convs(monkeypatch):
    import approx.conv
    calls = []
    quantize = approx.conv.activation_codes
    monkeypatch.setattr(approx.conv, "activation_codes",
                        lambda t, *args: calls.append(t) or quantize(t, *args))
    x, weight, weights = operands(1)
    mixture = MultiplierMixture(["drum4", "mitchell"])
    alone = mixed_approx_conv2d(x, weight, mixture, weights[:2], padding=1)
    with shared_codes():
        source = share(x.clone())
        together = [mixed_approx_conv2d(source, weight, mixture, weights[:2], padding=1),
                    approx_conv2d(source, weight, "drum4", padding=1, mode="lowrank")]
    assert len(calls) == 2
    torch.testing.assert_close(together[0], alone, rtol=0, atol=0)


def test_uniform_weights_by_default_and_bad_shapes_rejected():
    x, weight, _ = operands(1)
    mixture = MultiplierMixture(["exact", "float"])
    out = mixed_approx_conv2d(x, weight, mixture, padding=1)
    expected = (single(x, weight, "exact", "lowrank", padding=1) + F.conv2d(x, weight, padding=1))
    torch.testing.assert_close(out, expected / 2)
    mixture.weights = torch.ones(3)
    with pytest.raises(ValueError, match="one per member"):
        mixed_approx_conv2d(x, weight, mixture, padding=1)


def test_members_must_share_signedness(tmp_path):
    from approx.binfile import write_table
    from approx.multiplier import exact_products
    path = tmp_path / "mul8s_mine.bin"
    table = torch.from_numpy(exact_products(True))
    table[1, 1] = 2  # an unknown hash: no catalogue warning
    write_table(path, table, signed=True)
    with pytest.raises(ValueError, match="one signedness.*mul8s_mine.*drum4"):
        MultiplierMixture(["drum4", str(path)])


def test_float_only_mixture_is_the_float_conv():
    x, weight, _ = operands(1)
    mixture = MultiplierMixture(["float"])
    xg = x.clone().requires_grad_()
    weights = torch.ones(1, requires_grad=True)
    out = mixed_approx_conv2d(xg, weight, mixture, weights, padding=1)
    torch.testing.assert_close(out, F.conv2d(x, weight, padding=1))
    out.sum().backward()
    assert weights.grad is not None and xg.grad is not None


def test_mixture_keeps_names_and_specs(tmp_path):
    from approx.binfile import write_table
    from approx.builtin import builtin_multiplier
    table = builtin_multiplier("trunc6").lut.clone()
    table[9, 9] += 1
    write_table(tmp_path / "my_mul.bin", table, signed=False)
    spec = f"{tmp_path / 'my_mul.bin'}:0.21"
    mixture = MultiplierMixture(["exact", spec, "float"])
    assert mixture.names == ("exact", "my_mul", "float")
    assert mixture.specs == ("exact", spec, "float")
    assert mixture.multipliers[1].power_mw == 0.21 and mixture.multipliers[2] is None


def test_conv_factory_builds_mixed_ops():
    from operations import OPS, conv_factory
    mixture = MultiplierMixture(["exact", "drum4"])
    op = OPS["sep_conv_3x3"](4, 1, False, conv_factory(mixture))
    convs = [m for m in op.modules() if isinstance(m, MixedApproxConv2d)]
    assert len(convs) == 4 and all(c.mixture is mixture for c in convs)
    assert op(torch.rand(2, 4, 6, 6)).shape == (2, 4, 6, 6)


def test_two_mixed_convs_reading_a_shared_tensor_look_up_its_terms_once(monkeypatch):
    import approx.mixed_conv
    calls = []
    lookup = approx.mixed_conv.table_terms
    monkeypatch.setattr(approx.mixed_conv, "table_terms",
                        lambda *args: calls.append(1) or lookup(*args))
    x, weight, weights = operands(1)
    first, second = MultiplierMixture(MEMBERS), MultiplierMixture(MEMBERS)
    with shared_codes():
        source = share(x.clone())
        outs = [mixed_approx_conv2d(source, weight, m, weights, padding=1)
                for m in (first, second)]
    assert len(calls) == 1  # same members: one lookup of the basis terms
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


@pytest.mark.parametrize("form", FORMS[1:])
def test_mixture_weight_gradient_in_every_geometry(form):
    x, weight, weights = operands(form["groups"])
    weights = weights.clone().requires_grad_()
    mixture = MultiplierMixture(MEMBERS)
    out = mixed_approx_conv2d(x, weight, mixture, weights, **form)
    projection = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
    (out * projection).sum().backward()
    outputs = torch.stack([(single(x, weight, name, "lowrank", **form) * projection).sum()
                           for name in MEMBERS])
    torch.testing.assert_close(weights.grad, outputs, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("form", [{"padding": 1}, {"padding": 2, "dilation": 2},
                                  {"padding": 1, "stride": 2},
                                  {"padding": 2, "dilation": 2, "stride": 2},
                                  {"padding": 2, "kernel": 5}])
def test_a_channels_last_depthwise_conv_stacks_its_term_gradients(monkeypatch, form):
    """approx.mixed_conv.depthwise_basis_weight_grads: one backward call over the stacked terms
    gives every member's mixture-weight gradient, as the single emulations do."""
    form = dict(form)
    kernel = form.pop("kernel", 3)
    generator = torch.Generator().manual_seed(5)
    x = torch.relu(torch.randn(2, 4, 9, 8, generator=generator)).contiguous(
        memory_format=torch.channels_last)
    x[0, 1, 2, 3] = 1e-6  # a nonzero activation whose code is 0 (sign rows of the tables)
    weight = torch.randn(4, 1, kernel, kernel, generator=generator)
    weights = torch.softmax(torch.randn(len(MEMBERS), generator=generator), 0).double()
    weights.requires_grad_()
    calls = []
    stacked = mixed_conv.depthwise_basis_weight_grads
    monkeypatch.setattr(mixed_conv, "depthwise_basis_weight_grads",
                        lambda *a: calls.append(1) or stacked(*a))
    out = mixed_approx_conv2d(x, weight, MultiplierMixture(MEMBERS), weights, mode="lowrank",
                              groups=4, **form)
    projection = torch.randn(out.shape, generator=generator)
    (out.double() * projection).sum().backward()
    assert len(calls) == 1
    expected = torch.stack([(single(x, weight, name, "lowrank", groups=4, **form).double()
                             * projection).sum() for name in MEMBERS])
    torch.testing.assert_close(weights.grad, expected, rtol=1e-5, atol=1e-4)


def test_channels_last_input_keeps_its_layout_and_values():
    x, weight, weights = operands(4)
    mixture = MultiplierMixture(MEMBERS)
    grads = []
    for layout in (torch.contiguous_format, torch.channels_last):
        xg = x.contiguous(memory_format=layout).detach().clone(memory_format=layout)
        xg.requires_grad_()
        w = weights.clone().requires_grad_()
        out = mixed_approx_conv2d(xg, weight, mixture, w, padding=1, groups=4)
        assert out.is_contiguous(memory_format=layout)
        out.square().sum().backward()
        grads.append((out.detach(), xg.grad, w.grad))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


def test_bfloat16_activations_keep_their_dtype_and_get_gradients():
    x, weight, weights = operands(4)
    mixture = MultiplierMixture(MEMBERS)
    xb = x.to(torch.bfloat16).requires_grad_()
    w = weights.clone().requires_grad_()
    conv = MixedApproxConv2d(4, 4, 3, padding=1, groups=4, mixture=mixture)
    mixture.weights = w
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(xb)
    assert out.dtype == torch.bfloat16
    out.float().square().sum().backward()
    assert xb.grad.dtype == torch.bfloat16 and conv.weight.grad.dtype == torch.float32
    assert torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0


@pytest.mark.parametrize("members", [("exact", "mitchell"), ("mitchell",)])
def test_a_member_exact_where_others_are_not_keeps_its_rows(members):
    """mitchell's error is zero on the powers of two, where the residual of its factors after
    the projection on `a` is not: those rows of the basis must stay (they were zeroed)."""
    x, weight, _ = operands(1)
    weights = torch.softmax(torch.randn(len(members)), 0)
    out = mixed_approx_conv2d(x, weight, MultiplierMixture(members), weights, padding=1)
    expected = sum(w * single(x, weight, name, "lowrank", padding=1)
                   for w, name in zip(weights, members, strict=True))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_a_one_hot_mixture_runs_its_member_alone(monkeypatch):
    """A sampled multiplier (exact zeros elsewhere) costs its own convolutions only."""
    mixture = MultiplierMixture(["exact", "drum6", "kulkarni", "drum4", "bam4_4"])
    x, weight = torch.rand(1, 4, 3, 3), torch.randn(4, 4, 1, 1)
    calls = []
    conv2d = F.conv2d
    monkeypatch.setattr(F, "conv2d", lambda *a, **k: calls.append(1) or conv2d(*a, **k))
    plan = mixture.plan(None)
    for member, convs in ((0, 1), (3, plan.alone(3).convolutions)):  # exact: one conv
        assert convs < plan.convolutions
        calls.clear()
        one_hot = torch.zeros(5).index_fill_(0, torch.tensor([member]), 1.0)
        out = mixed_approx_conv2d(x, weight, mixture, one_hot)
        assert len(calls) == convs
        monkeypatch.setattr(F, "conv2d", conv2d)
        torch.testing.assert_close(out, single(x, weight, mixture.names[member], "lowrank"))
        monkeypatch.setattr(F, "conv2d", lambda *a, **k: calls.append(1) or conv2d(*a, **k))


@pytest.mark.parametrize("members", [MEMBERS, MEMBERS[:-1]], ids=["float", "8-bit"])
def test_a_channels_last_pointwise_conv_runs_its_terms_as_one_conv(monkeypatch, members):
    """The stacked form (approx.mixed_conv.stacks_terms): one gather and one conv for all the
    basis terms, the same output and mixture-weight gradient as the single emulations."""
    generator = torch.Generator().manual_seed(3)
    x = torch.relu(torch.randn(2, 4, 5, 6, generator=generator)).contiguous(
        memory_format=torch.channels_last)
    x[0, 0, 0, 0] = 1e-6  # a nonzero activation whose code is 0 (sign rows of the tables)
    weight = torch.randn(5, 4, 1, 1, generator=generator)
    weights = torch.softmax(torch.randn(len(members), generator=generator), 0).double()
    weights.requires_grad_()
    projection = torch.randn(2, 5, 5, 6, generator=generator)
    mixture = MultiplierMixture(members)
    calls = []
    conv2d = F.conv2d
    monkeypatch.setattr(F, "conv2d", lambda *a, **k: calls.append(1) or conv2d(*a, **k))
    out = mixed_approx_conv2d(x, weight, mixture, weights, mode="lowrank")
    assert len(calls) == 1 + ("float" in members)  # the stacked terms, the float member
    monkeypatch.setattr(F, "conv2d", conv2d)
    expected = [single(x, weight, name, "lowrank").double() for name in members]
    torch.testing.assert_close(out.double(), sum(w * e for w, e in zip(weights, expected,
                                                                      strict=True)),
                               rtol=1e-5, atol=1e-5)
    (out.double() * projection).sum().backward()
    torch.testing.assert_close(weights.grad, torch.stack([(e * projection).sum()
                                                          for e in expected]),
                               rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("layout", ["per term", "stacked"])
def test_an_alpha_backward_without_the_weight_gradient_gives_the_same_gradients(layout):
    """An alpha step's backward (weights frozen: no weight gradient, so no activation codes
    converted for one) gives the same x and mixture-weight gradients as a backward that also
    computes the weight's."""
    generator = torch.Generator().manual_seed(4)
    stacked = layout == "stacked"
    x = torch.relu(torch.randn(2, 4, 6, 6, generator=generator))
    if stacked:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(4, 1 if not stacked else 4, *((1, 1) if stacked else (3, 3)),
                         generator=generator)
    form = {} if stacked else {"padding": 1, "groups": 4}
    members = ("exact", "drum6", "kulkarni", "drum4", "bam4_4", "float")
    mixture = MultiplierMixture(members)
    weights = torch.softmax(torch.randn(len(members), generator=generator), 0)

    def gradients(weight_needs_grad: bool):
        xg, mix = x.clone().requires_grad_(), weights.clone().requires_grad_()
        w = weight.clone().requires_grad_(weight_needs_grad)
        out = mixed_approx_conv2d(xg, w, mixture, mix, mode="lowrank", **form)
        out.square().sum().backward()
        return xg.grad, mix.grad

    for alpha, full in zip(gradients(False), gradients(True), strict=True):
        torch.testing.assert_close(alpha, full, rtol=0, atol=0)

"""Calibrated 8-bit emulation: a given activation scale, the act_max observer of the emulated
convs, and predictions in eval mode that do not depend on the batch."""

import pytest
import torch
from torch import nn

from approx import ApproxConv2d, Emulation, MixedApproxConv2d, MultiplierMixture, approx_conv2d
from approx.module import OBSERVER_MOMENTUM
from approx.sharing import share, shared_codes


@pytest.mark.parametrize("name", ["mitchell", "mul8s_exactish"])
def test_given_scale_is_the_contract_with_clamped_codes(name, tmp_path):
    multiplier = signed_table(tmp_path) if name == "mul8s_exactish" else name
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 5, generator=generator)
    x = x if name == "mul8s_exactish" else torch.relu(x)
    weight = torch.randn(4, 3, 3, 3, generator=generator)
    top = 127 if name == "mul8s_exactish" else 255
    scale = 0.5 * float(x.abs().max()) / top  # half the batch's range: codes clamp
    out = approx_conv2d(x, weight, multiplier, padding=1, x_scale=scale)
    # the same codes from the contract's own scale: clamp x, and add a sample reaching the edge
    clamped = torch.cat([x.clamp(-top * scale, top * scale), torch.full_like(x[:1], top * scale)])
    expected = approx_conv2d(clamped, weight, multiplier, padding=1)[:2]
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-5)
    lowrank = approx_conv2d(x, weight, multiplier, padding=1, x_scale=scale, mode="lowrank")
    torch.testing.assert_close(lowrank, approx_conv2d(clamped, weight, multiplier, padding=1,
                                                      mode="lowrank")[:2])
    assert approx_conv2d(x, weight, multiplier, x_scale=0.0).abs().max() == 0


def signed_table(tmp_path):
    from approx.binfile import write_table
    from approx.multiplier import exact_products
    table = torch.from_numpy(exact_products(True))
    table[3, 5] += 7
    path = tmp_path / "mul8s_exactish.bin"
    write_table(path, table, signed=True)
    return str(path)


def test_sharing_keeps_codes_per_scale():
    x, weight = torch.rand(1, 2, 4, 4), torch.randn(2, 2, 1, 1)
    alone = [approx_conv2d(x, weight, "drum4", x_scale=s) for s in (None, 0.001, 0.01)]
    with shared_codes():
        share(x)
        together = [approx_conv2d(x, weight, "drum4", x_scale=s) for s in (None, 0.001, 0.01)]
    for a, b in zip(alone, together, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def small_net(kind: str, mode: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "mixed":
        mixture = MultiplierMixture(["exact", "drum4", "mitchell", "float"])
        mixture.weights = torch.softmax(torch.randn(4), 0)
        conv = lambda c_in, c_out, **k: MixedApproxConv2d(  # noqa: E731
            c_in, c_out, 3, padding=1, mixture=mixture, emulation=Emulation(mode=mode), **k)
    else:
        conv = lambda c_in, c_out, **k: ApproxConv2d(  # noqa: E731
            c_in, c_out, 3, padding=1, multiplier="mitchell", emulation=Emulation(mode=mode), **k)
    return nn.Sequential(conv(3, 8), nn.BatchNorm2d(8), nn.ReLU(), conv(8, 8, groups=8),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))


@pytest.mark.parametrize("kind", ["approx", "mixed"])
@pytest.mark.parametrize("mode", ["lowrank", "exact"])
def test_eval_logits_of_an_image_do_not_depend_on_its_batch(kind, mode):
    net = small_net(kind, mode)
    images = torch.randn(256, 3, 8, 8)
    with torch.no_grad():
        for batch in images.split(64):  # training mode: the observers see the data
            net(batch * 2)
        net.eval()
        alone = net(images[:1])
        together = net(images)[:1]
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-5)
    assert all(float(m.act_max) > 0 for m in net if hasattr(m, "act_max"))


def test_observer_is_an_ema_that_starts_at_the_first_batch_and_freezes_in_eval():
    conv = ApproxConv2d(1, 1, 1, multiplier="drum4")
    conv(torch.full((1, 1, 2, 2), 2.0))
    assert float(conv.act_max) == pytest.approx(2.0)
    conv(torch.full((1, 1, 2, 2), 4.0))
    assert float(conv.act_max) == pytest.approx(2.0 + OBSERVER_MOMENTUM * 2.0)
    conv.eval()
    conv(torch.full((1, 1, 2, 2), 10.0))
    assert float(conv.act_max) == pytest.approx(2.2)


def test_untrained_observer_uses_the_batch_scale_in_eval():
    conv = ApproxConv2d(2, 2, 3, padding=1, multiplier="mitchell").eval()
    x = torch.rand(2, 2, 5, 5)
    assert float(conv.act_max) == 0
    expected = approx_conv2d(x, conv.weight, "mitchell", padding=1, mode="lowrank")
    torch.testing.assert_close(conv(x), expected)
    assert float(conv.act_max) == 0


def test_state_dict_keeps_the_observer_and_old_checkpoints_load():
    net = small_net("mixed", "lowrank")
    net(torch.randn(4, 3, 8, 8))
    state = net.state_dict()
    assert "0.act_max" in state and float(state["0.act_max"]) > 0
    fresh = small_net("mixed", "lowrank")
    fresh.load_state_dict(state)
    assert float(fresh[0].act_max) == float(net[0].act_max)
    old = {k: v for k, v in state.items() if not k.endswith("act_max")}
    fresh.load_state_dict(old)  # a checkpoint from before the observer: unset
    assert float(fresh[0].act_max) == 0

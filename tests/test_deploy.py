"""The deployed int8 network (deploy/): folding equivalence, batch independence, and its
accuracy against a slow reference written here from the multiplier's table."""

import pytest
import torch
import torch.nn.functional as F

import deploy
from approx import load_multiplier
from approx.multiplier import Multiplier, exact_products
from approx.settings import FLOAT_MODE
from deploy.layers import DeployedConv2d

pytestmark = pytest.mark.timeout(120)

def signed_truncated() -> Multiplier:
    """A signed approximate table: int8 products with the low 4 bits cleared."""
    return Multiplier("s8_trunc4", True, torch.from_numpy(exact_products(True) & ~15))


@pytest.fixture(scope="module")
def trained_like(deployable_net):
    """The tiny network of conftest and a few images."""
    torch.manual_seed(1)
    return deployable_net, torch.randn(24, 3, 12, 12)


def test_folded_network_equals_unfolded_in_float(trained_like):
    model, images = trained_like
    net = deploy.deploy_network(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    with deploy.calibration.calibrating(net), torch.no_grad():
        folded = net(images)
    with model.emulating(mode=FLOAT_MODE), torch.no_grad():
        unfolded = model(images)
    torch.testing.assert_close(folded, unfolded, atol=1e-5, rtol=0)


def test_layers_keep_their_arithmetic_by_type(trained_like):
    model, _ = trained_like
    kinds = {layer.name: layer.multiplier and layer.multiplier.name
             for layer in deploy.deployed_layers(deploy.deploy_network(model))}
    assert kinds["stem.0"] is None and kinds["classifier"] is None  # float32 by choice
    assert kinds["cells.0.ops.0.0.1"] == "trunc6"
    assert kinds["cells.2.preprocess0.conv_1"] is None  # a FactorizedReduce half


@pytest.mark.parametrize("multiplier", [None, "trunc6", "signed"])
def test_int8_logits_do_not_depend_on_the_batch(trained_like, multiplier):
    model, images = trained_like
    override = {None: None, "trunc6": load_multiplier("trunc6"),
                "signed": signed_truncated()}[multiplier]
    net = deploy.build(model, [images], override)
    with torch.no_grad():
        together = net(images)
        alone = torch.cat([net(images[i:i + 1]) for i in range(len(images))])
        reversed_batch = net(images.flip(0)).flip(0)
    torch.testing.assert_close(alone, together, atol=1e-5, rtol=0)
    torch.testing.assert_close(reversed_batch, together, atol=1e-5, rtol=0)


def reference_conv(layer: DeployedConv2d, x: torch.Tensor) -> torch.Tensor:
    """The GUIDE's integer arithmetic written out: codes from the calibrated s_x and the
    per-channel max|w|, every product gathered from the table, summed in int64, the int32
    bias code added, rescaled once."""
    lut, signed = layer.multiplier.lut.long(), layer.multiplier.signed
    top = 127 if signed else 255
    w, g = layer.weight, layer.geometry
    s_x = layer.act_scale
    s_w = w.abs().amax(dim=(1, 2, 3)) / top
    s_w = torch.where(s_w > 0, s_w, s_w.max())  # an all-zero channel: its bias still counts
    x_codes = torch.clamp(torch.round(x / s_x), -top, top)
    w_codes = torch.round(w / s_w.view(-1, 1, 1, 1))
    unfold = dict(kernel_size=tuple(w.shape[2:]), dilation=g.dilation, padding=g.padding,
                  stride=g.stride)
    a = F.unfold(x_codes.double(), **unfold).long()
    x_sign = F.unfold(torch.sign(x).double(), **unfold).long()
    out_channels, taps = w.shape[0], w[0].numel()
    per_group = out_channels // g.groups
    acc = []
    for o in range(out_channels):
        rows = slice((o // per_group) * taps, (o // per_group + 1) * taps)
        b = w_codes[o].reshape(1, -1, 1).long()
        if signed:
            products = lut[a[:, rows] & 255, b & 255]
        else:
            w_sign = torch.sign(w[o]).reshape(1, -1, 1).long()
            products = lut[a[:, rows].abs(), b.abs()] * x_sign[:, rows] * w_sign
        acc.append(products.sum(1))
    acc = torch.stack(acc, 1).double()
    unit = s_x.double() * s_w.double()
    bias_codes = torch.round(layer.bias.double() / unit)
    out = (acc + bias_codes.view(1, -1, 1)) * unit.view(1, -1, 1)
    height, width = g.output_size(x, w)
    return out.reshape(x.shape[0], out_channels, height, width).float()


@pytest.mark.parametrize("multiplier", ["own", "signed"])
def test_deployed_accuracy_equals_the_reference_evaluation(trained_like, multiplier,
                                                           monkeypatch):
    model, images = trained_like
    labels = torch.arange(len(images)) % 10
    override = signed_truncated() if multiplier == "signed" else None
    net = deploy.build(model, [images[:16]], override)
    with torch.no_grad():
        deployed = net(images)
        monkeypatch.setattr(DeployedConv2d, "integer_forward", reference_conv)
        reference = net(images)
    torch.testing.assert_close(deployed, reference, atol=1e-5, rtol=1e-5)
    assert bool((deployed.argmax(1) == labels).float().mean()
                == (reference.argmax(1) == labels).float().mean())
    assert torch.equal(deployed.argmax(1), reference.argmax(1))


def test_uncalibrated_layer_says_so(trained_like):
    model, images = trained_like
    net = deploy.deploy_network(model)
    with pytest.raises(ValueError, match="not calibrated"):
        net(images)


def test_a_silent_input_or_a_zero_channel_keeps_its_bias():
    conv = torch.nn.Conv2d(3, 4, 1, bias=True)
    with torch.no_grad():
        conv.weight[0] = 0.0
    images = -torch.rand(2, 3, 5, 5)  # after the ReLU: zero on every calibration image
    net = deploy.build(torch.nn.Sequential(torch.nn.ReLU(), conv), [images],
                       load_multiplier("exact"))
    with torch.no_grad():
        out = net(images)
    bias_unit = float(net[0].accumulator_scale().max())  # the bias code's rounding
    torch.testing.assert_close(out, conv.bias.detach().view(1, 4, 1, 1).expand_as(out),
                               atol=bias_unit / 2 + 1e-7, rtol=0)


def test_wide_layers_sum_in_float64_and_still_equal_the_reference(monkeypatch):
    from deploy.integer import sum_dtype

    conv = torch.nn.Conv2d(300, 3, 1)  # 300 taps x 65025 > 2^24: float32 could round
    exact = load_multiplier("exact")
    assert sum_dtype(exact, conv.weight.shape) == torch.float64
    images = torch.rand(2, 300, 3, 3)
    net = deploy.build(torch.nn.Sequential(conv), [images], exact)
    with torch.no_grad():
        deployed = net(images)
        monkeypatch.setattr(DeployedConv2d, "integer_forward", reference_conv)
        torch.testing.assert_close(deployed, net(images), atol=1e-6, rtol=1e-6)

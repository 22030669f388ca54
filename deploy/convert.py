"""From a trained float network to its deployed form (deploy.layers), by module type.

A copy of the network in eval mode has, inside every nn.Sequential, each `conv, BatchNorm2d`
pair folded into one DeployedConv2d and each `ReLU, conv` pair fused into it; a
FactorizedReduce's two convs take the halves of its BatchNorm; an nn.Linear (or the
classifier as a 1x1 conv on a multiplier, operations.ConvClassifier) becomes a
DeployedLinear. A conv's arithmetic follows its type: an emulated conv bound to a multiplier
(approx.ApproxConv2d) runs that multiplier's table, a plain nn.Conv2d / nn.Linear (float32 by
choice) stays float, unless `multiplier` puts every layer on one table. The network's own
forward (cells, node sums, pools, concatenations) runs unchanged around the deployed layers.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from approx.geometry import Geometry
from approx.module import ApproxConv2d, EmulatedConv2d
from approx.multiplier import Multiplier
from deploy.folding import fold
from deploy.layers import DeployedConv2d, DeployedLinear
from operations import ConvClassifier, FactorizedReduce


class DeployError(ValueError):
    """A network that deploy cannot convert (a layer kind it does not know)."""


def child_name(parent: str, label: str) -> str:
    return f"{parent}.{label}" if parent else label


def layer_multiplier(module: nn.Module, name: str,
                     override: Multiplier | None) -> Multiplier | None:
    """The multiplier a conv/linear deploys on: `override`, its own, or None (float32)."""
    if override is not None:
        return override
    if isinstance(module, ApproxConv2d):
        return module.multiplier
    if isinstance(module, EmulatedConv2d):
        raise DeployError(f"deploy: {name} ({type(module).__name__}) mixes multipliers; derive "
                          "a discrete network first")
    return getattr(module, "multiplier", None)  # a plain float layer, or an emulated linear


def deployed_conv(conv: nn.Conv2d, name: str, bn: nn.BatchNorm2d | None, relu_input: bool,
                  override: Multiplier | None) -> DeployedConv2d:
    weight, bias = fold(conv.weight, conv.bias, bn)
    geometry = Geometry.of(conv.stride, conv.padding, conv.dilation, conv.groups)
    return DeployedConv2d(name, weight, bias, geometry, layer_multiplier(conv, name, override),
                          relu_input)


def deployed_linear(linear: nn.Linear, name: str, override: Multiplier | None) -> DeployedLinear:
    weight = linear.weight.reshape(*linear.weight.shape, 1, 1)
    weight, bias = fold(weight, linear.bias, None)
    return DeployedLinear(DeployedConv2d(name, weight, bias, Geometry.of(),
                                         layer_multiplier(linear, name, override), False))


class DeployedFactorizedReduce(nn.Module):
    """FactorizedReduce deployed: ReLU fused into both convs, each with its half of the BN."""

    def __init__(self, block: FactorizedReduce, name: str, override: Multiplier | None):
        super().__init__()
        half = block.conv_1.out_channels
        bn_halves = [split_batchnorm(block.bn, slice(0, half)),
                     split_batchnorm(block.bn, slice(half, 2 * half))]
        self.conv_1, self.conv_2 = (
            deployed_conv(conv, child_name(name, label), bn, True, override)
            for conv, bn, label in zip((block.conv_1, block.conv_2), bn_halves,
                                       ("conv_1", "conv_2"), strict=True))

    def forward(self, x):
        return torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1)


def split_batchnorm(bn: nn.BatchNorm2d, channels: slice) -> nn.BatchNorm2d:
    """The BatchNorm of `channels` alone (eval-mode statistics and affine parameters)."""
    part = nn.BatchNorm2d(channels.stop - channels.start, eps=bn.eps, affine=bn.affine)
    state = {key: value[channels] for key, value in bn.state_dict().items() if value.dim()}
    part.load_state_dict(state, strict=False)
    return part.eval()


def deployed_sequence(block: nn.Sequential, name: str, override) -> nn.Sequential:
    """The items of `block` with ReLU-conv-BN runs merged into DeployedConv2d layers."""
    items = list(block.named_children())
    out, i = [], 0
    while i < len(items):
        label, item = items[i]
        relu = isinstance(item, nn.ReLU) and i + 1 < len(items) \
            and isinstance(items[i + 1][1], nn.Conv2d)
        if relu:
            i += 1
            label, item = items[i]
        if isinstance(item, nn.Conv2d):
            following = items[i + 1][1] if i + 1 < len(items) else None
            bn = following if isinstance(following, nn.BatchNorm2d) else None
            out.append(deployed_conv(item, child_name(name, label), bn, relu, override))
            i += 1 if bn is None else 2
            continue
        out.append(convert_module(item, child_name(name, label), override))
        i += 1
    return nn.Sequential(*out)


def convert_module(module: nn.Module, name: str, override: Multiplier | None) -> nn.Module:
    """The deployed form of `module` (its children converted in place where it is a
    container the network's forward walks)."""
    if isinstance(module, FactorizedReduce):
        return DeployedFactorizedReduce(module, name, override)
    if isinstance(module, nn.Sequential):
        return deployed_sequence(module, name, override)
    if isinstance(module, nn.Conv2d):
        return deployed_conv(module, name, None, False, override)
    if isinstance(module, nn.Linear):
        return deployed_linear(module, name, override)
    if isinstance(module, ConvClassifier):  # the classifier on a multiplier: a 1x1 conv
        return DeployedLinear(deployed_conv(module.conv, child_name(name, "conv"), None, False,
                                            override))
    if isinstance(module, nn.BatchNorm2d):
        raise DeployError(f"deploy: BatchNorm {name} does not follow a conv in a Sequential; "
                          "this network kind is not supported by deploy")
    for label, child in module.named_children():
        setattr(module, label, convert_module(child, child_name(name, label),
                                              override))
    return module


def deploy_network(model: nn.Module, multiplier: Multiplier | None = None) -> nn.Module:
    """The deployed (uncalibrated) copy of `model`; `model` itself is left as it is.
    `multiplier` puts every conv and the classifier on that table (e.g. the ONNX check)."""
    net = copy.deepcopy(model).eval()
    if getattr(net, "auxiliary_head", None) is not None:
        net.auxiliary_head = None  # training only
    net.drop_path_prob = 0.0
    return convert_module(net, "", multiplier).requires_grad_(False)


def deployed_layers(net: nn.Module) -> list[DeployedConv2d]:
    """The deployed convs (classifier included) in module order."""
    return [m for m in net.modules() if isinstance(m, DeployedConv2d)]

"""The deployed int8 network: BatchNorm folded, ReLU fused, 8-bit activations with calibrated
scales, integer accumulation on each layer's multiplier table (docs/reference/export.md).

    net = deploy.build(model, deploy.calibration_loader(dataset))
    logits = net(images)       # the network that hardware would run, emulated exactly
"""

from deploy.calibration import CALIBRATION_IMAGES, calibrate, calibration_loader
from deploy.convert import DeployError, deploy_network, deployed_layers
from deploy.layers import DeployedConv2d, DeployedLinear


def build(model, calibration_batches, multiplier=None):
    """The deployed, calibrated copy of `model` (`multiplier`: every layer on that table)."""
    return calibrate(deploy_network(model, multiplier), calibration_batches)


__all__ = [
    "CALIBRATION_IMAGES",
    "DeployError",
    "DeployedConv2d",
    "DeployedLinear",
    "build",
    "calibrate",
    "calibration_loader",
    "deploy_network",
    "deployed_layers",
]

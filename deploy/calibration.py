"""Calibration of a deployed network's activation scales, and the calibration set itself.

Each quantised layer's scale is s_x = (peak |input| over the calibration images) / code levels,
its input taken in the float deployed network (BatchNorm folded, no quantisation): fixed once,
so an evaluated prediction never depends on the rest of its batch. The calibration set is the
first `CALIBRATION_IMAGES` training images, normalised and not augmented: train.py and the
export calibrate on the same images and so deploy the same network.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

import data
from deploy.convert import deployed_layers

CALIBRATION_IMAGES = 512
CALIBRATION_BATCH = 128


def calibration_loader(dataset: data.Dataset, device="cpu",
                       count: int = CALIBRATION_IMAGES) -> data.BatchLoader:
    """The first `count` training images of `dataset` as evaluation batches."""
    split = data.ImageData(dataset.train.images[:count], dataset.train.labels[:count])
    return data.BatchLoader(split, CALIBRATION_BATCH, mean=dataset.mean, std=dataset.std,
                            train=False, device=device)


@contextmanager
def calibrating(net: nn.Module):
    """Within this block the deployed layers run in float and record their input peaks."""
    layers = deployed_layers(net)
    for layer in layers:
        layer.calibrating = True
    try:
        yield layers
    finally:
        for layer in layers:
            layer.calibrating = False


@torch.no_grad()
def calibrate(net: nn.Module, batches) -> nn.Module:
    """Set every deployed layer's activation peak from `batches` (images, or (images, labels)
    pairs); returns `net`."""
    with calibrating(net) as layers:
        for layer in layers:
            layer.act_peak.zero_()  # calibrated from here on (peaks only grow)
        for batch in batches:
            net(batch[0] if isinstance(batch, (tuple, list)) else batch)
    return net

"""Benchmark: how fast a plain CNN learns the default search's weight images (issue 27.1).

The default search trains its supernet's weights on half of `--n_train` (1,600 embedded
images, 13 steps of 128 per epoch). This trains a plain 3-conv CNN (32-64-64 channels,
BatchNorm, ReLU, max-pooling, global pooling, linear; nothing of the supernet) on exactly
those images with the search's loader, batch, learning rate, momentum and weight decay, and
evaluates it on the search's 512 validation images every 2 epochs, once per variant
(`crop_padding=P`, `batch=B`). If the CNN too sits near chance for its first epochs, the
supernet's slow start is the data regime, not the supernet. Prints ONE JSON line.

    .venv/bin/python bench/data_regime.py --epochs 20 --variants crop_padding=4,crop_padding=2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import data  # noqa: E402
import experiment  # noqa: E402
import train_search  # noqa: E402
from runner.errors import exit_status  # noqa: E402


def plain_cnn(num_classes: int) -> nn.Module:
    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(*block(3, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2),
                         *block(64, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(64, num_classes))


def parse_variant(variant: str) -> dict:
    name, _, value = variant.partition("=")
    if name not in ("crop_padding", "batch") or not value.isdigit():
        raise ValueError(f"--variants {variant!r}: give crop_padding=P or batch=B")
    return {name: int(value)}


@torch.no_grad()
def accuracy(net: nn.Module, loader) -> float:
    net.eval()
    correct = total = 0
    for x, y in loader:
        correct += int((net(x).argmax(1) == y).sum())
        total += len(y)
    net.train()
    return round(correct / total, 3)


def curve(args, dataset, variant: dict, epochs: int, seed: int) -> list[float]:
    """Validation accuracy every 2 epochs of the plain CNN under one variant."""
    weights_part, alphas_part = data.search_split(dataset.train, args.train_portion,
                                                  args.data_seed)
    common = dict(mean=dataset.mean, std=dataset.std, seed=seed)
    train = data.BatchLoader(weights_part, variant.get("batch", args.batch_size), train=True,
                             crop_padding=variant.get("crop_padding"), **common)
    val = data.BatchLoader(alphas_part.subset(slice(0, args.val_images)), 256, train=False,
                           **common)
    torch.manual_seed(seed)
    net = plain_cnn(dataset.num_classes)
    optimizer = torch.optim.SGD(net.parameters(), args.learning_rate, momentum=args.momentum,
                                weight_decay=args.weight_decay)
    points = []
    for epoch in range(epochs):
        for x, y in train:
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()
        if epoch % 2 == 1:
            points.append(accuracy(net, val))
    return points


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default="crop_padding=4,crop_padding=2")
    options = parser.parse_args(argv)
    variants = {v: parse_variant(v) for v in options.variants.split(",")}
    torch.set_num_threads(options.threads)
    args = train_search.parse_args(["--epochs", "50", "--seed", str(options.seed)])
    dataset = experiment.load_data(args)
    started = time.time()
    curves = {name: curve(args, dataset, variant, options.epochs, options.seed)
              for name, variant in variants.items()}
    print(json.dumps({"epochs": options.epochs, "seed": options.seed,
                      "weight_images": int(len(dataset.train) * args.train_portion),
                      "val_acc_every_2_epochs": curves, "wall_s": round(time.time() - started)}))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))

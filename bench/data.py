"""Benchmark: BatchLoader (batched, on-device augmentation) against a torchvision DataLoader
with the same per-sample augmentations, on CIFAR-shaped `shapes` data; also the time to
generate the `shapes` images. Prints one JSON line.

    .venv/bin/python bench/data.py [--images 10000] [--batch_size 64] [--device cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
from torch.utils.data import DataLoader
from torchvision import transforms

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import data  # noqa: E402
from datasources import shapes  # noqa: E402
from preflight import check_at_least  # noqa: E402
from runner.errors import exit_status  # noqa: E402

CUTOUT = 16


class Cutout:
    """Per-sample cutout on a normalised (3, H, W) tensor, as in DARTS's utils.Cutout."""

    def __init__(self, length: int):
        self.length = length

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        y, x = torch.randint(height, ()).item(), torch.randint(width, ()).item()
        half = self.length // 2
        image = image.clone()
        image[:, max(y - half, 0):y + half, max(x - half, 0):x + half] = 0
        return image


class AugmentedImages(torch.utils.data.Dataset):
    """Images augmented one by one: the usual torchvision pipeline, on uint8 tensors."""

    def __init__(self, split: data.ImageData, mean, std):
        self.split = split
        self.transform = transforms.Compose([
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ConvertImageDtype(torch.float32),
            transforms.Normalize(mean, std),
            Cutout(CUTOUT),
        ])

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        return self.transform(self.split.images[index]), self.split.labels[index]


def images_per_second(batches, device: torch.device) -> float:
    """Consume one epoch of batches (moved to `device`) and return its throughput."""
    start, count = time.perf_counter(), 0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        count += y.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000, help="number of images")
    parser.add_argument("--batch_size", type=int, default=64, help="batch size")
    parser.add_argument("--device", default="cpu", help="device of BatchLoader's batches")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    check_at_least("--images", args.images, args.batch_size, "a measurement needs one batch")
    check_at_least("--batch_size", args.batch_size, 1, "a batch holds at least one image")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    start = time.perf_counter()
    images, labels = shapes.generate_shapes(args.images, seed=0)
    generate_s = time.perf_counter() - start
    split = data.ImageData(images, labels)
    mean, std = data.channel_stats(images)

    loader = data.BatchLoader(split, args.batch_size, mean=mean, std=std, train=True,
                              device=device, crop_padding=4, flip=True, cutout=CUTOUT)
    images_per_second(loader, device)  # warm-up epoch
    batch_loader = images_per_second(loader, device)
    per_sample = AugmentedImages(split, mean, std)
    torchvision_loaders = {
        workers: images_per_second(DataLoader(per_sample, args.batch_size, shuffle=True,
                                              num_workers=workers), device)
        for workers in (0, 2)
    }
    print(json.dumps({
        "bench": "data", "device": str(device), "torch_threads": torch.get_num_threads(),
        "images": args.images, "batch_size": args.batch_size,
        "augment": f"crop(pad 4) + flip + cutout {CUTOUT}",
        "shapes_generate_s": round(generate_s, 3),
        "shapes_generate_images_per_s": round(args.images / generate_s),
        "batchloader_images_per_s": round(batch_loader),
        "dataloader_workers0_images_per_s": round(torchvision_loaders[0]),
        "dataloader_workers2_images_per_s": round(torchvision_loaders[2]),
        "speedup_vs_workers0": round(batch_loader / torchvision_loaders[0], 1),
        "speedup_vs_workers2": round(batch_loader / torchvision_loaders[2], 1),
    }))


if __name__ == "__main__":
    sys.exit(exit_status(main))  # a bad size: one line, exit status 2

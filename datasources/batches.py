"""Batched augmentation on the device: `BatchLoader` keeps a whole split (an ImageData of
data.py: uint8 images, int64 labels) as one tensor and yields normalised float32 batches,
augmenting whole batches at once (random crop with zero padding, horizontal flip, cutout), in
the style of airbench. Shuffle and augmentation of epoch e are a deterministic function of
(seed, e), so a resumed run sees identical batches. Reached as `data.BatchLoader`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def default_crop_padding(image_side: int) -> int:
    """The random-crop padding for images of this side: an eighth of it, DARTS's 4 px on
    32 px CIFAR. A fixed 4 px on the embedded 16 px images shifts the shape by up to a quarter
    of the image, which slowed learning on the search's 1,600 weight images (a plain 3-conv CNN:
    0.42 validation accuracy after 20 epochs at 4 px, 0.54 at 2 px; docs/supernet_stability.md)."""
    return max(1, image_side // 8)


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit generator seed for (seed, epoch)."""
    state = np.random.SeedSequence([seed & 0xFFFFFFFF, epoch & 0xFFFFFFFF])
    return int(state.generate_state(1, dtype=np.uint64)[0] >> 1)


@dataclass
class EpochPlan:
    """What one rank sees in one epoch: image order and per-image augmentation draws."""

    indices: torch.Tensor  # int64 (n,): positions in the data, in batch order
    shift_y: torch.Tensor  # int64 (n,): crop offset into the padded image, 0..2*padding
    shift_x: torch.Tensor
    flip: torch.Tensor  # bool (n,)
    cut_y: torch.Tensor  # int64 (n,): cutout centre, 0..H-1
    cut_x: torch.Tensor


class BatchLoader:
    """Normalised (and, for training, augmented) batches from a split held on the device.

    `batch_size` is the per-rank batch: with `world_size` > 1, each rank gets a disjoint
    shard of every epoch's permutation and the global batch is batch_size * world_size.
    Training shards are equal (the permutation is cut to a multiple of world_size; the few
    left out change each epoch); evaluation shards (train=False) cover every image once.
    Iterating uses the epoch set by `set_epoch` and then advances it by one, so a loop that
    never calls set_epoch still reshuffles each pass.
    """

    def __init__(self, data, batch_size: int, *, mean, std, train: bool,
                 device="cpu", crop_padding: int | None = None, flip: bool = True, cutout: int = 0,
                 drop_last: bool = False, seed: int = 0, rank: int = 0, world_size: int = 1):
        if batch_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need batch_size >= 1 and 0 <= rank < world_size, got "
                             f"{batch_size}, rank {rank}, world_size {world_size}")
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.batch_size, self.train, self.drop_last = batch_size, train, drop_last
        if crop_padding is None:
            crop_padding = default_crop_padding(data.images.shape[-1])
        if crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {crop_padding}")
        self.crop_padding = crop_padding if train else 0
        self.flip = flip and train
        self.cutout = cutout if train else 0
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        scale = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1) * 255
        self._offset = torch.tensor(mean, dtype=torch.float32, device=self.device).view(
            1, 3, 1, 1) * 255
        self._scale = 1.0 / scale
        if len(self) == 0:
            raise ValueError(f"{len(data)} images give no batch of {batch_size} per rank "
                             f"(world_size {world_size}, drop_last {drop_last})")

    def __len__(self) -> int:
        n = self._shard_size()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        plan = self.epoch_plan(self.epoch)
        for b in range(len(self)):
            part = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield self._batch(plan, part)
        self.epoch += 1

    def epoch_plan(self, epoch: int) -> EpochPlan:
        """The order and augmentation draws of `epoch` for this rank (on the device)."""
        n = len(self.labels)
        gen = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        order = torch.randperm(n, generator=gen) if self.train else torch.arange(n)
        pad, (height, width) = self.crop_padding, self.images.shape[-2:]
        draws = (torch.randint(0, 2 * pad + 1, (n,), generator=gen),
                 torch.randint(0, 2 * pad + 1, (n,), generator=gen),
                 torch.rand(n, generator=gen) < 0.5,
                 torch.randint(0, height, (n,), generator=gen),
                 torch.randint(0, width, (n,), generator=gen))
        positions = self._shard_positions(n)
        order, *draws = (t[positions].to(self.device) for t in (order, *draws))
        return EpochPlan(order, *draws)

    def _shard_size(self) -> int:
        return len(self._shard_positions(len(self.labels)))

    def _shard_positions(self, n: int) -> torch.Tensor:
        usable = n - n % self.world_size if self.train else n
        return torch.arange(self.rank, usable, self.world_size)

    def _batch(self, plan: EpochPlan, part: slice) -> tuple[torch.Tensor, torch.Tensor]:
        index = plan.indices[part]
        images = self.images[index]
        if self.crop_padding or self.flip:
            images = self._crop_and_flip(images, plan.shift_y[part], plan.shift_x[part],
                                         plan.flip[part])
        x = (images.float() - self._offset) * self._scale
        if self.cutout:
            x = self._cut(x, plan.cut_y[part], plan.cut_x[part])
        return x, self.labels[index]

    def _crop_and_flip(self, images, shift_y, shift_x, flip):
        """Random crop of the zero-padded images and optional mirror, as one gather."""
        pad = self.crop_padding
        count, channels, height, width = images.shape
        padded = F.pad(images, (pad, pad, pad, pad)) if pad else images
        rows = shift_y[:, None] + torch.arange(height, device=self.device)
        columns = torch.arange(width, device=self.device).expand(count, width)
        if self.flip:
            columns = torch.where(flip[:, None], width - 1 - columns, columns)
        columns = columns + shift_x[:, None]
        source = rows[:, :, None] * padded.shape[-1] + columns[:, None, :]  # B, H, W
        source = source.view(count, 1, height * width).expand(count, channels, height * width)
        cropped = padded.flatten(2).gather(2, source)
        return cropped.view(count, channels, height, width)

    def _cut(self, x, cut_y, cut_x):
        """Cutout (DARTS style): zero a cutout x cutout square (clipped at the border)
        centred at (cut_y, cut_x) in the normalised image."""
        half = self.cutout // 2
        height, width = x.shape[-2:]
        ys = torch.arange(height, device=self.device)
        xs = torch.arange(width, device=self.device)
        inside_y = (ys >= cut_y[:, None] - half) & (ys < cut_y[:, None] + self.cutout - half)
        inside_x = (xs >= cut_x[:, None] - half) & (xs < cut_x[:, None] + self.cutout - half)
        mask = inside_y[:, :, None] & inside_x[:, None, :]
        return x.masked_fill(mask[:, None], 0.0)

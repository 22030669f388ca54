"""Datasets and batched augmentation.

Datasets (`load_dataset`): the embedded procedural `shapes` set (see
datasources/shapes.py; generated once and cached as uint8 tensors), CIFAR-10/100 through
torchvision, and `folder`, an image folder with `train/` and `val/` subfolders of one folder
per class. Every dataset is held in memory
as uint8 tensors (N, 3, H, W) with int64 labels.

`BatchLoader` (datasources/batches.py, reached here) keeps a whole split as one tensor on the
device and yields normalised, augmented float32 batches, the same for a seed and epoch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from datasources import shapes
from datasources.batches import (  # noqa: F401  (the loader is part of data's interface)
    BatchLoader,
    EpochPlan,
    default_crop_padding,
    epoch_seed,
)
from runner.files import atomic_torch_save

DATASETS = ("shapes", "cifar10", "cifar100", "folder")
DATASET_DEFAULT_ROOT = {name: os.path.join("data", name) for name in DATASETS}
SHAPES_DEFAULT_SIZES = (20000, 4000)  # (n_train, n_test) generated when not given
CIFAR_CLASSES = {"cifar10": 10, "cifar100": 100}
FOLDER_VAL_NAMES = ("val", "test")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp")


class DatasetNotFoundError(ValueError):
    """A dataset's files are missing (or unreadable) at the given root."""


@dataclass
class ImageData:
    """One split: `images` uint8 (N, 3, H, W) and `labels` int64 (N)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, 3, H, W), got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"need one label per image, got {tuple(self.labels.shape)} labels "
                             f"for {self.images.shape[0]} images")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: torch.Tensor | slice) -> ImageData:
        return ImageData(self.images[index], self.labels[index])


@dataclass
class Dataset:
    """Train and test splits with per-channel mean and std (0..1 scale) of the train images."""

    name: str
    train: ImageData
    test: ImageData
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    classes: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])


def default_root(name: str) -> str:
    """Where a dataset lives when no root is given: ./data/<name>."""
    _check_name(name)
    return DATASET_DEFAULT_ROOT[name]


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = False,
                 n_train: int | None = None, n_test: int | None = None, seed: int = 0,
                 image_size: int = 32) -> Dataset:
    """Load a dataset by name; `n_train`/`n_test` keep a seeded random subset of that size.

    For `shapes`, the sizes (default SHAPES_DEFAULT_SIZES), `seed` and `image_size` choose
    what is generated; the first n images of a larger generated set equal a set of size n.
    """
    _check_name(name)
    root = Path(root if root is not None else default_root(name))
    if name == "shapes":
        return _load_shapes(root, n_train, n_test, seed, image_size)
    if name == "folder":
        train, test, classes = _load_folder(root, image_size)
    else:
        train, test, classes = _load_cifar(name, root, download)
        train, test = _resize(train, image_size), _resize(test, image_size)
    mean, std = channel_stats(train.images)
    train = _subsample(train, n_train, seed, "n_train")
    test = _subsample(test, n_test, seed + 1, "n_test")
    return Dataset(name, train, test, len(classes), mean, std, tuple(classes))


def search_split(data: ImageData, train_portion: float,
                 seed: int = 0) -> tuple[ImageData, ImageData]:
    """The search split: int(portion * N) images train the weights, the rest the architecture.
    Stratified and seeded, the same for every dataset: each class's images are shuffled and
    spread evenly over the order, so both parts hold every class (of two images or more) in
    the proportion of the whole (a class-sorted folder split in halves would not)."""
    if not 0 < train_portion < 1:
        raise ValueError(f"train_portion must be in (0, 1) for a search (the rest trains the "
                         f"architecture), got {train_portion}")
    split = int(train_portion * len(data))
    if split < 1 or split >= len(data):
        raise ValueError(f"train_portion {train_portion} of {len(data)} images leaves an empty "
                         f"part ({split} for weights, {len(data) - split} for alphas)")
    order = _stratified_order(data.labels, torch.Generator().manual_seed(seed))
    return data.subset(order[:split].sort().values), data.subset(order[split:].sort().values)


def _stratified_order(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Every index once, each class's (in a random order) at evenly spaced quantiles
    (i + 0.5) / n_class, ties between classes broken at random: any prefix is class-balanced."""
    quantile = torch.empty(len(labels), dtype=torch.float64)
    for label in labels.unique():
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        quantile[members] = (torch.arange(len(members), dtype=torch.float64) + 0.5) / len(members)
    tie_break = torch.randperm(len(labels), generator=generator)
    by_tie = quantile[tie_break].sort(stable=True).indices
    return tie_break[by_tie]


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple, tuple]:
    """Per-channel mean and std (0..1 scale) of uint8 images, computed in chunks."""
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    for start in range(0, images.shape[0], chunk):
        part = images[start:start + chunk].to(torch.float64).div_(255)
        total += part.sum(dim=(0, 2, 3))
        squares += part.square().sum(dim=(0, 2, 3))
    count = max(images.shape[0] * images.shape[2] * images.shape[3], 1)
    mean = total / count
    std = (squares / count - mean.square()).clamp(min=1e-12).sqrt()
    return tuple(round(v, 6) for v in mean.tolist()), tuple(round(v, 6) for v in std.tolist())


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")


def _not_found(name: str, path: Path, detail: str = "not found",
               hint: str | None = None) -> DatasetNotFoundError:
    if hint is None and name in CIFAR_CLASSES:
        hint = "pass --download to fetch it through torchvision (needs internet)"
    elif hint is None:
        hint = ("expected <root>/train/<class>/<image> and <root>/val/<class>/<image> "
                "(--download does not apply to image folders)")
    return DatasetNotFoundError(f"dataset {name!r} {detail} at {path}; {hint}; or use the "
                                f"embedded dataset: --dataset shapes")


def _subsample(data: ImageData, n: int | None, seed: int, flag: str) -> ImageData:
    if n is None or n == len(data):
        return data
    if not 0 < n <= len(data):
        raise ValueError(f"{flag} must be in 1..{len(data)} for this dataset, got {n}")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return data.subset(order[:n].sort().values)


def _resize(data: ImageData, size: int) -> ImageData:
    if data.images.shape[-1] == size and data.images.shape[-2] == size:
        return data
    parts = []
    for start in range(0, len(data), 4096):
        part = data.images[start:start + 4096].float()
        part = F.interpolate(part, size=(size, size), mode="bilinear", antialias=True)
        parts.append(part.round().clamp(0, 255).to(torch.uint8))
    return ImageData(torch.cat(parts), data.labels)


# --- shapes -----------------------------------------------------------------------------------


def shapes_cache_path(root: Path, seed: int, n_train: int, n_test: int, image_size: int) -> Path:
    return Path(root) / (f"shapes_v{shapes.SHAPES_VERSION}_seed{seed}_train{n_train}"
                         f"_test{n_test}_size{image_size}.pt")


def _load_shapes(root: Path, n_train, n_test, seed: int, image_size: int) -> Dataset:
    n_train = SHAPES_DEFAULT_SIZES[0] if n_train is None else n_train
    n_test = SHAPES_DEFAULT_SIZES[1] if n_test is None else n_test
    if n_train < 1 or n_test < 1:
        raise ValueError(f"shapes needs n_train >= 1 and n_test >= 1, got {n_train}, {n_test}")
    path = shapes_cache_path(root, seed, n_train, n_test, image_size)
    if path.is_file():
        saved = torch.load(path, weights_only=True)
    else:
        saved = _generate_shapes(seed, n_train, n_test, image_size)
        atomic_torch_save(saved, path)  # concurrent runs may share the cache
    return Dataset("shapes", ImageData(saved["train_images"], saved["train_labels"]),
                   ImageData(saved["test_images"], saved["test_labels"]), shapes.NUM_CLASSES,
                   tuple(saved["mean"]), tuple(saved["std"]), shapes.SHAPE_CLASSES)


def _generate_shapes(seed: int, n_train: int, n_test: int, image_size: int) -> dict:
    train_images, train_labels = shapes.generate_shapes(n_train, seed, "train", image_size)
    test_images, test_labels = shapes.generate_shapes(n_test, seed, "test", image_size)
    mean, std = channel_stats(train_images)
    return {"train_images": train_images, "train_labels": train_labels,
            "test_images": test_images, "test_labels": test_labels,
            "mean": list(mean), "std": list(std), "version": shapes.SHAPES_VERSION}


# --- CIFAR ------------------------------------------------------------------------------------


def _load_cifar(name: str, root: Path, download: bool):
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    folder = root / cls.base_folder
    if not download and not folder.is_dir():
        raise _not_found(name, folder)
    try:
        splits = [cls(str(root), train=train, download=download) for train in (True, False)]
    except RuntimeError as error:  # torchvision: missing or corrupted files
        raise _not_found(name, folder, "not found or corrupted") from error
    except OSError as error:  # a failed download
        raise _not_found(name, folder, f"could not be downloaded ({error})",
                         "check the connection or put the files there by hand") from error
    train, test = (ImageData(_hwc_to_nchw(s.data), torch.as_tensor(s.targets)) for s in splits)
    return train, test, list(splits[0].classes)


def _hwc_to_nchw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))


# --- image folder -----------------------------------------------------------------------------


def _load_folder(root: Path, image_size: int):
    train_dir = root / "train"
    val_dir = next((root / v for v in FOLDER_VAL_NAMES if (root / v).is_dir()), root / "val")
    for path in (train_dir, val_dir):
        if not path.is_dir():
            raise _not_found("folder", path)
    classes = sorted(entry.name for entry in os.scandir(train_dir) if entry.is_dir())
    if not classes:
        raise _not_found("folder", train_dir, "has no class folders")
    train = _decode_folder(train_dir, classes, image_size)
    test = _decode_folder(val_dir, classes, image_size)
    return train, test, classes


def _decode_folder(split_dir: Path, classes: list[str], image_size: int) -> ImageData:
    files = [(path, label) for label, name in enumerate(classes)
             for path in sorted((split_dir / name).glob("*")) if _is_image(path)]
    if not files:
        raise _not_found("folder", split_dir, "has no images")
    images = torch.stack([_decode_image(path, image_size) for path, _ in files])
    return ImageData(images, torch.tensor([label for _, label in files], dtype=torch.int64))


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def _decode_image(path: Path, image_size: int) -> torch.Tensor:
    """Decode to RGB, resize the shorter side to `image_size`, centre-crop a square."""
    from PIL import Image
    from torchvision.transforms import functional as TF

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except (OSError, ValueError, SyntaxError) as error:  # PIL's errors for unreadable files
        raise DatasetNotFoundError(f"dataset 'folder': {path} is not a readable image "
                                   f"({type(error).__name__}); remove or replace it") from None
    image = TF.resize(image, image_size, antialias=True)
    return TF.pil_to_tensor(TF.center_crop(image, [image_size, image_size]))

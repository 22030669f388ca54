"""Loading CIFAR-10/100 (tiny files in the CIFAR pickle layout), image folders, errors,
subsampling and the DARTS search split."""

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

import data


@pytest.fixture
def no_md5(monkeypatch):
    """Tiny stand-in files cannot match CIFAR's checksums: check existence only."""
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))


def write_pickle(path, obj):
    with open(path, "wb") as handle:
        pickle.dump(obj, handle)


def cifar_rows(count, seed):
    return np.random.default_rng(seed).integers(0, 256, (count, 3072), dtype=np.uint8)


def write_cifar10(root, per_batch=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows, labels = [], []
    for index in range(1, 6):
        batch_rows, batch_labels = cifar_rows(per_batch, index), [(index + i) % 10 for i in
                                                                   range(per_batch)]
        write_pickle(folder / f"data_batch_{index}", {"data": batch_rows, "labels": batch_labels})
        rows.append(batch_rows)
        labels += batch_labels
    write_pickle(folder / "test_batch", {"data": cifar_rows(3, 9), "labels": [1, 2, 3]})
    write_pickle(folder / "batches.meta", {"label_names": [f"class{i}" for i in range(10)]})
    return np.concatenate(rows), labels


def test_cifar10_loads_as_uint8_nchw(tmp_path, no_md5):
    rows, labels = write_cifar10(tmp_path)
    dataset = data.load_dataset("cifar10", root=tmp_path, download=False)
    assert dataset.num_classes == 10 and dataset.classes[3] == "class3"
    assert dataset.train.images.dtype == torch.uint8
    assert dataset.train.images.shape == (20, 3, 32, 32) and len(dataset.test) == 3
    assert torch.equal(dataset.train.images, torch.from_numpy(rows).view(-1, 3, 32, 32))
    assert dataset.train.labels.tolist() == labels
    assert dataset.mean == pytest.approx((127.5 / 255,) * 3, abs=0.05)


def test_cifar100_uses_fine_labels(tmp_path, no_md5):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    write_pickle(folder / "train", {"data": cifar_rows(6, 0), "fine_labels": [0, 5, 99, 1, 2, 3],
                                    "coarse_labels": [0] * 6})
    write_pickle(folder / "test", {"data": cifar_rows(2, 1), "fine_labels": [7, 8],
                                   "coarse_labels": [0, 0]})
    write_pickle(folder / "meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    dataset = data.load_dataset("cifar100", root=tmp_path)
    assert dataset.num_classes == 100
    assert dataset.train.labels.tolist() == [0, 5, 99, 1, 2, 3]
    assert dataset.test.images.shape == (2, 3, 32, 32)


def test_subsampling_is_seeded_and_keeps_pairs(tmp_path, no_md5):
    rows, labels = write_cifar10(tmp_path)
    first = data.load_dataset("cifar10", root=tmp_path, n_train=7, n_test=2, seed=5)
    again = data.load_dataset("cifar10", root=tmp_path, n_train=7, n_test=2, seed=5)
    assert len(first.train) == 7 and len(first.test) == 2
    assert torch.equal(first.train.images, again.train.images)
    full = torch.from_numpy(rows).view(-1, 3, 32, 32)
    for image, label in zip(first.train.images, first.train.labels, strict=True):
        match = [i for i in range(len(full)) if torch.equal(full[i], image)]
        assert len(match) == 1 and labels[match[0]] == label
    with pytest.raises(ValueError, match="n_train"):
        data.load_dataset("cifar10", root=tmp_path, n_train=21)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_missing_cifar_names_path_download_flag_and_shapes(tmp_path, name):
    with pytest.raises(data.DatasetNotFoundError) as caught:
        data.load_dataset(name, root=tmp_path / "nowhere")
    message = str(caught.value)
    assert isinstance(caught.value, ValueError) and "\n" not in message
    assert str(tmp_path / "nowhere") in message
    assert "--download" in message and "--dataset shapes" in message


def test_corrupted_cifar_is_reported_as_not_found(tmp_path):
    write_cifar10(tmp_path)  # the real checksums do not match these tiny files
    with pytest.raises(data.DatasetNotFoundError, match="corrupted.*--download"):
        data.load_dataset("cifar10", root=tmp_path)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as caught:
        data.load_dataset("folder", root=tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "train") in message and "--dataset shapes" in message
    assert "--download" in message and "\n" not in message


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="shapes, cifar10, cifar100, folder"):
        data.load_dataset("imagenet")


def write_png(path, colour, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_image_folder_is_decoded_resized_and_centre_cropped(tmp_path):
    colours = {"apple": (200, 10, 10), "bird": (10, 200, 10), "cat": (10, 10, 200)}
    for index, (name, colour) in enumerate(colours.items()):
        for copy in range(2):
            write_png(tmp_path / "train" / name / f"{copy}.png", colour, (40 + 8 * index, 48))
        write_png(tmp_path / "val" / name / "0.png", colour, (64, 64))
    (tmp_path / "train" / "notes.txt").write_text("not a class")
    dataset = data.load_dataset("folder", root=tmp_path, image_size=16)
    assert dataset.classes == ("apple", "bird", "cat") and dataset.num_classes == 3
    assert dataset.train.images.shape == (6, 3, 16, 16)
    assert dataset.train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert dataset.test.images.shape == (3, 3, 16, 16) and dataset.test.labels.tolist() == [0, 1, 2]
    assert dataset.train.images[0, :, 8, 8].tolist() == [200, 10, 10]
    assert dataset.test.images[2, :, 0, 0].tolist() == [10, 10, 200]


def test_search_split_is_a_seeded_stratified_partition():
    images = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1).expand(100, 3, 2, 2)
    split = data.ImageData(images.contiguous(), torch.arange(100) // 25)  # class-sorted
    weights_part, alphas_part = data.search_split(split, 0.7, seed=3)
    assert len(weights_part) == 70 and len(alphas_part) == 30
    ids = weights_part.images[:, 0, 0, 0].tolist() + alphas_part.images[:, 0, 0, 0].tolist()
    assert sorted(ids) == list(range(100))
    assert set(torch.bincount(alphas_part.labels).tolist()) <= {7, 8}  # 30 % of each 25
    again, _ = data.search_split(split, 0.7, seed=3)
    assert torch.equal(again.images, weights_part.images)
    other, _ = data.search_split(split, 0.7, seed=4)
    assert not torch.equal(other.images, weights_part.images)
    for portion in (0.0, 1.0, 1.5, -0.2):
        with pytest.raises(ValueError, match="train_portion"):
            data.search_split(split, portion)


def test_search_split_of_a_class_sorted_folder_holds_every_class_in_both_halves(tmp_path):
    colours = [(20 * k, 255 - 20 * k, 7 * k) for k in range(5)]
    for index, colour in enumerate(colours):
        for copy in range(4):
            write_png(tmp_path / "train" / f"class{index}" / f"{copy}.png", colour, (8, 8))
        write_png(tmp_path / "val" / f"class{index}" / "0.png", colour, (8, 8))
    dataset = data.load_dataset("folder", root=tmp_path, image_size=8)
    assert dataset.train.labels.tolist() == sorted(dataset.train.labels.tolist())
    weights_part, alphas_part = data.search_split(dataset.train, 0.5)
    for part in (weights_part, alphas_part):
        assert torch.bincount(part.labels, minlength=5).tolist() == [2] * 5


def test_image_data_checks_its_tensors():
    with pytest.raises(ValueError, match="uint8"):
        data.ImageData(torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="label"):
        data.ImageData(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(3))


def test_default_roots():
    assert data.default_root("shapes") == os.path.join("data", "shapes")
    assert set(data.DATASET_DEFAULT_ROOT) == set(data.DATASETS)

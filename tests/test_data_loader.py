"""BatchLoader: batching, normalisation, on-device augmentation, determinism, sharding."""

import pytest
import torch

import data


def random_split(count=200, size=32, seed=0) -> data.ImageData:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, 3, size, size), generator=gen, dtype=torch.uint8)
    return data.ImageData(images, torch.arange(count) % 10)


def loader_for(split, batch_size=32, **options):
    mean, std = data.channel_stats(split.images)
    options.setdefault("train", True)
    return data.BatchLoader(split, batch_size, mean=mean, std=std, **options)


def normalised(split, index, images=None):
    """split.images[index] (or `images`) normalised with the statistics of `split`."""
    mean, std = data.channel_stats(split.images)
    mean = torch.tensor(mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(std).view(1, 3, 1, 1) * 255
    images = split.images[index] if images is None else images
    return (images.float() - mean) / std


def gather_epoch(loader):
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_evaluation_batches_are_ordered_and_normalised():
    split = random_split(200)
    loader = loader_for(split, 64, train=False, cutout=16)
    assert len(loader) == 4
    x, y = gather_epoch(loader)
    assert x.dtype == torch.float32 and x.shape == (200, 3, 32, 32)
    assert torch.equal(y, split.labels)
    assert x.mean(dim=(0, 2, 3)).abs().max() < 1e-3
    assert (x.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3
    torch.testing.assert_close(x, normalised(split, slice(None)))


def test_lengths_and_drop_last():
    split = random_split(100)
    assert len(loader_for(split, 32)) == 4
    assert len(loader_for(split, 32, drop_last=True)) == 3
    sizes = [len(y) for _, y in loader_for(split, 32)]
    assert sizes == [32, 32, 32, 4]
    with pytest.raises(ValueError, match="no batch"):
        loader_for(split, 128, drop_last=True)


def test_training_epoch_is_a_shuffled_cover_with_the_right_shapes():
    split = random_split(100)
    x, y = gather_epoch(loader_for(split, 32, cutout=8))
    assert x.shape == (100, 3, 32, 32) and x.dtype == torch.float32
    assert sorted(y.tolist()) == sorted(split.labels.tolist())
    assert not torch.equal(y, split.labels)


def test_flip_rate_is_one_half_and_flips_are_mirrors():
    split = random_split(2000, size=8)
    loader = loader_for(split, 500, crop_padding=0, cutout=0)
    plan = loader.epoch_plan(0)
    x, _ = gather_epoch(loader)
    originals = normalised(split, plan.indices)
    mirrored = originals.flip(-1)
    flipped = plan.flip.view(-1, 1, 1, 1)
    torch.testing.assert_close(x, torch.where(flipped, mirrored, originals))
    assert 0.45 < plan.flip.float().mean().item() < 0.55


def test_crop_is_a_shift_of_the_zero_padded_image():
    split = random_split(64, size=16)
    loader = loader_for(split, 64, crop_padding=4, flip=False, cutout=0)
    plan = loader.epoch_plan(0)
    x, _ = next(iter(loader))
    zero = normalised(split, None, torch.zeros(1, 3, 1, 1))[0]
    for row in range(8):
        source = split.images[plan.indices[row]]
        padded = torch.nn.functional.pad(source, (4, 4, 4, 4))
        dy, dx = plan.shift_y[row].item(), plan.shift_x[row].item()
        window = padded[:, dy:dy + 16, dx:dx + 16].unsqueeze(0)
        torch.testing.assert_close(x[row], normalised(split, None, window)[0])
    assert plan.shift_y.min() >= 0 and plan.shift_y.max() <= 8
    assert x.shape == (64, 3, 16, 16) and (x == zero).any()


@pytest.mark.parametrize("side, padding", [(32, 4), (16, 2), (8, 1), (64, 8)])
def test_default_crop_padding_is_an_eighth_of_the_side(side, padding):
    loader = loader_for(random_split(16, size=side), 16)
    assert loader.crop_padding == padding
    assert loader_for(random_split(16, size=side), 16, train=False).crop_padding == 0
    with pytest.raises(ValueError, match="crop_padding"):
        loader_for(random_split(16, size=side), 16, crop_padding=-1)


def test_cutout_zeroes_the_clipped_square_around_its_centre():
    split = data.ImageData(torch.full((300, 3, 32, 32), 255, dtype=torch.uint8),
                           torch.zeros(300, dtype=torch.int64))
    loader = data.BatchLoader(split, 300, mean=(0.5,) * 3, std=(0.25,) * 3, train=True,
                              crop_padding=0, flip=False, cutout=16)
    plan = loader.epoch_plan(0)
    x, _ = next(iter(loader))
    assert x.max().item() == pytest.approx(2.0)
    for row in range(300):
        cy, cx = plan.cut_y[row].item(), plan.cut_x[row].item()
        expected = torch.zeros(32, 32, dtype=torch.bool)
        expected[max(cy - 8, 0):cy + 8, max(cx - 8, 0):cx + 8] = True
        assert torch.equal(x[row] == 0, expected.expand(3, 32, 32))
    assert (plan.cut_y.float().mean() - 15.5).abs() < 2.5


def test_batches_are_a_function_of_seed_and_epoch():
    split = random_split(96)
    first = loader_for(split, 32, seed=7, cutout=8)
    second = loader_for(split, 32, seed=7, cutout=8)
    first.set_epoch(3)
    second.set_epoch(3)
    x1, y1 = gather_epoch(first)
    x2, y2 = gather_epoch(second)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    second.set_epoch(4)
    x3, y3 = gather_epoch(second)
    assert not torch.equal(y1, y3) and not torch.equal(x1, x3)
    other_seed = loader_for(split, 32, seed=8, cutout=8)
    other_seed.set_epoch(3)
    assert not torch.equal(gather_epoch(other_seed)[1], y1)


def test_iteration_advances_the_epoch_so_a_resumed_loader_matches():
    split = random_split(64)
    running = loader_for(split, 32, seed=1)
    gather_epoch(running)  # epoch 0
    x_running, _ = gather_epoch(running)  # epoch 1
    resumed = loader_for(split, 32, seed=1)
    resumed.set_epoch(1)
    assert torch.equal(gather_epoch(resumed)[0], x_running)


@pytest.mark.parametrize("train", [True, False])
def test_distributed_shards_are_disjoint_and_cover(train):
    split = random_split(100)
    shards = [loader_for(split, 8, train=train, rank=rank, world_size=3, seed=4)
              for rank in range(3)]
    indices = [shard.epoch_plan(2).indices for shard in shards]
    together = torch.cat(indices)
    assert len(set(together.tolist())) == len(together)  # disjoint
    if train:  # equal shards; the permutation's last 100 % 3 images sit this epoch out
        assert [len(i) for i in indices] == [33, 33, 33]
        assert len({len(shard) for shard in shards}) == 1
    else:
        assert sorted(together.tolist()) == list(range(100))
    for shard in shards:
        shard.set_epoch(2)
    labels = torch.cat([gather_epoch(shard)[1] for shard in shards])
    assert torch.equal(labels.sort().values, split.labels[together].sort().values)

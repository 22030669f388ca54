"""The CUDA code paths (skipped where CUDA is absent): a tiny search (PC-DARTS, approximate
candidates) and retrain on the GPU, and supernet gradients on the GPU against the CPU's (the
CPU-only kernel rewrites must not change what is computed)."""

import copy

import pytest
import torch
import torch.nn as nn

import train
import train_search
from kernels import convgrad
from model_search import Network

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TINY = ["--dataset", "shapes", "--n_train", "64", "--n_test", "32", "--init_channels", "4",
        "--batch_size", "16", "--epochs", "1", "--device", "cuda"]


def test_search_and_retrain_run_on_cuda(tmp_path):
    data = ["--data", str(tmp_path / "data")]
    assert train_search.main([*TINY, *data, "--layers", "2", "--partial_channels", "2",
                              "--multipliers", "trunc6", "--save", str(tmp_path / "s")]) == 0
    assert train.main([*TINY, *data, "--layers", "3", "--genotype", str(tmp_path / "s"),
                       "--save", str(tmp_path / "t")]) == 0


def test_cpu_only_rewrites_are_off_on_cuda():
    x = torch.randn(2, 4, 8, 8, device="cuda").contiguous(memory_format=torch.channels_last)
    weight = torch.randn(4, 4, 1, 1, device="cuda")
    assert not convgrad.subsampled_pointwise(x, weight, (2, 2), (0, 0), (1, 1))


@pytest.fixture
def full_float32(monkeypatch):
    """No TF32 on the GPU, so that its float32 compares with the CPU's."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(previous)


@pytest.mark.parametrize("partial_channels", [1, 2])
def test_supernet_gradients_on_cuda_match_the_cpu(partial_channels, full_float32):
    torch.manual_seed(0)
    cpu = Network(4, 10, 2, nn.CrossEntropyLoss(), input_size=16,
                  partial_channels=partial_channels)
    gpu = copy.deepcopy(cpu).cuda()
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    grads = []
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        model.loss(x.to(device), y.to(device)).backward()
        grads.append([p.grad.cpu() for p in model.weights()])
    for got, expected in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4)

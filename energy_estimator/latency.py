"""Wall-clock inference latency of a model (eval mode, no_grad, median over repeats)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch
import torch.nn as nn


def measure_latency(model: nn.Module, input_size: Sequence[int], batch_size: int = 1,
                    device: str | torch.device = "cpu", warmup: int = 3,
                    repeats: int = 10) -> dict:
    """Median forward time per image and per batch in ms on `device` (the model is moved
    there); CUDA work is synchronised before each clock read. The train/eval flag of every
    module is restored afterwards."""
    if repeats < 1 or warmup < 0 or batch_size < 1:
        raise ValueError("measure_latency needs repeats >= 1, warmup >= 0 and batch_size >= 1")
    device = torch.device(device)
    model = model.to(device)
    modes = {module: module.training for module in model.modules()}
    images = torch.rand(batch_size, *input_size, device=device)
    try:
        model.eval()
        with torch.no_grad():
            batch_ms = _timed_runs(model, images, device, warmup, repeats)
    finally:
        for module, training in modes.items():
            module.training = training
    median_ms = statistics.median(batch_ms)
    return {
        "median_ms_per_image": median_ms / batch_size,
        "median_ms_per_batch": median_ms,
        "min_ms_per_image": min(batch_ms) / batch_size,
        "batch_size": batch_size,
        "repeats": repeats,
        "device": str(device),
    }


def _timed_runs(model, images, device, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        model(images)
    times_ms = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        model(images)
        _synchronize(device)
        times_ms.append((time.perf_counter() - start) * 1e3)
    return times_ms


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)

"""Thread-count control for small kernels."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def single_thread():
    """Run a block on one intra-op thread (small kernels and LAPACK calls gain nothing from more,
    and on a shared machine spinning OpenMP threads slow them down), then restore the count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

"""Quantise an activation once for every approximate convolution that reads it.

In a supernet many approximate convolutions read the same tensor: each conv candidate on each
edge out of a cell state starts with a convolution of that state's (shared) ReLU. Inside
`shared_codes()`, a tensor passed to `share()` keeps what `cached()` computes for it
(its 8-bit codes, its low-rank terms) until the block ends, so that work runs once per state
instead of once per op. Tensors not shared, and everything outside the block, are computed
afresh as before; results are identical either way.
"""

from collections.abc import Callable, Hashable
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import torch

T = TypeVar("T")

_shared: ContextVar[dict | None] = ContextVar("approx_shared_codes", default=None)


@contextmanager
def shared_codes():
    """Within this block, `share()`d tensors keep their quantisation (freed at the end)."""
    token = _shared.set({})
    try:
        yield
    finally:
        _shared.reset(token)


def share(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """Mark `tensor` as read by several approximate convs (no-op outside `shared_codes`)."""
    registry = _shared.get()
    if registry is not None and tensor is not None:
        registry[id(tensor)] = (tensor, tensor._version, {})
    return tensor


def cached(tensor: torch.Tensor, key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()`, remembered under `key` for a shared, unmodified `tensor`."""
    registry = _shared.get()
    entry = None if registry is None else registry.get(id(tensor))
    if entry is None or entry[0] is not tensor or entry[1] != tensor._version:
        return compute()
    results = entry[2]
    if key not in results:
        results[key] = compute()
    return results[key]

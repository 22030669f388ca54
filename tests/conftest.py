"""Shared test fixtures: paths to the reference data beside the checkout, small thread counts."""

from pathlib import Path

import pytest
import torch

# tiny test tensors run faster on one thread than on two (thread start-up dominates)
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_EVOAPPROX = REPO_ROOT.parent / "shared" / "evoapprox"


@pytest.fixture
def evoapprox_dir() -> Path:
    """The EvoApproxLib reference tables shipped beside the repository (skip when absent)."""
    if not (SHARED_EVOAPPROX / "luts").is_dir():
        pytest.skip(f"reference tables not found at {SHARED_EVOAPPROX}")
    return SHARED_EVOAPPROX

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


@pytest.fixture(scope="module")
def approx_darts_v2():
    """DARTS_V2 with the normal cells' convs on the built-in trunc6 (sign-magnitude) table, the
    layers outside the cells' ops in float32."""
    import genotypes

    return genotypes.DARTS_V2._replace(
        normal=[(f"{op}@trunc6" if "conv" in op else op, i) for op, i in genotypes.DARTS_V2.normal],
        fixed="float")


@pytest.fixture(scope="module")
def deployable_net(approx_darts_v2):
    """A tiny NetworkCIFAR of `approx_darts_v2` (C=4, 3 cells) in eval mode whose BatchNorms
    hold non-trivial statistics and affine parameters, as a trained network's do."""
    from model import NetworkCIFAR

    torch.manual_seed(0)
    model = NetworkCIFAR(4, 10, 3, False, approx_darts_v2, channels_last=False)
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.normal_(0, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.normal_(0, 0.2)
    return model.eval()

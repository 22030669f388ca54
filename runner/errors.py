"""The errors a run reports in one line (and the exit code of each, see runner.exit_codes)."""

from __future__ import annotations

import torch


class NonFiniteLossError(ValueError):
    """A NaN or infinite loss; the run stops and keeps its last good checkpoint."""


class RunDirError(ValueError):
    """A run directory that cannot be created, reused or resumed."""


class RunWriteError(Exception):
    """A run file that could not be written (a full disk): the previous version is intact."""


def check_finite(value: torch.Tensor, what: str) -> torch.Tensor:
    if not torch.isfinite(value).all():
        raise NonFiniteLossError(
            f"{what} is {value.item() if value.numel() == 1 else 'non-finite'}; stopping with the "
            f"last good checkpoint kept (lower --learning_rate / --arch_learning_rate, or check "
            f"--energy_weight)")
    return value

"""The emulation settings of a network: one frozen object that each program builds once from
its flags and passes to every constructor that makes emulated convolutions.

- `lut_dir`: the multiplier library, the folder of EvoApproxLib `<name>.bin` truth tables in
  which `approx.load_multiplier` looks names up (None: built-ins and `.bin` paths only).
- `mode`: `lowrank` (the fast emulation: training and search), `exact` (the LUT sum: the
  final evaluation on the real truth tables) or `float` (a plain float32 nn.Conv2d of the same
  shapes and attributes: cost profiling reads those; not for training).
- `rank_cap`, `truncate_low_rank`: the search-time surrogate's rank policy (approx.surrogate)
  for multipliers whose error is not exactly low-rank: "auto" (the smallest rank within 10 %
  of the multiplier's own effect on a reference conv) or at most `rank_cap` low-rank error
  terms; exactly low-rank designs keep their true rank unless `truncate_low_rank`. None: every
  multiplier's default rank (retraining and evaluation).

Every emulated conv keeps the settings it was built with (approx.module); nothing is shared
between networks or kept by the process, so two networks in one process, or two sub-runs of a
sweep, never see each other's settings. After build, `approx.module.emulating(model, ...)`
(the networks' `emulating()` method) is the one way to change them, for that model only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from approx.multiplier import Multiplier
from approx.registry import load_multiplier
from approx.surrogate import AUTO_RANK, FIDELITY_SHARE, check_rank_policy

FLOAT_MODE = "float"
EMULATION_MODES = ("lowrank", "exact", FLOAT_MODE)
NO_RANK_CAP_FLAG = -1  # --approx_rank -1: every multiplier's default rank


def rank_policy_arg(text: str) -> int | str:
    """`--approx_rank`'s value: "auto" or an integer (-1: each multiplier's default rank)."""
    if text.strip().lower() == AUTO_RANK:
        return AUTO_RANK
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--approx_rank {text!r}: give {AUTO_RANK!r} (the smallest rank "
                         f"within {FIDELITY_SHARE:.0%} of each multiplier's effect), a rank cap "
                         f"such as 2, or "
                         f"{NO_RANK_CAP_FLAG} (each multiplier's default rank)") from None


@dataclass(frozen=True)
class Emulation:
    """How the approximate convolutions of one network are emulated (module docstring)."""

    lut_dir: str | None = None
    mode: str = "lowrank"
    rank_cap: int | str | None = None  # a rank, AUTO_RANK or None (module docstring)
    truncate_low_rank: bool = False

    def __post_init__(self):
        if self.lut_dir is not None:
            object.__setattr__(self, "lut_dir", str(Path(self.lut_dir)))
        if self.mode not in EMULATION_MODES:
            raise ValueError(f"mode={self.mode!r}: choose 'lowrank' (fast emulation), 'exact' "
                             f"(LUT sum) or 'float' (float32 conv, for cost profiling)")
        check_rank_policy(self.rank_cap)

    @classmethod
    def for_search(cls, lut_dir=None, approx_rank: int | str | None = None) -> Emulation:
        """The search's settings from its flags: `--lut_dir` and `--approx_rank` ("auto", a
        cap, or -1: each multiplier's default rank; as a number or its text)."""
        if isinstance(approx_rank, str):
            approx_rank = rank_policy_arg(approx_rank)
        return cls(lut_dir, rank_cap=None if approx_rank == NO_RANK_CAP_FLAG else approx_rank)

    def multiplier(self, spec: str | Multiplier) -> Multiplier:
        """`spec` resolved in this library (approx.load_multiplier)."""
        return load_multiplier(spec, lut_dir=self.lut_dir)

    def replace(self, **changes) -> Emulation:
        """A copy with `changes` (Emulation fields) applied, checked."""
        return dataclasses.replace(self, **changes)

    def for_costing(self) -> Emulation:
        """What cost profiling builds with: the same library, float convs (costs depend on
        shapes and the multipliers' figures, not on their emulation)."""
        return Emulation(self.lut_dir, mode=FLOAT_MODE)


DEFAULT_EMULATION = Emulation()  # built-in multipliers, fast emulation at full rank

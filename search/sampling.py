"""How a search forward sees the multiplier choice of a conv op: the averaged mixture, or one
sampled multiplier (`--multiplier_sampling mixture|gumbel`).

`mixture` (the first AxDARTS searches): every conv computes sum_m p_m emul_m(x, W), p the
softmax of its multiplier logits, so the weights train against an average of multipliers the
derived network never runs. `gumbel` (as FBNet and ProxylessNAS sample paths): each training
forward draws one multiplier per (edge, conv op) from Gumbel-softmax(logits / tau) and uses it
as a hard one-hot (straight-through: the forward sees exactly one multiplier, the backward the
gradient of the soft sample), so the weights train against single multipliers, as the derived
cell runs them, and the mixed convolution runs only the drawn member (approx.mixed_conv). An
evaluation forward (supernet in eval mode) takes each row's strongest multiplier, what the
derivation keeps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MULTIPLIER_SAMPLINGS = ("mixture", "gumbel")
GUMBEL_TAU = 1.0  # FBNet anneals 5 -> ~0.5; with a hard forward tau only shapes the gradient


def check_sampling(name: str) -> str:
    if name not in MULTIPLIER_SAMPLINGS:
        raise ValueError(f"multiplier sampling '{name}': choose one of "
                         f"{', '.join(MULTIPLIER_SAMPLINGS)}")
    return name


def straight_through_gumbel(logits: torch.Tensor, tau: float = GUMBEL_TAU) -> torch.Tensor:
    """A hard one-hot sample per row of `logits` (last axis), carrying the soft sample's
    gradient. The zeros are exact (0 - s + s), so a consumer may skip the unused members."""
    soft = F.softmax((logits - torch.empty_like(logits).exponential_().log()) / tau, dim=-1)
    hard = F.one_hot(soft.argmax(-1), logits.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft


def strongest(logits: torch.Tensor) -> torch.Tensor:
    """The one-hot of each row's largest logit (no gradient)."""
    return F.one_hot(logits.detach().argmax(-1), logits.shape[-1]).to(logits.dtype)


def sampled(logits: torch.Tensor, training: bool, tau: float = GUMBEL_TAU) -> torch.Tensor:
    """A training forward's draw, an evaluation forward's strongest choice."""
    return straight_through_gumbel(logits, tau) if training else strongest(logits)

"""Rank agreement of two scorings of the same items: Kendall's tau-b (ties in either scoring
reduce the denominator, as scipy.stats.kendalltau's default does)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """tau-b of paired scores; nan when fewer than two items or one scoring is all ties."""
    if len(x) != len(y):
        raise ValueError(f"kendall_tau: {len(x)} and {len(y)} scores; pair them one to one")
    concordant = discordant = only_x_tied = only_y_tied = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx = (x[i] > x[j]) - (x[i] < x[j])
            dy = (y[i] > y[j]) - (y[i] < y[j])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                only_x_tied += 1
            elif dy == 0:
                only_y_tied += 1
            elif dx == dy:
                concordant += 1
            else:
                discordant += 1
    untied = concordant + discordant
    denominator = math.sqrt((untied + only_x_tied) * (untied + only_y_tied))
    return (concordant - discordant) / denominator if denominator else float("nan")

"""Pareto front and hypervolume of (energy, accuracy) points, in pure Python.

Objectives: minimise energy per image (uJ), maximise accuracy (fraction in [0, 1]).
A point dominates another when it is no worse in both objectives and strictly better in one;
the front is the set of points no other point dominates (duplicates stay on it together).

Hypervolume: the area of the (energy, accuracy) plane that the points dominate, bounded by a
reference point (`ref_energy_uj`, `ref_acc`). By default the reference is energy =
`REF_ENERGY_FACTOR` x the largest energy among the points and accuracy = 0, so every point
counts and a front that reaches lower energy or higher accuracy gets a larger area. Compare
hypervolumes of two sweeps only under the same reference point (pass it explicitly).
"""

from __future__ import annotations

from collections.abc import Sequence

REF_ENERGY_FACTOR = 1.1
REF_ACC = 0.0

Point = tuple[float, float]  # (energy_uj, accuracy)


def dominates(a: Point, b: Point) -> bool:
    """True when `a` is at least as good as `b` in both objectives and better in one."""
    no_worse = a[0] <= b[0] and a[1] >= b[1]
    return no_worse and (a[0] < b[0] or a[1] > b[1])


def pareto_mask(points: Sequence[Point]) -> list[bool]:
    """For each point, whether it is on the front (non-dominated). Sort-and-scan, O(n log n)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    mask = [False] * len(points)
    best_acc = float("-inf")
    best_energy = None
    for i in order:
        energy, acc = points[i]
        if acc > best_acc:
            mask[i] = True
            best_acc, best_energy = acc, energy
        elif acc == best_acc and energy == best_energy:
            mask[i] = True  # an exact duplicate of a front point
    return mask


def reference_point(points: Sequence[Point], factor: float = REF_ENERGY_FACTOR) -> Point:
    """The default reference: (factor x max energy, accuracy 0)."""
    if not points:
        raise ValueError("no points: the reference point needs at least one")
    return factor * max(energy for energy, _ in points), REF_ACC


def hypervolume(points: Sequence[Point], reference: Point) -> float:
    """Area dominated by `points` inside the box from the reference point (units: uJ x acc).

    Points at or beyond the reference (energy >= ref energy or accuracy <= ref accuracy)
    add nothing. Sweep from low to high energy, keeping the best accuracy seen so far.
    """
    ref_energy, ref_acc = reference
    inside = sorted((e, a) for e, a in points if e < ref_energy and a > ref_acc)
    area, best_acc = 0.0, ref_acc
    for k, (energy, acc) in enumerate(inside):
        best_acc = max(best_acc, acc)
        next_energy = inside[k + 1][0] if k + 1 < len(inside) else ref_energy
        area += (next_energy - energy) * (best_acc - ref_acc)
    return area


def front_summary(points: Sequence[Point], reference: Point | None = None) -> dict:
    """Front mask, reference point, hypervolume and its share of the reference box."""
    if not points:
        return {"pareto": [], "reference": None, "hypervolume": None,
                "hypervolume_normalised": None}
    reference = reference or reference_point(points)
    volume = hypervolume(points, reference)
    box = reference[0] * (1.0 - reference[1])
    return {"pareto": pareto_mask(points), "reference": reference, "hypervolume": volume,
            "hypervolume_normalised": volume / box if box > 0 else None}

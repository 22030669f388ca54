"""The benchmark's two PNGs: the fronts (test accuracy, mean with min-max bars over seeds,
against each energy axis, each group's Pareto staircase) and the hypervolume intervals (per
axis, each front's hypervolume with its bootstrap 90 % interval)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from quality.summary import AXES  # noqa: E402
from tradeoff.pareto import pareto_mask  # noqa: E402

STYLES = {"searched": ("o", "tab:blue"), "random": ("^", "tab:gray"),
          "uniform": ("s", "tab:orange"), "nsga2": ("D", "tab:green"), "tpe": ("P", "tab:red")}
LABELS = {"total": "total deployed energy per image (µJ)",
          "multiplier": "multiplier energy per image (µJ)"}


def fronts_figure(summary: dict, path: Path) -> None:
    figure, axes = plt.subplots(1, len(AXES), figsize=(12, 4.6))
    for axis, (name, key) in zip(axes, AXES.items(), strict=True):
        for group, (marker, color) in STYLES.items():
            rows = [r for r in summary["genotypes"] if r["group"] == group]
            if not rows:
                continue
            x, y = [r[key] for r in rows], [r["test_acc_mean"] for r in rows]
            axis.errorbar(x, y, yerr=[[r["test_acc_mean"] - r["test_acc_min"] for r in rows],
                                      [r["test_acc_max"] - r["test_acc_mean"] for r in rows]],
                          fmt=marker, color=color, capsize=3, label=group, alpha=0.8)
            points = list(zip(x, y, strict=True))
            front = sorted(p for p, on in zip(points, pareto_mask(points), strict=True) if on)
            if front:
                axis.step(*zip(*front, strict=True), where="post", color=color, linewidth=1)
        axis.set_xlabel(LABELS[name])
        axis.set_ylabel("test accuracy (mean; bars: min-max over seeds)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=130)
    plt.close(figure)


def intervals_figure(summary: dict, path: Path) -> None:
    figure, axes = plt.subplots(1, len(AXES), figsize=(10, 3.8))
    for axis, name in zip(axes, AXES, strict=True):
        fronts = {g: f for g, f in summary["axes"][name]["fronts"].items()
                  if f["hypervolume"] is not None}
        for k, (group, front) in enumerate(fronts.items()):
            low, high = front["hypervolume_ci90"]
            value = front["hypervolume"]
            axis.errorbar([k], [value], yerr=[[value - low], [high - value]],
                          fmt=STYLES[group][0], color=STYLES[group][1], capsize=5)
        axis.set_xticks(range(len(fronts)), list(fronts))
        axis.set_xlim(-0.5, max(len(fronts), 1) - 0.5)
        reference = summary["axes"][name]["reference"]
        axis.set_title(f"{name}: hypervolume, 90 % bootstrap interval\n"
                       f"reference ({reference[0]:.4g} µJ, acc 0)" if reference else name,
                       fontsize=9)
        axis.set_ylabel("hypervolume (µJ x accuracy)")
        axis.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    figure.savefig(path, dpi=130)
    plt.close(figure)

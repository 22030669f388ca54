"""Figures of a trade-off study: accuracy vs energy with the Pareto front and the baselines,
training curves, the evolution of a search's softmaxed alphas, and the share of each
multiplier among the conv ops of the genotypes. Matplotlib (Agg), returned as figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import topology  # noqa: E402
from reporting import drawings  # noqa: E402
from tradeoff.table import KIND_ORDER  # noqa: E402

MARKERS = {"searched": "o", "exact": "s", "random": "^", "published": "D", "other": "P"}
COLORS = {"searched": "tab:blue", "exact": "tab:green", "random": "tab:gray",
          "published": "tab:red", "other": "tab:purple", "search-only": "tab:olive"}


def scored(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("test_acc") is not None and r.get("energy_uj") is not None]


def tradeoff_figure(rows: list[dict], front: dict):
    """Test accuracy (real multipliers) vs energy per image; front as a dashed staircase."""
    figure, axis = plt.subplots(figsize=(7.5, 5))
    points = scored(rows)
    for kind in KIND_ORDER:
        group = [r for r in points if r["kind"] == kind]
        if group:
            axis.scatter([r["energy_uj"] for r in group], [r["test_acc"] for r in group],
                         marker=MARKERS.get(kind, "o"), color=COLORS[kind], s=40, label=kind,
                         zorder=3)
    on_front = sorted((r["energy_uj"], r["test_acc"]) for r in points if r["pareto"])
    if on_front:
        energies, accs = zip(*on_front, strict=True)
        axis.step(energies, accs, where="post", linestyle="--", color="black", linewidth=1,
                  label="Pareto front", zorder=2)
        axis.scatter(energies, accs, s=140, facecolors="none", edgecolors="black", zorder=4)
    for r in points:
        axis.annotate(r["label"], (r["energy_uj"], r["test_acc"]), fontsize=6,
                      xytext=(4, 3), textcoords="offset points")
    axis.set_xlabel("energy per image (µJ, arithmetic + memory)")
    axis.set_ylabel("test accuracy (real multipliers)")
    axis.set_title(_front_title(front), fontsize=9)
    axis.grid(alpha=0.3)
    if points:
        axis.legend(fontsize=7, loc="best")
    return figure


def _front_title(front: dict) -> str:
    if front.get("hypervolume") is None:
        return "accuracy vs energy (no retrained runs yet)"
    return (f"accuracy vs energy; hypervolume {front['hypervolume']:.4g} uJ x acc "
            f"({front['hypervolume_normalised']:.1%} of the box) vs reference "
            f"({front['reference_energy_uj']:.4g} uJ, acc {front['reference_acc']:g})")


def curves_figure(rows: list[dict], runs: list) -> plt.Figure:
    """Left: retrain test accuracy per epoch; right: search validation accuracy per epoch."""
    kinds = {row["run_dir"]: row["kind"] for row in rows}
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.get_cmap("tab10").colors
    for index, run in enumerate(runs):
        axis, key = (left, "test_acc") if run.kind == "train" else (right, "val_acc")
        epochs = [r["epoch"] for r in run.history if r.get(key) is not None]
        values = [r[key] for r in run.history if r.get(key) is not None]
        kind = kinds.get(str(run.path), "searched")
        axis.plot(epochs, values, marker=MARKERS.get(kind, "o"), markersize=4,
                  color=colors[index % len(colors)], label=run.name, alpha=0.85,
                  linestyle="-" if kind in ("searched", "search-only") else ":")
    for axis, title in ((left, "retrain: test accuracy"), (right, "search: validation accuracy")):
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("epoch")
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=6, ncol=2)
    return figure


def alphas_figure(name: str, candidates: list[str], alphas: dict[str, np.ndarray],
                  note: str = ""):
    """softmax(alpha) per edge over epochs: `alphas[cell]` is [epochs, edges, candidates].
    Grid rows are nodes, columns the node's inputs; normal cell left, reduce cell right."""
    steps = topology.steps_for_edges(np.asarray(alphas["normal"]).shape[1])
    figure = plt.figure(figsize=(20, 8))
    grid = figure.add_gridspec(steps, 2 * (steps + 1), hspace=0.55, wspace=0.15)
    labels = drawings.edge_labels(steps)
    colors = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(candidates), 2)))
    for column_offset, cell in ((0, "normal"), (steps + 1, "reduce")):
        table = np.asarray(alphas[cell])
        epochs = np.arange(1, table.shape[0] + 1)
        low, high = float(table.min()), float(table.max())
        pad = max(high - low, 1e-3) * 0.1
        for edge, (node, source) in enumerate(topology.edges(steps)):
            axis = figure.add_subplot(grid[node, column_offset + source])
            for k, candidate in enumerate(candidates):
                axis.plot(epochs, table[:, edge, k], color=colors[k], marker=".",
                          linestyle="--" if candidate == "none" else "-", label=candidate)
            axis.set_title(f"{cell} {labels[edge]}", fontsize=7)
            axis.set_ylim(low - pad, high + pad)
            axis.set_yticks([low, high], [f"{low:.3f}", f"{high:.3f}"])
            axis.set_xticks(epochs if len(epochs) <= 4 else [1, epochs[-1]])
            axis.tick_params(labelsize=5, length=2)
    handles, names = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="lower center", ncol=min(len(candidates), 8), fontsize=7)
    figure.suptitle(f"{name}: softmax(alpha) per edge over epochs {note}", fontsize=10)
    return figure


def shares_figure(rows: list[dict]):
    """Stacked bars: share of float32 / exact / each approximate multiplier among conv ops."""
    shown = [row for row in rows if row.get("conv_ops")]
    keys = sorted({k for row in shown for k in row if k.startswith("share_")},
                  key=lambda k: (k != "share_float32", k != "share_exact", k))
    figure, axis = plt.subplots(figsize=(7, 0.5 + 0.32 * max(len(shown), 1)))
    left = np.zeros(len(shown))
    colors = plt.get_cmap("Set2")(np.linspace(0, 1, max(len(keys), 2)))
    for key, color in zip(keys, colors, strict=False):
        share = np.array([row.get(key, 0.0) for row in shown])
        axis.barh(range(len(shown)), share, left=left, color=color,
                  label=key.removeprefix("share_"))
        left += share
    axis.set_yticks(range(len(shown)), [f"{r['name']} ({r['conv_ops']})" for r in shown],
                    fontsize=7)
    axis.invert_yaxis()
    axis.set_xlim(0, 1)
    axis.set_xlabel("share of conv ops (count in brackets)")
    axis.set_title("arithmetic of the conv ops per genotype", fontsize=10)
    if keys:
        axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return figure

"""The energy breakdown as a figure: per layer group (or layer), stacked bars of the four parts
(multipliers, other arithmetic, on-chip traffic, DRAM traffic), and the network's shares."""

from __future__ import annotations

from pathlib import Path

from energy_estimator.report import BREAKDOWN_FIELDS, PART_LABELS, Report, group_rows

COLORS = ("#d62728", "#ff9896", "#1f77b4", "#7f7f7f")


def plot_breakdown(report: Report, path: str | Path, depth: int | None = 2,
                   title: str = "") -> Path:
    """Write a PNG of `report`'s energy breakdown, layers grouped by `depth` name parts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [layer.to_dict() for layer in report.layers]
    rows = group_rows(rows, depth) if depth else rows
    names = [row["name"] for row in rows]
    figure, (bars, shares) = plt.subplots(1, 2, figsize=(12, 0.3 * len(rows) + 2.5),
                                          gridspec_kw={"width_ratios": [3, 1]})
    left = [0.0] * len(rows)
    for key, color in zip(BREAKDOWN_FIELDS, COLORS, strict=True):
        values = [row[key] for row in rows]
        bars.barh(names, values, left=left, color=color, label=PART_LABELS[key])
        left = [a + b for a, b in zip(left, values, strict=True)]
    bars.invert_yaxis()
    bars.set_xlabel("energy per image (µJ)")
    bars.legend(loc="lower right", fontsize="small")
    bars.set_title(title or f"energy by layer on {report.accelerator}")
    totals = [getattr(report, key) for key in BREAKDOWN_FIELDS]
    shares.bar(range(4), [100 * report.share(key) for key in BREAKDOWN_FIELDS], color=COLORS)
    shares.set_xticks(range(4), [PART_LABELS[key] for key in BREAKDOWN_FIELDS], rotation=30,
                      ha="right", fontsize="small")
    shares.set_ylabel("share of the network's energy (%)")
    shares.set_title(f"total {sum(totals):.2f} µJ")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)

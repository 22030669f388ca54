"""The analysis of a directory of runs, shared by `sweep.py` and `analyze.py`: read every
finished run below a root, build the table (CSV + JSON) with the Pareto front, draw the figures
to `<out>/plots/*.png` and put them, the table and the hypervolume into TensorBoard under
`<out>/summary`. Runs nothing."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from runner.rundir import CHECKPOINT_FILE
from tradeoff import pareto, plots
from tradeoff.records import Run, find_runs
from tradeoff.table import RESULT_FIELDS, build_rows, mark_front, markdown, write_table

PLOTS_DIR = "plots"
SUMMARY_DIR = "summary"


def search_alphas(run: Run) -> tuple[dict[str, np.ndarray], str] | None:
    """Softmaxed alphas [epochs, edges, candidates] per cell: from history.json's per-epoch
    'alphas' when recorded, else the final alphas in the checkpoint (one point). None for a
    backbone search (no cells; its alpha heatmaps are in its TensorBoard log)."""
    if run.record.get("genotype", {}).get("kind") is not None:
        return None
    per_epoch = [record.get("alphas") for record in run.history]
    if per_epoch and all(per_epoch):
        tables = [a if isinstance(a, dict) else dict(zip(("normal", "reduce"), a, strict=True))
                  for a in per_epoch]
        return {cell: np.array([t[cell] for t in tables]) for cell in ("normal", "reduce")}, ""
    final = checkpoint_alphas(run.path / CHECKPOINT_FILE)
    note = "(final epoch only: history.json holds no per-epoch alphas)"
    return (final, note) if final else None


def checkpoint_alphas(path: Path) -> dict[str, np.ndarray] | None:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["model"]
        return {cell: torch.softmax(state[f"alphas_{cell}"].float(), dim=-1).numpy()[None]
                for cell in ("normal", "reduce")}
    except (OSError, KeyError, RuntimeError, TypeError):
        return None


def draw(rows: list[dict], front: dict, runs: list[Run]) -> dict:
    """All figures by file stem."""
    figures = {"tradeoff": plots.tradeoff_figure(rows, front),
               "curves": plots.curves_figure(rows, runs),
               "multipliers": plots.shares_figure(rows)}
    for run in runs:
        alphas = search_alphas(run) if run.kind == "search" else None
        if alphas:
            candidates = run.record.get("candidates") or run.config.get("candidates")
            figures[f"alphas-{run.name}"] = plots.alphas_figure(run.name, candidates, *alphas)
    return figures


def save_figures(figures: dict, plot_dir: Path) -> dict[str, np.ndarray]:
    """PNG files, then the images as arrays (the figures are closed)."""
    plot_dir.mkdir(parents=True, exist_ok=True)
    images = {}
    for stem, figure in figures.items():
        path = plot_dir / f"{stem}.png"
        figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(figure)
        images[stem] = (plt.imread(path)[..., :3] * 255).astype(np.uint8)
    return images


def to_tensorboard(summary_dir: Path, images: dict, table_markdown: str, front: dict,
                   rows: list[dict]) -> None:
    """One fresh event file under `summary_dir` (older ones from earlier analyses removed),
    with every run's settings and final metrics in the HParams dashboard."""
    from torch.utils.tensorboard import SummaryWriter

    for old in summary_dir.glob("events.out.tfevents.*"):
        old.unlink()
    shutil.rmtree(summary_dir / "hparams", ignore_errors=True)
    with SummaryWriter(log_dir=str(summary_dir)) as writer:
        for stem, image in images.items():
            writer.add_image(f"tradeoff/{stem}", image, 0, dataformats="HWC")
        writer.add_text("tradeoff/table", table_markdown, 0)
        if front.get("hypervolume") is not None:
            writer.add_scalar("tradeoff/hypervolume", front["hypervolume"], 0)
            writer.add_scalar("tradeoff/hypervolume_normalised",
                              front["hypervolume_normalised"], 0)
        for row in rows:
            hparams, metrics = hparams_of(row)
            if metrics:
                writer.add_hparams(hparams, metrics, run_name=f"hparams/{row['name']}")


def hparams_of(row: dict) -> tuple[dict, dict]:
    """A table row as TensorBoard HParams: its settings (scalar or text fields) and its
    final metrics (the numeric result fields)."""
    metrics = {f"final/{key}": float(row[key]) for key in RESULT_FIELDS
               if isinstance(row.get(key), int | float) and not isinstance(row.get(key), bool)}
    hparams = {key: value for key, value in row.items()
               if key not in RESULT_FIELDS and key != "pareto"
               and isinstance(value, bool | int | float | str)}
    return hparams, metrics


def analyze(root: str | Path, out_dir: str | Path | None = None, reference=None,
            tensorboard: bool = True) -> dict:
    """Table, front and figures for every finished run below `root` (written to `out_dir`,
    default `root`). `reference`: (energy_uj, acc) for the hypervolume, default automatic."""
    root = Path(root)
    out_dir = Path(out_dir) if out_dir else root
    runs = find_runs(root)
    rows = build_rows(runs)
    front = mark_front(rows, reference)
    csv_path, json_path = write_table(rows, front, out_dir)
    images = save_figures(draw(rows, front, runs), out_dir / PLOTS_DIR)
    table_markdown = markdown(rows)
    if tensorboard:
        to_tensorboard(out_dir / SUMMARY_DIR, images, table_markdown, front, rows)
    return {"rows": rows, "front": front, "csv": csv_path, "json": json_path,
            "plots": sorted(str(out_dir / PLOTS_DIR / f"{s}.png") for s in images),
            "markdown": table_markdown, "runs": len(runs)}


def add_reference_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ref_energy_uj", type=float, default=None,
                        help=f"hypervolume reference energy (default: "
                             f"{pareto.REF_ENERGY_FACTOR} x the largest energy in the table); "
                             f"fix it to compare sweeps")
    parser.add_argument("--ref_acc", type=float, default=pareto.REF_ACC,
                        help="hypervolume reference accuracy (default: %(default)s)")


def reference_of(args) -> tuple[float, float] | None:
    return None if args.ref_energy_uj is None else (args.ref_energy_uj, args.ref_acc)


def print_summary(result: dict) -> None:
    front = result["front"]
    print(result["markdown"])
    if front["hypervolume"] is not None:
        print(f"Pareto front: {', '.join(front['front'])}; hypervolume "
              f"{front['hypervolume']:.4g} uJ x acc "
              f"({front['hypervolume_normalised']:.1%} of the box) "
              f"vs reference ({front['reference_energy_uj']:.4g} uJ, acc "
              f"{front['reference_acc']:g})")
    print(f"{result['runs']} runs read; table: {result['csv']}, {result['json']}; plots: "
          f"{', '.join(result['plots'])}")

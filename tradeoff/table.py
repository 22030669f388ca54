"""The trade-off table: one row per retrained genotype (searched, all-exact, random, published)
plus searches not retrained yet, with accuracy, energy per image (arithmetic + memory), params,
MACs, latency, the STL verdict, the share of each multiplier among conv ops, and the Pareto
front (maximise `test_acc`, minimise `energy_uj`) with its hypervolume. Written as CSV + JSON."""

from __future__ import annotations

import csv
from pathlib import Path

import backbones
import genotypes
from runner.files import atomic_write_json, json_float
from tradeoff import pareto
from tradeoff.records import Run, source_record

TABLE_CSV = "tradeoff.csv"
TABLE_JSON = "tradeoff.json"
KIND_ORDER = ("searched", "exact", "random", "published", "other", "search-only")
FLOAT_OPS = "float32"
ROW_FIELDS = (
    "name", "kind", "label", "test_acc", "energy_uj", "pareto", "energy_arith_uj",
    "energy_memory_uj", "params", "macs", "latency_ms_per_image", "stl_satisfied",
    "stl_robustness", "test_acc_surrogate", "test_acc_exact_arith", "epochs", "train_s",
    "energy_weight", "energy_budget_uj", "multipliers", "search_val_acc", "search_energy_uj",
    "conv_ops", "genotype_source", "run_dir", "search_dir",
)
RESULT_FIELDS = ("test_acc", "energy_uj", "energy_arith_uj", "energy_memory_uj", "params", "macs",
                 "latency_ms_per_image", "test_acc_surrogate", "test_acc_exact_arith", "epochs",
                 "train_s", "genotype_source")


def conv_multiplier(op_name: str) -> str | None:
    """The arithmetic of a conv op ('float32' without '@'), None for a non-conv op."""
    base, multiplier = genotypes.split_op_name(op_name)
    if base not in genotypes.CONV_PRIMITIVES:
        return None
    return multiplier or FLOAT_OPS


def multiplier_shares(genotype: dict) -> tuple[int, dict[str, float]]:
    """(number of conv ops, share of each arithmetic among them) over both cells (a backbone:
    over its convs)."""
    ops = [op for cell in ("normal", "reduce") for op, _ in genotype.get(cell, [])]
    kinds = [m for m in map(conv_multiplier, ops) if m is not None]
    if backbones.is_backbone_dict(genotype):
        kinds = [FLOAT_OPS if m == backbones.FLOAT else m for m in genotype["multipliers"]]
    return len(kinds), {m: kinds.count(m) / len(kinds) for m in dict.fromkeys(kinds)}


def search_fields(record: dict) -> dict:
    """Energy settings and search outcome from a search's genotype.json record."""
    settings = record.get("settings") or {}
    return {"energy_weight": settings.get("energy_weight"),
            "energy_budget_uj": record.get("energy_budget_uj", settings.get("energy_budget")),
            "multipliers": settings.get("multipliers"),
            "budget_control": settings.get("budget_control"),
            "search_val_acc": record.get("val_acc"), "search_energy_uj": record.get("energy_uj")}


def search_label(fields: dict) -> str:
    """'λ=0.5' or 'B=12uJ' (budget-controlled), with the multiplier set in brackets."""
    budget, weight = fields.get("energy_budget_uj"), fields.get("energy_weight")
    text = f"B={budget:g}uJ" if budget is not None else f"λ={weight:g}" if weight is not None \
        else "λ=?"
    return f"{text} [{fields.get('multipliers') or 'float'}]"


def train_row(run: Run, searches: dict[Path, Run]) -> dict:
    """The table row of one retrain run, labelled by where its genotype came from; a sweep
    baseline names its search as a sibling directory ('search')."""
    results, source = run.record, source_record(run)
    stl_verdict = results.get("stl") or {}
    row = {"name": run.name, **{key: results.get(key) for key in RESULT_FIELDS},
           "stl_satisfied": stl_verdict.get("satisfied"),
           "stl_robustness": stl_verdict.get("robustness"), "run_dir": str(run.path)}
    baseline = source.get("baseline")
    if "settings" in source:
        fields = search_fields(source)
        row.update(kind="searched", label=search_label(fields), **fields,
                   search_dir=str(Path(source["path"]).resolve().parent))
    elif baseline:
        row.update(kind=baseline.get("kind", "other"), label=baseline.get("label", run.name))
        search = searches.get(run.path.parent / str(baseline.get("search")))
        if search is not None:
            row.update(search_fields(search.record), search_dir=str(search.path))
    else:
        published = genotypes.published(str(results.get("genotype_source"))) is not None
        row.update(kind="published" if published else "other",
                   label=results.get("genotype_source") if published else run.name)
    return _with_shares(row, results["genotype"])


def search_only_row(run: Run) -> dict:
    fields = search_fields(run.record)
    row = {"name": run.name, "kind": "search-only", "label": search_label(fields), **fields,
           "epochs": run.record.get("epochs"), "run_dir": str(run.path),
           "search_dir": str(run.path), "pareto": False}
    return _with_shares(row, run.record["genotype"])


def _with_shares(row: dict, genotype: dict) -> dict:
    row["conv_ops"], shares = multiplier_shares(genotype)
    row.update({f"share_{name}": share for name, share in shares.items()})
    return row


def build_rows(runs: list[Run]) -> list[dict]:
    """Rows for every retrain, then for every search that no retrain used; kind order."""
    searches = {run.path: run for run in runs if run.kind == "search"}
    rows = [train_row(run, searches) for run in runs if run.kind == "train"]
    used = {row["search_dir"] for row in rows if row["kind"] == "searched"}
    rows += [search_only_row(run) for run in searches.values() if str(run.path) not in used]
    return sorted(rows, key=lambda row: (KIND_ORDER.index(row["kind"]), row["name"]))


def mark_front(rows: list[dict], reference=None) -> dict:
    """Set `pareto` on every row (rows without accuracy or energy are never on it) and return
    the front's summary: reference point, hypervolume, names on the front."""
    scored = [row for row in rows if row.get("test_acc") is not None
              and row.get("energy_uj") is not None]
    points = [(float(row["energy_uj"]), float(row["test_acc"])) for row in scored]
    summary = pareto.front_summary(points, reference)
    for row in rows:
        row["pareto"] = False
    for row, on_front in zip(scored, summary["pareto"], strict=True):
        row["pareto"] = on_front
    ref = summary["reference"]
    return {"objectives": "maximise test_acc, minimise energy_uj",
            "reference_energy_uj": ref[0] if ref else None,
            "reference_acc": ref[1] if ref else None,
            "reference_rule": f"energy = {pareto.REF_ENERGY_FACTOR} x max energy_uj, acc = "
                              f"{pareto.REF_ACC}, unless given",
            "hypervolume": summary["hypervolume"],
            "hypervolume_normalised": summary["hypervolume_normalised"],
            "front": [row["name"] for row in scored if row["pareto"]]}


def columns(rows: list[dict]) -> list[str]:
    """The fixed fields, then one `share_<arithmetic>` column per arithmetic seen."""
    shares = {key for row in rows for key in row if key.startswith("share_")}
    first = [f"share_{FLOAT_OPS}", "share_exact"]
    ordered = [k for k in first if k in shares] + sorted(shares - set(first))
    return [*ROW_FIELDS, *ordered]


def write_table(rows: list[dict], front: dict, out_dir: Path) -> tuple[Path, Path]:
    """`tradeoff.csv` (one row per run; share columns 0 where absent) and `tradeoff.json`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fields = columns(rows)
    full = [{key: row.get(key, 0.0 if key.startswith("share_") else None) for key in fields}
            for row in rows]
    csv_path, json_path = out_dir / TABLE_CSV, out_dir / TABLE_JSON
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows([{k: "" if v is None else v for k, v in row.items()} for row in full])
    atomic_write_json(json_path, {"columns": fields, "rows": full, "pareto": front,
                                  "seed_groups": seed_groups(rows)})
    return csv_path, json_path


def seed_groups(rows: list[dict]) -> list[dict]:
    """Runs of one genotype under several seeds (`<name>-seed<k>`, sweep --retrain_seeds):
    test accuracy mean, sample standard deviation, min and max, and the energy."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        base, sep, seed = row["name"].rpartition("-seed")
        if sep and seed.isdigit() and row.get("test_acc") is not None:
            groups.setdefault(base, []).append(row)
    summary = []
    for name, members in groups.items():
        accs = [float(m["test_acc"]) for m in members]
        mean = sum(accs) / len(accs)
        spread = (sum((a - mean) ** 2 for a in accs) / max(len(accs) - 1, 1)) ** 0.5
        summary.append({"name": name, "kind": members[0]["kind"], "seeds": len(accs),
                        "test_acc_mean": mean, "test_acc_std": spread,
                        "test_acc_min": min(accs), "test_acc_max": max(accs),
                        "energy_uj": members[0].get("energy_uj")})
    return summary


def markdown(rows: list[dict]) -> str:
    """A compact markdown table of the retrained rows (for the README and TensorBoard)."""
    header = ("| run | kind | test acc | energy uJ/img (arith + mem) | params | MACs | "
              "latency ms | STL | Pareto |\n|---|---|---|---|---|---|---|---|---|")
    lines = [header]
    for row in rows:
        if row.get("test_acc") is None:
            continue
        lines.append(
            f"| {row['name']} | {row['kind']} | {row['test_acc']:.3f} | {row['energy_uj']:.3f}"
            f" ({row['energy_arith_uj']:.3f} + {row['energy_memory_uj']:.3f}) | "
            f"{row['params'] / 1e3:.1f} k | {row['macs'] / 1e6:.2f} M | "
            f"{row['latency_ms_per_image']:.2f} | {_verdict(row)} | "
            f"{'**yes**' if row['pareto'] else ''} |")
    return "\n".join(lines)


def _verdict(row: dict) -> str:
    if row.get("stl_satisfied") is None:
        return ""
    robustness = json_float(row["stl_robustness"])  # "inf" when only empty windows decide
    margin = "n/a" if robustness is None else f"{robustness:+.3g}"
    return f"{'ok' if row['stl_satisfied'] else 'violated'} ({margin})"

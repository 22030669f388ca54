"""Benchmark: does a search put its multipliers where the layers tolerate them? (issues 24.5,
27.2)

Takes a searched genotype (its conv ops on multipliers, `sep_conv_3x3@drum4`) and its twin
with every multiplier exact (same cells, `op@exact`, exact fixed layers). Retrains both with
`train.py`'s recipe (resumable run directories under `--out`), then measures on the twin's
weights (`python -m sensitivity TWIN --compare SEARCHED`): each layer group's accuracy drop
and energy saved on each of the search's multipliers, the greedy per-group assignment within
`--tolerance` (after ALWANN), the uniform assignments, and the search's own assignment on the
same weights. Prints ONE JSON line: both retrains' test accuracies and energies, and per group
the search's multiplier, that multiplier's measured single-group drop, the cheapest
multiplier within the tolerance alone, and the greedy choice.

Split the two retrains over two processes (one thread each), then summarise:

    OMP_NUM_THREADS=1 .venv/bin/python bench/multiplier_where.py --genotype G --only searched &
    OMP_NUM_THREADS=1 .venv/bin/python bench/multiplier_where.py --genotype G --only twin; wait
    .venv/bin/python bench/multiplier_where.py --genotype G
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import genotypes  # noqa: E402
import train  # noqa: E402
from defaults import SHAPES_MULTIPLIERS  # noqa: E402
from quality.runs import run_program  # noqa: E402
from reporting.retrain_report import RESULTS_FILE  # noqa: E402
from runner.errors import exit_status  # noqa: E402
from search import runs as search_runs  # noqa: E402
from sensitivity.__main__ import main as sensitivity_main  # noqa: E402
from sensitivity.measure import RECALIBRATION_BATCHES  # noqa: E402

RUNS = ("searched", "twin")
EXACT = "exact"


def twin_of(genotype: genotypes.Genotype) -> genotypes.Genotype:
    """The genotype with every multiplier of its conv ops and fixed layers on `exact`."""
    def cell(edges):
        return [(f"{genotypes.split_op_name(op)[0]}{genotypes.MULTIPLIER_SEPARATOR}{EXACT}"
                 if genotypes.split_op_name(op)[1] else op, i) for op, i in edges]
    return genotype._replace(normal=cell(genotype.normal), reduce=cell(genotype.reduce),
                             fixed=EXACT)


def retrain(out: Path, name: str, genotype_file: Path, args) -> None:
    argv = ["--genotype", str(genotype_file), "--seed", str(args.seed), "--data",
            str(out / "data"), *args.train_args.split()]
    run_program(train.main, argv, out / name, RESULTS_FILE)


def group_rows(document: dict, tolerance: float) -> list[dict]:
    """Per group: the search's multiplier and its drop, the cheapest tolerated one, greedy's."""
    (searched,) = document["compared"]
    records = {(r["group"], r["multiplier"]): r for r in document["sensitivity"]}
    rows = []
    for group in document["groups"]:
        name = group["name"]
        options = [r for r in document["sensitivity"] if r["group"] == name]
        tolerated = [r for r in options if r["accuracy_drop"] <= tolerance]
        chosen = searched["assignment"][name]
        rows.append({
            "group": name, "macs": group["macs"], "searched": chosen,
            "searched_drop": records[name, chosen]["accuracy_drop"]
            if (name, chosen) in records else 0.0,
            "cheapest_tolerated": max(tolerated, key=lambda r: (r["energy_saved_uj"],
                                                                -r["accuracy_drop"]))["multiplier"]
            if tolerated else EXACT,
            "greedy": document["greedy"]["assignment"][name],
            "drops": {r["multiplier"]: round(r["accuracy_drop"], 4) for r in options}})
    return rows


def summary(out: Path, args, document: dict) -> dict:
    results = {name: json.loads((out / name / RESULTS_FILE).read_text()) for name in RUNS}
    keys = ("test_acc", "energy_uj", "energy_mult_uj")
    return {
        "genotype": args.genotype, "seed": args.seed, "train_args": args.train_args,
        "retrained": {name: {k: results[name].get(k) for k in keys} for name in RUNS},
        "twin_accuracy": document["trained"]["accuracy"], "test_images": document["test_images"],
        "mode": document["mode"], "recalibration_images": document["recalibration_images"],
        "tolerance": args.tolerance,
        "searched_on_twin_weights": {k: document["compared"][0][k] for k in
                                     ("accuracy", "accuracy_drop", "energy_uj",
                                      "energy_saved_uj")},
        "greedy": {k: document["greedy"][k] for k in ("accuracy", "accuracy_drop", "energy_uj",
                                                      "energy_saved_uj")},
        "uniform": [{k: u[k] for k in ("multiplier", "accuracy", "accuracy_drop", "energy_uj")}
                    for u in document["uniform"]],
        "groups": group_rows(document, args.tolerance),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--genotype", required=True,
                        help="the searched genotype: a JSON file, a search run directory, or "
                             "a published name with a multiplier")
    parser.add_argument("--out", type=Path, default=Path("runs/multiplier-where"))
    parser.add_argument("--seed", type=int, default=2, help="retrain seed (train.py's)")
    parser.add_argument("--train_args", default="", help="extra train.py flags, e.g. '--epochs 5'")
    parser.add_argument("--multipliers", default=SHAPES_MULTIPLIERS,
                        help="the search's multiplier set (exact is the twin's; the others are "
                             "the sensitivity candidates); default: the default search's")
    parser.add_argument("--tolerance", type=float, default=0.01,
                        help="accuracy drop the greedy assignment may cost (sensitivity's)")
    parser.add_argument("--mode", choices=("exact", "lowrank"), default="exact",
                        help="emulation of the sensitivity evaluations (sensitivity's --mode)")
    parser.add_argument("--recalibrate", type=int, default=RECALIBRATION_BATCHES,
                        metavar="BATCHES",
                        help="BatchNorm re-estimation per evaluation (sensitivity's)")
    parser.add_argument("--only", choices=RUNS, default=None,
                        help="retrain only this one, then stop (to run the two in parallel)")
    args = parser.parse_args(argv)
    with contextlib.redirect_stdout(sys.stderr):  # the programs' logs and the sensitivity table
        summarised = exit_status(lambda: run(args))
    if isinstance(summarised, dict):
        print(json.dumps(summarised))
        return 0
    return summarised


def run(args) -> dict | int:
    """The summary (module docstring), or an exit status: 0 after `--only`, else a failure."""
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    genotype, _ = search_runs.resolve(args.genotype)
    files = {"searched": out / "searched.json", "twin": out / "twin.json"}
    genotypes.save(genotype, files["searched"])
    genotypes.save(twin_of(genotype), files["twin"])
    for name in RUNS if args.only is None else (args.only,):
        retrain(out, name, files[name], args)
    if args.only is not None:
        return 0
    candidates = [m for m in args.multipliers.split(",") if m.strip() and m.strip() != EXACT]
    report = out / f"sensitivity-recalibrate{args.recalibrate}.json"
    status = sensitivity_main([str(out / "twin"), "--multipliers", ",".join(candidates),
                               "--tolerance", str(args.tolerance), "--mode", args.mode,
                               "--recalibrate", str(args.recalibrate),
                               "--compare", str(files["searched"]), "--out", str(report)])
    if status != 0:
        return status
    return summary(out, args, json.loads(report.read_text()))


if __name__ == "__main__":
    sys.exit(main())

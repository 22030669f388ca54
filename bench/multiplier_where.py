"""Benchmark: does a search put its multipliers where the layers tolerate them? (issues 24.5,
27.2)

Takes a searched genotype (its conv ops on multipliers, `sep_conv_3x3@drum4`) and its twin
with every multiplier exact (same cells, `op@exact`, exact fixed layers). Retrains both with
`train.py`'s recipe (resumable run directories under `--out`), then measures on the twin's
weights (`python -m sensitivity TWIN --compare SEARCHED`): each layer group's accuracy drop
and energy saved on each of the search's multipliers, the greedy per-group assignment within
`--tolerance` (after ALWANN), the uniform assignments, and the search's own assignment on the
same weights. With `--retrain_assignments` it then retrains, with the same recipe, the greedy
assignment (the `greedy_genotype.json` the sensitivity writes: every group on its greedy
multiplier, fixed layers included) and the twin's cells with each candidate everywhere
(`uniform-<m>`), so the per-layer assignment is judged by retrained accuracy, not only on
the twin's weights; `--spread_seeds` retrains every network again under those seeds for
the seed spread.
Prints ONE JSON line: the retrains' test accuracies and energies (mean, std and per seed),
and per group the search's multiplier, that multiplier's measured single-group drop, the
cheapest multiplier within the tolerance alone, and the greedy choice. Every step resumes
from what `--out` holds (finished retrains and the sensitivity report are kept).

Split the two retrains over two processes (one thread each), then summarise:

    OMP_NUM_THREADS=1 .venv/bin/python bench/multiplier_where.py --genotype G --only searched &
    OMP_NUM_THREADS=1 .venv/bin/python bench/multiplier_where.py --genotype G --only twin; wait
    .venv/bin/python bench/multiplier_where.py --genotype G

Retrained per-layer assignments on EvoApproxLib circuits (docs/multiplier_where.md):

    .venv/bin/python bench/multiplier_where.py --genotype G --out runs/mw-evo \\
        --multipliers mul8u_0AB,mul8u_197B,mul8u_17C8 --lut_dir ../shared/evoapprox/luts \\
        --retrain_assignments --spread_seeds 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import genotypes  # noqa: E402
import train  # noqa: E402
from defaults import SHAPES_MULTIPLIERS  # noqa: E402
from quality.plan import on_every_conv  # noqa: E402
from quality.runs import run_program  # noqa: E402
from reporting.retrain_report import RESULTS_FILE  # noqa: E402
from runner.errors import exit_status  # noqa: E402
from search import runs as search_runs  # noqa: E402
from sensitivity.__main__ import GREEDY_GENOTYPE_FILE  # noqa: E402
from sensitivity.__main__ import main as sensitivity_main  # noqa: E402
from sensitivity.measure import RECALIBRATION_BATCHES  # noqa: E402

RUNS = ("searched", "twin")
EXACT = "exact"


def retrain(out: Path, name: str, genotype_file: Path, args, seed: int) -> None:
    """`name`'s retrain under `seed` (--seed's in out/name, another in out/name-seedN)."""
    argv = ["--genotype", str(genotype_file), "--seed", str(seed), "--data",
            str(out / "data"), *lut_flags(args), *args.train_args.split()]
    run_program(train.main, argv, out / run_name(name, seed, args), RESULTS_FILE)


def run_name(name: str, seed: int, args) -> str:
    return name if seed == args.seed else f"{name}-seed{seed}"


def lut_flags(args) -> list[str]:
    return ["--lut_dir", args.lut_dir] if args.lut_dir else []


def candidates_of(args) -> list[str]:
    """The sensitivity candidates: the multiplier set without the twin's exact."""
    return [m.strip() for m in args.multipliers.split(",") if m.strip() not in ("", EXACT)]


def assignment_files(out: Path, args, report: Path) -> dict[str, Path]:
    """{run name: genotype file} of the greedy and uniform retrains (--retrain_assignments):
    the greedy genotype the sensitivity wrote beside `report`, and the twin on each
    candidate."""
    twin = genotypes.load(out / "twin.json")
    files = {"greedy": report.with_name(GREEDY_GENOTYPE_FILE)}
    for multiplier in candidates_of(args):
        name = "uniform-" + re.sub(r"[^\w.-]", "_", multiplier)  # a .bin path's slashes
        files[name] = out / f"{name}.json"
        genotypes.save(on_every_conv(twin, multiplier), files[name])
    return files


def retrained(out: Path, names, args) -> dict:
    """Per retrained network: test accuracy and energies, per seed and their mean and std."""
    keys = ("test_acc", "energy_uj", "energy_mult_uj")
    records = {}
    for name in names:
        by_seed = {seed: json.loads((out / run_name(name, seed, args) / RESULTS_FILE)
                                    .read_text()) for seed in seeds_of(args)}
        accuracies = [r["test_acc"] for r in by_seed.values()]
        first = by_seed[args.seed]
        records[name] = {**{k: first.get(k) for k in keys},
                         "test_acc_by_seed": {str(s): r["test_acc"] for s, r in by_seed.items()},
                         "test_acc_mean": statistics.fmean(accuracies),
                         "test_acc_std": statistics.stdev(accuracies) if len(accuracies) > 1
                         else 0.0}
    return records


def seeds_of(args) -> list[int]:
    return [args.seed, *args.spread_seeds]


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


def summary(out: Path, args, document: dict, names) -> dict:
    return {
        "genotype": args.genotype, "seeds": seeds_of(args), "train_args": args.train_args,
        "retrained": retrained(out, names, args),
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
    parser.add_argument("--lut_dir", default=None,
                        help="directory of EvoApproxLib .bin tables (for EvoApprox names in "
                             "--multipliers), passed to the retrains and the sensitivity")
    parser.add_argument("--retrain_assignments", action="store_true",
                        help="also retrain the greedy assignment and each candidate everywhere")
    parser.add_argument("--spread_seeds", type=int, nargs="*", default=[], metavar="SEED",
                        help="retrain every network again under each of these seeds")
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
    genotypes.save(on_every_conv(genotype, EXACT), files["twin"])
    for name in RUNS if args.only is None else (args.only,):
        for seed in seeds_of(args):
            retrain(out, name, files[name], args, seed)
    if args.only is not None:
        return 0
    report = out / f"sensitivity-recalibrate{args.recalibrate}.json"
    if not report.is_file():
        status = sensitivity_main([str(out / "twin"), "--multipliers",
                                   ",".join(candidates_of(args)), "--tolerance",
                                   str(args.tolerance), "--mode", args.mode, "--recalibrate",
                                   str(args.recalibrate), *lut_flags(args), "--compare",
                                   str(files["searched"]), "--out", str(report)])
        if status != 0:
            return status
    document = json.loads(report.read_text())
    if args.retrain_assignments:
        files.update(assignment_files(out, args, report))
        for name in [name for name in files if name not in RUNS]:
            for seed in seeds_of(args):
                retrain(out, name, files[name], args, seed)
    return summary(out, args, document, list(files))


if __name__ == "__main__":
    sys.exit(main())

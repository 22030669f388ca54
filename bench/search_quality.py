"""Does the energy-aware search beat its baselines? `python bench/search_quality.py`.

On the embedded data: searches at several energy weights, random genotypes from the same
factorised op x multiplier space, and uniform baselines (a published cell with one multiplier
on every conv, `exact` 8-bit included), each retrained with one recipe and several seeds.
Prints one JSON line: per genotype the mean and spread of test accuracy (real multiplier
tables) and its energy per image (total and arithmetic), the Pareto front over all of them,
and the hypervolume of the searched, random and uniform fronts against one reference point.

Every sub-run has a fixed directory under --out; rerunning the command resumes (finished runs
are kept, interrupted ones continue from their checkpoint), and --time_budget_min stops
launching runs once spent (the JSON then says `complete: false`). Writes <out>/quality.json
and <out>/quality.png.

Sized for about two hours of 2-thread work (the 90 minutes first aimed at do not hold a
benchmark that separates the genotypes): every search is the default 50-epoch one (about 14.5
min; a 25-epoch search leaves the supernet at about 0.27 validation accuracy, so its alphas
follow noise), and each of the 13 genotypes (3 searched, 5 random, 5 uniform) is retrained
twice for 10 epochs on 10,000 images (the default retrain is 15 epochs; about 2.8 min each):
about 44 + 73 min. A shorter recipe is not cheaper science: at 6000 images the same genotype
retrained 0.678 and 0.756 under two seeds, more than the genotypes differ. Parallel
processes with OMP_NUM_THREADS=1 each (`--groups random`, `--groups uniform`, and one
`--groups searched --energy_weights W` per weight) share the cores without their threads
fighting; a directory's recipe (recipe.json) is fixed at its first run, and the summary
covers whatever is on disk, so a last plain run prints the whole table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shlex
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import genotypes  # noqa: E402
import train  # noqa: E402
import train_search  # noqa: E402
from preflight import check_at_least  # noqa: E402
from runner.errors import exit_status  # noqa: E402
from runner.files import atomic_write_json
from runner.rundir import CHECKPOINT_FILE  # noqa: E402
from search.space import EXACT, SearchSpace  # noqa: E402
from tradeoff.checks import check_runs  # noqa: E402
from tradeoff.pareto import front_summary, hypervolume, reference_point  # noqa: E402
from tradeoff.plan import parse_numbers  # noqa: E402

GROUPS = ("searched", "random", "uniform")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="runs/search-quality", help="benchmark directory")
    parser.add_argument("--energy_weights", default="0,0.5,4",
                        help="comma-separated lambdas, one search each")
    parser.add_argument("--multipliers", default=None,
                        help="multiplier set (default: the search's default for shapes)")
    parser.add_argument("--random", type=int, default=5, help="random genotypes")
    parser.add_argument("--published", default="DARTS_V2",
                        help="published cell of the uniform baselines")
    parser.add_argument("--seeds", type=int, default=2, help="retrain seeds per genotype")
    parser.add_argument("--search_epochs", type=int, default=50,
                        help="epochs of each search (the default search's other settings)")
    parser.add_argument("--retrain_epochs", type=int, default=10,
                        help="epochs of every retrain (the default recipe's other settings)")
    parser.add_argument("--retrain_n_train", type=int, default=10000,
                        help="training images of every retrain")
    parser.add_argument("--search_args", default="", help="more train_search.py flags")
    parser.add_argument("--train_args", default="", help="more train.py flags")
    parser.add_argument("--time_budget_min", type=float, default=None,
                        help="launch no run after this many minutes (rerun to continue)")
    parser.add_argument("--groups", default=",".join(GROUPS),
                        help="run only these groups (e.g. two processes on two cores, one "
                             "'searched', one 'random,uniform'); the summary covers what is "
                             "on disk for every group")
    return parser.parse_args(argv)


def multiplier_set(args) -> list[str]:
    names = train_search.split_names(args.multipliers or train_search.SEARCH_DEFAULTS[
        "shapes"]["multipliers"])
    return list(dict.fromkeys([EXACT, *names]))


def primitive_set(args) -> list[str]:
    """The searches' op set (a --primitives in --search_args, else the shapes default), so
    that the random genotypes come from the space the searches choose in."""
    flags = shlex.split(args.search_args)
    given = flags[flags.index("--primitives") + 1] if "--primitives" in flags else None
    return train_search.split_names(given or train_search.SEARCH_DEFAULTS["shapes"]["primitives"])


def plan(args, out: Path) -> list[dict]:
    """Every genotype of the benchmark: name, group and how to get its genotype file."""
    multipliers = multiplier_set(args)
    entries = [{"name": f"search-ew{w:g}", "group": "searched", "energy_weight": w}
               for w in parse_numbers(args.energy_weights, "--energy_weights")]
    space = SearchSpace(tuple(primitive_set(args)), tuple(multipliers))
    for seed in range(1, args.random + 1):
        entries.append({"name": f"random-s{seed}", "group": "random",
                        "genotype": space.sample_genotype(seed)})
    published = genotypes.PUBLISHED[args.published]
    for multiplier in multipliers:
        entries.append({"name": f"{args.published}@{multiplier}", "group": "uniform",
                        "genotype": on_every_conv(published, multiplier)})
    return entries


def on_every_conv(genotype, multiplier: str):
    def rename(op):
        return op if op not in genotypes.CONV_PRIMITIVES else f"{op}@{multiplier}"
    return genotype._replace(normal=[(rename(op), i) for op, i in genotype.normal],
                             reduce=[(rename(op), i) for op, i in genotype.reduce])


def run_program(main, argv: list[str], run_dir: Path, done_file: str) -> None:
    """Run a program into `run_dir` unless it finished; continue it from its checkpoint."""
    if (run_dir / done_file).is_file():
        return
    if (run_dir / CHECKPOINT_FILE).is_file():
        argv = ["--resume", str(run_dir)]
    else:
        argv = [*argv, "--save", str(run_dir)]
    status = main(argv)
    if status != 0:
        raise SystemExit(f"search_quality: sub-run {run_dir} failed with status {status}; "
                         f"fix it and rerun to continue")


def genotype_source(entry: dict, out: Path) -> str | None:
    """The --genotype of a retrain (None: its search has not run yet)."""
    if entry["group"] == "searched":
        search_dir = out / entry["name"]
        return str(search_dir) if (search_dir / genotypes.GENOTYPE_FILE).is_file() else None
    path = out / "genotypes" / f"{entry['name']}.json"
    if not path.is_file():
        genotypes.save(entry["genotype"], path, baseline=entry["group"])
    return str(path)


def jobs(args, out: Path, entries: list[dict]):
    """(kind, entry, seed) in the order they run: the searches, then seed by seed every
    genotype's retrain, taking the groups in turn (searched, random, uniform, searched, ...)
    so that a time budget leaves every group with some runs."""
    for entry in entries:
        if entry["group"] == "searched":
            yield "search", entry, None
    by_group = [[e for e in entries if e["group"] == group] for group in GROUPS]
    interleaved = [e for row in itertools.zip_longest(*by_group) for e in row if e]
    for seed in range(1, args.seeds + 1):
        for entry in interleaved:
            yield "train", entry, seed


def run_job(args, out: Path, kind: str, entry: dict, seed) -> None:
    if kind == "search":
        run_program(train_search.main, search_argv(args, out, entry["energy_weight"]),
                    out / entry["name"], genotypes.GENOTYPE_FILE)
        return
    run_program(train.main, train_argv(args, out, genotype_source(entry, out), seed),
                out / "retrain" / f"{entry['name']}-seed{seed}", "results.json")


def search_argv(args, out: Path, energy_weight: float) -> list[str]:
    argv = ["--data", str(out / "data"), "--epochs", str(args.search_epochs),
            "--energy_weight", f"{energy_weight:g}", "--runs_dir", str(out)]
    if args.multipliers:
        argv += ["--multipliers", args.multipliers]
    return argv + shlex.split(args.search_args)


def train_argv(args, out: Path, genotype: str, seed: int) -> list[str]:
    return ["--data", str(out / "data"), "--genotype", genotype, "--seed", str(seed),
            "--epochs", str(args.retrain_epochs), "--n_train", str(args.retrain_n_train),
            "--stl", "F(test_acc >= 0)", *shlex.split(args.train_args)]


def check_args(args, out: Path) -> None:
    """The benchmark's settings and every sub-run's flags, checked before anything is written
    (one line, exit status 2; tradeoff/checks.py)."""
    if args.published not in genotypes.PUBLISHED:
        raise ValueError(f"--published {args.published}: not one of "
                         f"{', '.join(genotypes.PUBLISHED)}")
    check_at_least("--seeds", args.seeds, 1, "every genotype is retrained once or more")
    check_at_least("--random", args.random, 0, "a count of random genotypes")
    runs = [SimpleNamespace(name=f"search-ew{w:g}", argv=search_argv(args, out, w),
                            program="train_search")
            for w in parse_numbers(args.energy_weights, "--energy_weights")]
    runs.append(SimpleNamespace(name="retrain", program="train",
                                argv=train_argv(args, out, args.published, 1)))
    check_runs(runs, lambda run: run.program, "--search_epochs/--retrain_epochs, --multipliers, "
                                              "--search_args, --train_args")


def summarise(args, out: Path, entries: list[dict]) -> dict:
    rows = []
    for entry in entries:
        by_seed = {seed: json.loads(path.read_text()) for seed in range(1, args.seeds + 1)
                   if (path := out / "retrain" / f"{entry['name']}-seed{seed}"
                       / "results.json").is_file()}
        if not by_seed:
            continue
        results = list(by_seed.values())
        accs = [r["test_acc"] for r in results]
        mean = sum(accs) / len(accs)
        std = math.sqrt(sum((a - mean) ** 2 for a in accs) / max(len(accs) - 1, 1))
        rows.append({"name": entry["name"], "group": entry["group"], "seeds": len(accs),
                     "test_acc_by_seed": {seed: r["test_acc"] for seed, r in by_seed.items()},
                     "test_acc_mean": mean, "test_acc_std": std,
                     "test_acc_min": min(accs), "test_acc_max": max(accs),
                     "energy_uj": results[0]["energy_uj"],
                     "energy_arith_uj": results[0]["energy_arith_uj"],
                     "genotype": results[0]["genotype"]})
    points = [(row["energy_uj"], row["test_acc_mean"]) for row in rows]
    summary = front_summary(points) if points else {"pareto": [], "reference": None}
    reference = summary["reference"] or (reference_point(points) if points else None)
    for row, on_front in zip(rows, summary["pareto"], strict=True):
        row["pareto"] = on_front
    fronts = {}
    for group in GROUPS:
        members = [(r["energy_uj"], r["test_acc_mean"]) for r in rows if r["group"] == group]
        by_seed = [[(r["energy_uj"], r["test_acc_by_seed"][seed]) for r in rows
                    if r["group"] == group and seed in r["test_acc_by_seed"]]
                   for seed in range(1, args.seeds + 1)]
        fronts[group] = {"genotypes": len(members),
                         "hypervolume": hypervolume(members, reference) if members else None,
                         # the same front from each seed's retrains alone: the HV's spread
                         "hypervolume_by_seed": [hypervolume(points, reference) if points
                                                 else None for points in by_seed]}
    return {"rows": rows, "reference": reference, "fronts": fronts}


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4.4))
    styles = {"searched": ("o", "tab:blue"), "random": ("^", "tab:gray"),
              "uniform": ("s", "tab:orange")}
    for group, (marker, color) in styles.items():
        rows = [r for r in summary["rows"] if r["group"] == group]
        if not rows:
            continue
        axis.errorbar([r["energy_uj"] for r in rows], [r["test_acc_mean"] for r in rows],
                      yerr=[[r["test_acc_mean"] - r["test_acc_min"] for r in rows],
                            [r["test_acc_max"] - r["test_acc_mean"] for r in rows]],
                      fmt=marker, color=color, capsize=3,
                      label=f"{group} (HV {summary['fronts'][group]['hypervolume']:.1f})")
        for r in rows:
            axis.annotate(r["name"], (r["energy_uj"], r["test_acc_mean"]), fontsize=6,
                          xytext=(3, 3), textcoords="offset points")
    axis.set_xlabel("energy per image (µJ, retrained network)")
    axis.set_ylabel("test accuracy (mean over seeds; bars: min-max)")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=130)
    plt.close(figure)


# the settings every genotype of one benchmark directory must share (the energy weights and
# groups may differ between the processes that fill it; more seeds may be added later)
RECIPE = ("multipliers", "random", "published", "search_epochs", "retrain_epochs",
          "retrain_n_train", "search_args", "train_args")
RECIPE_FILE = "recipe.json"


def check_recipe(args, out: Path) -> None:
    """Record the recipe of a new benchmark directory; refuse to mix another one into it."""
    recipe = {key: getattr(args, key) for key in RECIPE}
    path = out / RECIPE_FILE
    if not path.is_file():
        atomic_write_json(path, recipe)
        return
    recorded = json.loads(path.read_text())
    changed = [f"--{key} {recorded.get(key)!r} (given {value!r})"
               for key, value in recipe.items() if recorded.get(key) != value]
    if changed:
        raise SystemExit(f"search_quality: {out} holds runs made with {', '.join(changed)}; "
                         f"pass the same settings to continue it, or a new --out")


def main(argv=None) -> int:
    args = parse_args(argv)
    return exit_status(lambda: benchmark(args))


def benchmark(args) -> int:
    out = Path(args.out)
    check_args(args, out)
    out.mkdir(parents=True, exist_ok=True)
    check_recipe(args, out)
    entries = plan(args, out)
    started, complete = time.time(), True
    groups = set(train_search.split_names(args.groups))
    for kind, entry, seed in jobs(args, out, entries):
        if entry["group"] not in groups:
            continue
        if args.time_budget_min is not None and time.time() - started > 60 * args.time_budget_min:
            complete = False
            break
        if kind == "train" and genotype_source(entry, out) is None:
            complete = False  # its search did not finish
            continue
        run_job(args, out, kind, entry, seed)
    summary = {"benchmark": "search_quality", "complete": complete,
               "settings": vars(args), **summarise(args, out, entries),
               "elapsed_s": round(time.time() - started, 1)}
    atomic_write_json(out / "quality.json", summary)
    if summary["rows"]:
        plot(summary, out / "quality.png")
    compact = {**summary, "rows": [{k: v for k, v in r.items() if k != "genotype"}
                                   for r in summary["rows"]]}
    print(json.dumps(compact))
    return 0


if __name__ == "__main__":
    sys.exit(main())

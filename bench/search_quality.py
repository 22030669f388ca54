"""Does the energy-aware search beat its baselines? `python bench/search_quality.py`.

On the embedded data: DARTS searches at each energy weight under several search seeds; the
black-box strategies (NSGA-II, TPE) at the DARTS search's wall time; random genotypes of the
same op x multiplier space at equal compute; uniform baselines (DARTS_V2 and the best random
cell with each multiplier of the set, `exact` 8-bit included, on every conv); every genotype
retrained with one recipe under several seeds. Writes <out>/quality.json (the figures: see
quality/summary.py), <out>/quality_fronts.png and <out>/quality_hypervolume.png, and prints
one JSON line. docs/reference/search_quality.md describes the design, the statistics and the
sizing; quality/ holds the pieces (plan, runs, sizing, summary, plots, recipe).

Every sub-run has a fixed directory under --out; rerunning resumes, --time_budget_min stops
launching runs once spent (`complete: false`, `pending` names what is left), and `--groups`
splits the work over processes (one thread each: OMP_NUM_THREADS=1) that fill one
directory; a last plain run (or `--groups none`) prints the whole table. `--estimate` prints
the plan's counts and time estimate and runs nothing; `--recipe_check` measures the short
recipe's rank agreement with the 15-epoch one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import genotypes  # noqa: E402
import train  # noqa: E402
import train_search  # noqa: E402
from preflight import check_at_least  # noqa: E402
from quality import plan, plots, recipe, runs, sizing  # noqa: E402
from quality.summary import summarise  # noqa: E402
from runner.errors import exit_status  # noqa: E402
from runner.files import atomic_write_json  # noqa: E402
from tradeoff import bootstrap  # noqa: E402
from tradeoff.checks import check_runs  # noqa: E402

WAIT_S = 30  # between passes while another process runs what this one waits for


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add("--out", default="runs/search-quality", help="benchmark directory")
    add("--energy_weights", default="0,2", help="comma-separated lambdas of the DARTS searches")
    add("--search_seeds", type=int, default=3, help="DARTS searches per energy weight")
    add("--search_epochs", type=int, default=20,
        help="epochs of each DARTS search (the default search's other settings)")
    add("--strategies", default="nsga2,tpe", help="black-box strategies ('' for none)")
    add("--blackbox_seeds", type=int, default=1, help="searches per black-box strategy")
    add("--blackbox_front", type=int, default=1,
        help="members of each black-box search's Pareto front retrained (spread by energy)")
    add("--blackbox_time_s", type=float, default=None,
        help="wall time of each black-box search (default: the DARTS searches' mean)")
    add("--blackbox_args", default="", help="more train_search.py flags of black-box searches")
    add("--multipliers", default=None,
        help="multiplier set (default: the search's default for shapes)")
    add("--random", type=int, default=None,
        help="random genotypes (default: equal compute, at least 8; quality/sizing.py)")
    add("--published", default="DARTS_V2", help="published cell of the uniform baselines")
    add("--seeds", type=int, default=3, help="retrain seeds per genotype")
    add("--retrain_epochs", type=int, default=5,
        help="epochs of every retrain (the default recipe's other settings)")
    add("--retrain_n_train", type=int, default=4000, help="training images of every retrain")
    add("--search_args", default="", help="more train_search.py flags (all searches)")
    add("--train_args", default="", help="more train.py flags")
    add("--time_budget_min", type=float, default=None,
        help="launch no run after this many minutes (rerun to continue)")
    add("--groups", default=",".join(plan.GROUPS),
        help="run only these groups' searches and retrains ('none': only summarise)")
    add("--bootstrap_draws", type=int, default=bootstrap.DRAWS, help="bootstrap resamples")
    add("--bootstrap_seed", type=int, default=bootstrap.SEED, help="seed of the bootstrap")
    add("--estimate", action="store_true", help="print the plan's size and time; run nothing")
    add("--recipe_check", action="store_true",
        help="retrain random genotypes (and --recipe_check_also) under this recipe and the "
             "15-epoch one; Kendall tau")
    add("--recipe_check_genotypes", type=int, default=8,
        help="random genotypes of --recipe_check (the first N)")
    add("--recipe_check_also", default="",
        help="more genotypes of the plan for --recipe_check, by name (comma-separated, e.g. "
             "DARTS_V2@exact,search-ew0-s1)")
    add("--recipe_check_epochs", type=int, default=None,
        help="epochs of the long recipe (default: train.py's, the README's 15)")
    add("--recipe_check_n_train", type=int, default=None,
        help="training images of the long recipe (default: train.py's)")
    add("--recipe_check_long", default=None,
        help="finished train.py runs (directories, or their parents, comma-separated) as the "
             "long recipe's results: only the short recipe runs, under each run's seed")
    return parser.parse_args(argv)


def check_args(args, out: Path) -> None:
    """The benchmark's settings and every sub-run's flags, checked before anything is written
    (one line, exit status 2; tradeoff/checks.py)."""
    if args.published not in genotypes.PUBLISHED:
        raise ValueError(f"--published {args.published}: not one of "
                         f"{', '.join(genotypes.PUBLISHED)}")
    unknown = set(plan.strategies(args)) - set(plan.STRATEGIES)
    if unknown:
        raise ValueError(f"--strategies {args.strategies}: {', '.join(sorted(unknown))} not one "
                         f"of {', '.join(plan.STRATEGIES)}")
    for flag, minimum, why in (("--seeds", 1, "every genotype is retrained once or more"),
                               ("--search_seeds", 1, "each energy weight needs a search"),
                               ("--blackbox_seeds", 1, "each strategy needs a search"),
                               ("--blackbox_front", 1, "retrain at least one front member"),
                               ("--random", 0, "a count of random genotypes"),
                               ("--bootstrap_draws", 1, "the interval needs resamples"),
                               ("--recipe_check_genotypes", 2, "a rank needs two genotypes")):
        check_at_least(flag, getattr(args, flag[2:]), minimum, why)
    sub_runs = [SimpleNamespace(name=s["name"], program="train_search",
                                argv=runs.search_argv(args, out, s, 60.0))
                for s in plan.searches(args)]
    sub_runs.append(SimpleNamespace(name="retrain", program="train",
                                    argv=runs.train_argv(args, out, args.published, 1)))
    check_runs(sub_runs, lambda run: run.program,
               "--search_*/--retrain_*, --blackbox_args, --multipliers, --search_args, "
               "--train_args")


def counts(args, entries: list[dict]) -> dict:
    searches = plan.searches(args)
    return {"searches": sum(s["strategy"] == "darts" for s in searches),
            "blackbox_searches": sum(s["strategy"] != "darts" for s in searches),
            "genotypes": len(entries), "random": plan.random_count(args)}


def main(argv=None) -> int:
    args = parse_args(argv)
    return exit_status(lambda: benchmark(args))


def benchmark(args) -> int:
    out = Path(args.out)
    check_args(args, out)
    if args.estimate:
        entries = plan.genotypes_plan(args)
        print(json.dumps({**counts(args, entries), **sizing.estimate(args, counts(args, entries))}))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    recipe.check_recipe(args, out)  # fixes the directory's random count in args
    entries = plan.genotypes_plan(args)
    if args.recipe_check:
        print(json.dumps(recipe.recipe_check(args, out)))
        return 0
    run_all(args, out, entries)
    waiting = runs.pending(args, out, entries)
    summary = {"benchmark": "search_quality", "complete": not waiting, "pending": waiting,
               "settings": vars(args),
               **counts(args, entries), **summarise(args, out, entries)}
    atomic_write_json(out / "quality.json", summary)
    if summary["genotypes"]:
        plots.fronts_figure(summary, out / "quality_fronts.png")
        plots.intervals_figure(summary, out / "quality_hypervolume.png")
    print(json.dumps({**summary, "genotypes": [{k: v for k, v in r.items() if k != "genotype"}
                                               for r in summary["genotypes"]]}))
    return 0


def run_all(args, out: Path, entries: list[dict]) -> None:
    """Run this process's groups' searches, then their retrains, until --time_budget_min.
    A sub-run another process has claimed is left to it, and a retrain whose genotype is not
    there yet (its search, the random retrains) waits: the passes repeat while they run
    something, or while another process works on what they wait for."""
    started = time.time()
    groups = set(train_search.split_names(args.groups))

    def out_of_time() -> bool:
        budget = args.time_budget_min
        return budget is not None and time.time() - started > 60 * budget

    while not out_of_time():
        ran, waiting = one_pass(args, out, entries, groups, out_of_time)
        if not ran:
            if not (waiting and runs.others_working(out)):
                return
            time.sleep(WAIT_S)


def one_pass(args, out: Path, entries: list[dict], groups: set[str], out_of_time):
    """One pass over the searches and retrains of `groups`: (whether a sub-run ran, whether
    one is left undone)."""
    ran = waiting = False
    for search in plan.searches(args):
        group = "searched" if search["strategy"] == "darts" else search["strategy"]
        if group not in groups or (out / search["name"] / genotypes.GENOTYPE_FILE).is_file():
            continue
        if out_of_time():
            return ran, True
        done = runs.run_search(args, out, search)
        ran, waiting = ran or done, waiting or not done
    for entry, seed in plan.retrain_jobs(args, entries):
        if entry["group"] not in groups:
            continue
        run_dir = runs.retrain_dir(out, entry["name"], seed)
        if (run_dir / "results.json").is_file():
            continue
        if out_of_time():
            return ran, True
        source = runs.genotype_source(args, out, entry)
        if source == runs.SKIP:
            continue
        seconds = None if source is None else runs.run_program(
            train.main, runs.train_argv(args, out, source, seed), run_dir, "results.json")
        ran, waiting = ran or seconds is not None, waiting or seconds is None
    return ran, waiting


if __name__ == "__main__":
    sys.exit(main())

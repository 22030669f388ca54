"""The benchmark directory's recipe (recipe.json: settings every process filling it must
share) and the recipe check: does the short retrain recipe rank genotypes as the README's
15-epoch recipe (train.py's defaults) does? The same genotypes (the first
`--recipe_check_genotypes` random ones, seed 1) are retrained under both (the long one:
`--recipe_check_epochs`/`--recipe_check_n_train`, by default train.py's own); Kendall's tau-b of
their test accuracies (tradeoff/rank.py) is written to `<out>/recipe_check.json`."""

from __future__ import annotations

import json
from pathlib import Path

import train
from quality import plan, runs
from runner.files import atomic_write_json
from tradeoff.rank import kendall_tau

# settings every genotype of one benchmark directory must share (energy weights, strategies
# and groups may differ between the processes that fill it; more seeds may be added later)
RECIPE = ("multipliers", "random", "published", "search_epochs", "search_seeds",
          "blackbox_seeds", "blackbox_front", "blackbox_time_s", "blackbox_args",
          "retrain_epochs", "retrain_n_train", "search_args", "train_args")
RECIPE_FILE = "recipe.json"
CHECK_DIR = "recipe-check"


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


def recipe_check(args, out: Path) -> dict:
    """Retrain the checked genotypes under both recipes (resumable) and rank-compare them."""
    chosen = [e for e in plan.genotypes_plan(args)
              if e["group"] == "random"][:args.recipe_check_genotypes]
    long_recipe = {"epochs": args.recipe_check_epochs, "n_train": args.recipe_check_n_train}
    short, long = [], []
    for entry in chosen:
        source = runs.genotype_source(args, out, entry)
        runs.run_program(train.main, runs.train_argv(args, out, source, 1),
                         runs.retrain_dir(out, entry["name"], 1), "results.json")
        long_dir = out / CHECK_DIR / f"{entry['name']}-seed1"
        runs.run_program(train.main, runs.train_argv(args, out, source, 1, long_recipe),
                         long_dir, "results.json")
        short.append(runs.results(out, entry["name"], 1)[1]["test_acc"])
        long.append(json.loads((long_dir / "results.json").read_text())["test_acc"])
    report = {"genotypes": [e["name"] for e in chosen], "short_test_acc": short,
              "long_test_acc": long, "kendall_tau": kendall_tau(short, long),
              "short_recipe": {"epochs": args.retrain_epochs, "n_train": args.retrain_n_train},
              "long_recipe": {k: ("train.py default" if v is None else v)
                              for k, v in long_recipe.items()}}
    atomic_write_json(out / "recipe_check.json", report)
    return report

"""The benchmark directory's recipe (recipe.json: settings every process filling it must
share) and the recipe check: does the short retrain recipe rank genotypes as the README's
15-epoch recipe (train.py's defaults) does? The same genotypes (the first
`--recipe_check_genotypes` random ones, seed 1) are retrained under both (the long one:
`--recipe_check_epochs`/`--recipe_check_n_train`, by default train.py's own), or, with
`--recipe_check_long`, finished retrains already on disk give the long results and only the
short recipe runs; Kendall's tau-b of their test accuracies (tradeoff/rank.py) is written to
`<out>/recipe_check.json`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import genotypes
import train
from defaults import SEARCH_DEFAULTS
from quality import plan, runs
from reporting.retrain_report import RESULTS_FILE
from runner.files import atomic_write_json
from runner.rundir import CONFIG_FILE, HISTORY_FILE
from tradeoff.rank import kendall_tau

# settings every genotype of one benchmark directory must share (energy weights, strategies
# and groups may differ between the processes that fill it; more seeds may be added later)
RECIPE = ("multipliers", "random", "published", "search_epochs", "search_seeds",
          "blackbox_seeds", "blackbox_front", "blackbox_time_s", "blackbox_args",
          "retrain_epochs", "retrain_n_train", "search_args", "train_args")
RECIPE_FILE = "recipe.json"
# train_search.py defaults a directory's searches keep when defaults.py changes them (recorded
# with the directory); a directory recorded before they were kept ran with the values below
KEPT_SEARCH_DEFAULTS = ("arch_every", "arch_learning_rate")
SEARCH_DEFAULTS_UNRECORDED = {"arch_every": 1, "arch_learning_rate": 5e-3}
CHECK_DIR = "recipe-check"


def check_recipe(args, out: Path) -> None:
    """Record the recipe of a new benchmark directory; refuse to mix another one into it.
    The equal-compute count of random genotypes is fixed with the directory (recorded when
    --random is not given, and taken from the record then), so a later change of the timing
    figures in quality/sizing.py does not change a directory's plan; so are the search
    defaults of KEPT_SEARCH_DEFAULTS (`args.search_defaults`, passed to every search)."""
    recipe = {key: getattr(args, key) for key in RECIPE}
    path = out / RECIPE_FILE
    if not path.is_file():
        args.search_defaults = {key: SEARCH_DEFAULTS["shapes"][key]
                                for key in KEPT_SEARCH_DEFAULTS}
        atomic_write_json(path, {**recipe, "random": plan.random_count(args),
                                 "search_defaults": args.search_defaults})
        args.random = plan.random_count(args)
        return
    recorded = json.loads(path.read_text())
    args.search_defaults = recorded.get("search_defaults", SEARCH_DEFAULTS_UNRECORDED)
    if args.random is None and recorded.get("random") is not None:
        args.random = recipe["random"] = recorded["random"]
    changed = [f"--{key} {recorded.get(key)!r} (given {value!r})"
               for key, value in recipe.items() if recorded.get(key) != value]
    if changed:
        raise SystemExit(f"search_quality: {out} holds runs made with {', '.join(changed)}; "
                         f"pass the same settings to continue it, or a new --out")


def recipe_check(args, out: Path) -> dict:
    """Retrain the checked genotypes under both recipes (resumable; processes share the runs
    through claims) and rank-compare those that have both results. With
    `--recipe_check_long`, the long results are finished retrains already on disk and only
    the short recipe runs, under each long run's seed."""
    pairs = reused_pairs(args, out) if args.recipe_check_long else fresh_pairs(args, out)
    done = [p for p in pairs if p["short_dir"] is not None and p["long"] is not None]
    short = [_test_acc(p["short_dir"]) for p in done]
    long = [p["long"] for p in done]
    report = {"genotypes": [p["name"] for p in done], "short_test_acc": short,
              "long_test_acc": long, "kendall_tau": kendall_tau(short, long),
              "complete": len(done) == len(pairs),
              "short_recipe": {"epochs": args.retrain_epochs, "n_train": args.retrain_n_train},
              "long_recipe": _long_recipe(args, pairs),
              "long_epoch_tau": epoch_taus([p["long_dir"] for p in done])}
    atomic_write_json(out / "recipe_check.json", report)
    return report


def checked_genotypes(args) -> list[dict]:
    """The plan's entries the check retrains: the first `--recipe_check_genotypes` random
    ones, then those `--recipe_check_also` names (comma-separated), in the plan's order."""
    entries = plan.genotypes_plan(args)
    chosen = [e for e in entries if e["group"] == "random"][:args.recipe_check_genotypes]
    also = [name.strip() for name in (args.recipe_check_also or "").split(",") if name.strip()]
    unknown = sorted(set(also) - {e["name"] for e in entries})
    if unknown:
        raise ValueError(f"--recipe_check_also {args.recipe_check_also}: "
                         f"{', '.join(unknown)} not in the benchmark's plan; name its "
                         f"genotypes as quality.json does (e.g. search-ew0-s1, DARTS_V2@exact)")
    return chosen + [e for e in entries if e["name"] in also and e not in chosen]


def fresh_pairs(args, out: Path) -> list[dict]:
    """The checked genotypes (checked_genotypes), seed 1, under both recipes."""
    chosen = checked_genotypes(args)
    long_recipe = {"epochs": args.recipe_check_epochs, "n_train": args.recipe_check_n_train}
    sources = [runs.genotype_source(args, out, entry) for entry in chosen]
    missing = [e["name"] for e, source in zip(chosen, sources, strict=True) if source is None]
    if missing:  # before any retrain runs
        raise ValueError(f"--recipe_check_also: {', '.join(missing)} has no genotype yet; run "
                         f"the benchmark's plan (bench/search_quality.py) first")
    pairs = []
    for entry, source in zip(chosen, sources, strict=True):
        short_dir = runs.retrain_dir(out, entry["name"], 1)
        ran = runs.run_program(train.main, runs.train_argv(args, out, source, 1), short_dir,
                               RESULTS_FILE)
        long_dir = out / CHECK_DIR / f"{entry['name']}-seed1"
        runs.run_program(train.main, runs.train_argv(args, out, source, 1, long_recipe),
                         long_dir, RESULTS_FILE)
        pairs.append({"name": entry["name"], "short_dir": None if ran is None else short_dir,
                      "long": _test_acc(long_dir), "long_dir": long_dir})
    return pairs


def reused_pairs(args, out: Path) -> list[dict]:
    """Every finished retrain under the `--recipe_check_long` directories (a run directory,
    or a directory of them) as the long result; its genotype retrained under the short recipe
    with the long run's seed, in `<out>/recipe-check/short/`."""
    pairs = []
    for long_dir in long_runs(args.recipe_check_long):
        name = f"{long_dir.parent.name}-{long_dir.name}"
        config = json.loads((long_dir / CONFIG_FILE).read_text())
        results = json.loads((long_dir / RESULTS_FILE).read_text())
        genotype_file = out / CHECK_DIR / "genotypes" / f"{name}.json"
        if not genotype_file.is_file():
            genotypes.save(genotypes.from_dict(results["genotype"]), genotype_file,
                           source=str(long_dir))
        short_dir = out / CHECK_DIR / "short" / name
        ran = runs.run_program(train.main, runs.train_argv(args, out, str(genotype_file),
                                                           config["seed"]),
                               short_dir, RESULTS_FILE)
        pairs.append({"name": name, "short_dir": None if ran is None else short_dir,
                      "long": results["test_acc"], "long_dir": str(long_dir),
                      "long_epochs": config.get("epochs"), "long_n_train": config.get("n_train")})
    return pairs


def long_runs(paths: str) -> list[Path]:
    """The finished retrains (results.json and config.json) named by comma-separated paths:
    each a run directory or a directory holding run directories."""
    found = []
    for text in filter(None, (p.strip() for p in paths.split(","))):
        path = Path(text)
        candidates = [path] if (path / RESULTS_FILE).is_file() else sorted(path.glob("*/"))
        finished = [c for c in candidates
                    if (c / RESULTS_FILE).is_file() and (c / CONFIG_FILE).is_file()]
        found += finished
        if not finished:
            raise ValueError(f"--recipe_check_long {text}: no finished retrain (a directory "
                             f"with {RESULTS_FILE} and {CONFIG_FILE}) there or one level "
                             f"below; name train.py run directories or their parent")
    return found


def _long_recipe(args, pairs: list[dict]) -> dict:
    if not args.recipe_check_long:
        return {"epochs": args.recipe_check_epochs or "train.py default",
                "n_train": args.recipe_check_n_train or "train.py default"}
    return {"epochs": sorted({p["long_epochs"] for p in pairs}),
            "n_train": sorted({p["long_n_train"] for p in pairs}), "reused": True}


def epoch_taus(long_dirs: list) -> list[float | None]:
    """Per epoch k, Kendall's tau-b of the long runs' test accuracy after epoch k against
    their final test accuracy (None where fewer than two runs recorded epoch k, or where
    the accuracies tie throughout)."""
    curves = [[r["test_acc"] for r in json.loads((Path(d) / HISTORY_FILE).read_text())]
              for d in long_dirs if (Path(d) / HISTORY_FILE).is_file()]
    final = [curve[-1] for curve in curves]
    taus = []
    for k in range(max(map(len, curves), default=0)):
        ranked = [(curve[k], last) for curve, last in zip(curves, final, strict=True)
                  if len(curve) > k]
        tau = kendall_tau(*zip(*ranked, strict=True)) if len(ranked) > 1 else math.nan
        taus.append(None if math.isnan(tau) else round(tau, 3))
    return taus


def _test_acc(run_dir: Path) -> float | None:
    path = run_dir / RESULTS_FILE
    return json.loads(path.read_text())["test_acc"] if path.is_file() else None

"""Does a cheap score rank genotypes as their retrain does? (issue 27.4)
`python bench/proxy_rank.py --quality runs/search-quality`.

Takes the genotypes bench/search_quality.py retrained (its quality.json: searched, random,
uniform and black-box genotypes, each with its mean retrained test accuracy over the seeds)
and scores each with the short training proxy of search/proxy.py under every
`--proxy_epochs` (the network of the search's settings trained from scratch on the search's
weight split, scored on 512 images of its alphas' split: the images a search may use; the
black-box strategies rank by it). For the DARTS searches it also takes `derived_acc` where
they recorded it (the one-shot score, which `--genotype best` ranks a search without the
ranking proxy by; a search with the proxy, the `shapes` default since 2026-12-06, skips it).
Kendall's tau-b (tradeoff/rank.py) of each score against
the retrained mean test accuracy says whether the score can rank. `--reference recipe_check`
ranks against the README's 15-epoch retrains of the benchmark's recipe check instead
(<quality>/recipe_check.json, `bench/search_quality.py --recipe_check`), for the genotypes it
holds.

Prints ONE JSON line and writes it to <quality>/proxy_rank.json. Each score is kept in
<quality>/proxy/<label>/<genotype>.json (label: `10ep`, or `10ep-b32` under another
`--proxy_batch_size`), so a rerun resumes; processes started on the same
directory (one thread each: OMP_NUM_THREADS=1) share the genotypes through quality/runs.py's
claims; each prints the table as it stands (`complete`: every score is in), so a last plain
run prints the whole one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import experiment  # noqa: E402
import genotypes  # noqa: E402
import train_search  # noqa: E402
from preflight import check_at_least  # noqa: E402
from quality import runs  # noqa: E402
from quality.recipe import RECIPE_FILE  # noqa: E402
from runner.errors import exit_status  # noqa: E402
from runner.files import atomic_write_json  # noqa: E402
from search.proxy import ProxyData, ProxyRecipe, proxy_accuracy  # noqa: E402
from tradeoff.plan import parse_numbers  # noqa: E402
from tradeoff.rank import kendall_tau  # noqa: E402

QUALITY_FILE = "quality.json"
REPORT_FILE = "proxy_rank.json"
LONG_REPORT_FILE = "proxy_rank_long.json"  # --reference recipe_check
RECIPE_CHECK_FILE = "recipe_check.json"
REFERENCES = ("retrain", "recipe_check")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--quality", default="runs/search-quality",
                        help="a bench/search_quality.py directory holding quality.json")
    parser.add_argument("--proxy_epochs", default="4,10",
                        help="comma-separated epochs of each proxy recipe (4: the black-box "
                             "strategies' default)")
    parser.add_argument("--proxy_batch_size", type=int, default=None,
                        help="batch size of the proxy (default: the search's)")
    parser.add_argument("--reference", default="retrain", choices=REFERENCES,
                        help="what the scores are ranked against: the benchmark's retrain "
                             "(mean over seeds) or the long recipe of its recipe check")
    return parser.parse_args(argv)


def search_settings(quality: Path) -> argparse.Namespace:
    """The DARTS searches' settings (train_search.py's flags with the benchmark's
    --search_args), so the proxy trains on their split with their network size."""
    recorded = json.loads((quality / RECIPE_FILE).read_text())
    argv = ["--data", str(quality / "data"), *shlex.split(recorded.get("search_args") or "")]
    if recorded.get("multipliers"):
        argv += ["--multipliers", recorded["multipliers"]]
    return train_search.parse_args(argv)


def recipe_label(recipe: ProxyRecipe, search_batch_size: int) -> str:
    """What a recipe's scores are kept and reported by: its epochs, and its batch size where
    it is not the search's."""
    batch = "" if recipe.batch_size == search_batch_size else f"-b{recipe.batch_size}"
    return f"{recipe.epochs}ep{batch}"


def score_file(quality: Path, label: str, name: str) -> Path:
    return quality / "proxy" / label / f"{name}.json"


def score_all(rows: list[dict], quality: Path, settings: argparse.Namespace,
              recipes: dict[str, ProxyRecipe]) -> None:
    """Score every genotype under every recipe that has no kept score and no live owner."""
    emulation = train_search.check_inputs(settings)
    dataset = experiment.load_data(settings)
    proxy_data = ProxyData.of_search(dataset, settings.train_portion, settings.data_seed,
                                     settings.val_images)
    for label, recipe in recipes.items():
        for row in rows:
            path = score_file(quality, label, row["name"])
            if path.is_file():
                continue
            with runs.claimed(path.with_suffix("")) as mine:
                if not mine:
                    continue
                started = time.time()
                score = proxy_accuracy(genotypes.from_dict(row["genotype"]), proxy_data, recipe,
                                       emulation=emulation)
                atomic_write_json(path, {"proxy_acc": score, "seconds": time.time() - started,
                                         "recipe": dataclasses.asdict(recipe)})


def derived_acc(quality: Path, row: dict) -> float | None:
    """A DARTS search's `derived_acc` (its genotype.json), None for other groups and for a
    search that ranked by the proxy instead."""
    path = quality / row["name"] / genotypes.GENOTYPE_FILE
    if row["group"] != "searched" or not path.is_file():
        return None
    return json.loads(path.read_text()).get("derived_acc")


def report(rows: list[dict], quality: Path, recipes: dict[str, ProxyRecipe]) -> dict:
    """Per genotype its scores; per score its tau-b against the retrained mean test accuracy
    (over the genotypes that have the score)."""
    table = []
    for row in rows:
        entry = {"name": row["name"], "group": row["group"], "test_acc_mean": row["test_acc_mean"],
                 "derived_acc": derived_acc(quality, row)}
        for label in recipes:
            path = score_file(quality, label, row["name"])
            kept = json.loads(path.read_text()) if path.is_file() else {}
            entry[f"proxy_{label}"] = kept.get("proxy_acc")
            entry[f"proxy_{label}_s"] = kept.get("seconds")
        table.append(entry)
    scores = {"derived_acc": "derived_acc", **{f"proxy_{k}": f"proxy_{k}" for k in recipes}}
    taus = {}
    for label, key in scores.items():
        scored = [e for e in table if e[key] is not None]
        tau = kendall_tau([e[key] for e in scored], [e["test_acc_mean"] for e in scored])
        taus[label] = {"genotypes": len(scored),
                       "kendall_tau": None if math.isnan(tau) else tau}  # nan: too few to rank
        seconds = [e[f"{key}_s"] for e in scored if e.get(f"{key}_s") is not None]
        if seconds:
            taus[label]["mean_s"] = sum(seconds) / len(seconds)
    return {"benchmark": "proxy_rank", "quality": str(quality),
            "complete": all(e[f"proxy_{k}"] is not None for e in table for k in recipes),
            "recipes": {f"proxy_{k}": dataclasses.asdict(r) for k, r in recipes.items()},
            "scores": taus, "genotypes": table}


def long_recipe_rows(rows: list[dict], quality: Path) -> list[dict]:
    """The rows the recipe check retrained under its long recipe, with that test accuracy
    as `test_acc_mean` (one seed)."""
    path = quality / RECIPE_CHECK_FILE
    if not path.is_file():
        raise ValueError(f"--reference recipe_check: no {path}; run bench/search_quality.py "
                         f"--recipe_check --out {quality} first")
    check = json.loads(path.read_text())
    long = dict(zip(check["genotypes"], check["long_test_acc"], strict=True))
    return [{**row, "test_acc_mean": long[row["name"]]} for row in rows if row["name"] in long]


def main(argv=None) -> int:
    args = parse_args(argv)
    return exit_status(lambda: benchmark(args))


def benchmark(args) -> int:
    quality = Path(args.quality)
    if not (quality / QUALITY_FILE).is_file():
        raise ValueError(f"--quality {quality}: no {QUALITY_FILE}; run bench/search_quality.py "
                         f"(its last `--groups none` pass writes it) or name its directory")
    epochs_list = parse_numbers(args.proxy_epochs, "--proxy_epochs")
    if not epochs_list or any(e != int(e) for e in epochs_list):
        raise ValueError(f"--proxy_epochs {args.proxy_epochs!r}: give whole epochs, e.g. '4,10'")
    epochs_list = [int(e) for e in epochs_list]
    for epochs in epochs_list:
        check_at_least("--proxy_epochs", epochs, 1, "a proxy trains at least one epoch")
    settings = search_settings(quality)
    recipes = {}
    for epochs in epochs_list:
        recipe = ProxyRecipe.from_settings(settings, epochs, args.proxy_batch_size)
        recipes[recipe_label(recipe, settings.batch_size)] = recipe
    rows = [r for r in json.loads((quality / QUALITY_FILE).read_text())["genotypes"]
            if r.get("genotype") is not None]
    if args.reference == "recipe_check":
        rows = long_recipe_rows(rows, quality)
    score_all(rows, quality, settings, recipes)
    summary = {**report(rows, quality, recipes), "reference": args.reference}
    report_file = REPORT_FILE if args.reference == "retrain" else LONG_REPORT_FILE
    atomic_write_json(quality / report_file, summary)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Running the benchmark's sub-runs into their fixed directories: resumable (a finished run
is kept, an interrupted one continues from its checkpoint), each search's wall time kept in
`<out>/wall/<name>.json` (summed over resumed sessions) so that the black-box strategies get
the DARTS search's wall time, and each retrain's genotype file made when its source exists.
Processes that fill one directory share its work: a sub-run is claimed (`<run_dir>.claim`,
created exclusively, holding the owner's pid) before it starts, and another process skips it
while the owner lives; a dead owner's claim is taken over, and the run continues from its
checkpoint."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import time
from pathlib import Path

import genotypes
import train_search
from blackbox.records import read_front
from quality import plan
from reporting.retrain_report import FINAL_EVAL_TABLES
from runner.files import atomic_write_json
from runner.rundir import CHECKPOINT_FILE

RETRAIN_DIR = "retrain"
SKIP = "skip"  # a planned genotype that does not exist (a black-box front too small)
CLAIM_SUFFIX = ".claim"


def run_program(main, argv: list[str], run_dir: Path, done_file: str) -> float | None:
    """Run a program into `run_dir` unless it finished; continue it from its checkpoint.
    Returns the seconds it ran now, None when another live process has claimed it."""
    if (run_dir / done_file).is_file():
        return 0.0
    with claimed(run_dir) as mine:
        if not mine:
            return None
        if (run_dir / done_file).is_file():  # its owner finished it between the two checks
            return 0.0
        if (run_dir / CHECKPOINT_FILE).is_file():
            argv = ["--resume", str(run_dir)]
        else:
            argv = [*argv, "--save", str(run_dir)]
        started = time.time()
        status = main(argv)
        if status != 0:
            raise SystemExit(f"search_quality: sub-run {run_dir} failed with status {status}; "
                             f"fix it and rerun to continue")
        return time.time() - started


def claim_path(run_dir: Path) -> Path:
    return run_dir.with_name(run_dir.name + CLAIM_SUFFIX)


def claim_owner(path: Path) -> int | None:
    """The pid in a claim file; None when it is gone. An empty file (being written) counts as
    a live owner's: pid -1."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else -1


def alive(pid: int) -> bool:
    if pid in (-1, os.getpid()):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def claimed(run_dir: Path):
    """Yields True when this process holds `run_dir`'s claim (released on exit), False while
    another live process holds it. A dead owner's claim is removed and taken."""
    path = claim_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            owner = claim_owner(path)
            if owner is not None and alive(owner):
                yield False
                return
            path.unlink(missing_ok=True)  # its owner died: the run resumes here
            continue
        os.write(handle, str(os.getpid()).encode())
        os.close(handle)
        try:
            yield True
        finally:
            path.unlink(missing_ok=True)
        return
    yield False  # another process took the stale claim between our two tries


def others_working(out: Path) -> bool:
    """Whether another live process holds a claim under `out` (so waiting may pay off)."""
    for path in out.rglob(f"*{CLAIM_SUFFIX}"):
        owner = claim_owner(path)
        if owner is not None and owner != os.getpid() and alive(owner):
            return True
    return False


def wall_s(out: Path, name: str) -> float | None:
    path = out / "wall" / f"{name}.json"
    return json.loads(path.read_text())["wall_s"] if path.is_file() else None


def darts_wall_s(args, out: Path) -> float | None:
    """--blackbox_time_s, else the mean wall time of the finished DARTS searches."""
    if args.blackbox_time_s is not None:
        return args.blackbox_time_s
    times = [wall_s(out, s["name"]) for s in plan.searches(args)
             if s["strategy"] == "darts" and (out / s["name"] / genotypes.GENOTYPE_FILE).is_file()]
    times = [t for t in times if t is not None]
    return sum(times) / len(times) if times else None


def search_argv(args, out: Path, search: dict, budget_s: float | None = None) -> list[str]:
    argv = ["--data", str(out / "data"), "--seed", str(search["seed"]), "--runs_dir", str(out)]
    if args.multipliers:
        argv += ["--multipliers", args.multipliers]
    if search["strategy"] == "darts":
        argv += ["--epochs", str(args.search_epochs),
                 "--energy_weight", f"{search['energy_weight']:g}"]
        for key, value in getattr(args, "search_defaults", {}).items():
            argv += [f"--{key}", f"{value:g}"]
    else:
        seconds = max(1, round(budget_s or 1))
        argv += ["--strategy", search["strategy"], "--time_budget_s", str(seconds),
                 *shlex.split(args.blackbox_args)]
    return argv + shlex.split(args.search_args)


def train_argv(args, out: Path, genotype: str, seed: int, recipe: dict | None = None) -> list[str]:
    """A retrain under the benchmark's recipe (or `recipe`: epochs and n_train, None = the
    program's default)."""
    recipe = recipe or {"epochs": args.retrain_epochs, "n_train": args.retrain_n_train}
    argv = ["--data", str(out / "data"), "--genotype", genotype, "--seed", str(seed),
            "--stl", "F(test_acc >= 0)", "--final_eval", FINAL_EVAL_TABLES]
    for flag, value in recipe.items():
        if value is not None:
            argv += [f"--{flag}", str(value)]
    return argv + shlex.split(args.train_args)


def run_search(args, out: Path, search: dict) -> bool:
    """Run one search (False: a black-box search waiting for a DARTS search's wall time, or a
    search another process runs)."""
    budget = None
    if search["strategy"] != "darts":
        budget = darts_wall_s(args, out)
        if budget is None:
            return False
    seconds = run_program(train_search.main, search_argv(args, out, search, budget),
                          out / search["name"], genotypes.GENOTYPE_FILE)
    if seconds is None:
        return False
    if seconds:
        atomic_write_json(out / "wall" / f"{search['name']}.json",
                          {"wall_s": (wall_s(out, search["name"]) or 0.0) + seconds})
    return True


def genotype_source(args, out: Path, entry: dict) -> str | None:
    """The --genotype of an entry's retrain; None while its source is not there yet, SKIP
    when it never will be."""
    if "search" in entry:
        search_dir = out / entry["search"]
        return str(search_dir) if (search_dir / genotypes.GENOTYPE_FILE).is_file() else None
    path = out / "genotypes" / f"{entry['name']}.json"
    if path.is_file():
        return str(path)
    if "genotype" in entry:
        genotypes.save(entry["genotype"], path, baseline=entry["group"])
    elif "best_random" in entry:
        best = best_random(args, out)
        if best is None:
            return None
        cell = genotypes.load(out / "genotypes" / f"{best}.json")
        genotypes.save(plan.on_every_conv(cell, entry["best_random"]), path,
                       baseline="uniform", cell=best)
    else:
        search_name, index = entry["blackbox"]
        if not (out / search_name / genotypes.GENOTYPE_FILE).is_file():
            return None
        front = read_front(out / search_name)
        pick = plan.front_pick(len(front), args.blackbox_front, index)
        if pick is None:
            return SKIP
        genotypes.save(genotypes.from_dict(front[pick]["genotype"]), path,
                       baseline=entry["group"], val_acc=front[pick]["val_acc"])
    return str(path)


def retrain_dir(out: Path, name: str, seed: int) -> Path:
    return out / RETRAIN_DIR / f"{name}-seed{seed}"


def results(out: Path, name: str, seeds: int) -> dict[int, dict]:
    """The results.json of each finished retrain seed of one genotype."""
    found = {}
    for seed in range(1, seeds + 1):
        path = retrain_dir(out, name, seed) / "results.json"
        if path.is_file():
            found[seed] = json.loads(path.read_text())
    return found


def pending(args, out: Path, entries: list[dict]) -> list[str]:
    """The planned genotypes that still lack a retrain seed (a void black-box pick excepted)."""
    return [e["name"] for e in entries
            if genotype_source(args, out, e) != SKIP
            and len(results(out, e["name"], args.seeds)) < args.seeds]


def best_random(args, out: Path) -> str | None:
    """The random genotype of highest mean test accuracy, once every one has every seed
    (fixed in `<out>/best_random.json` when first found)."""
    record = out / "best_random.json"
    if record.is_file():
        return json.loads(record.read_text())["name"]
    means = {}
    for entry in plan.genotypes_plan(args):
        if entry["group"] == "random":
            found = results(out, entry["name"], args.seeds)
            if len(found) < args.seeds:
                return None
            means[entry["name"]] = sum(r["test_acc"] for r in found.values()) / len(found)
    if not means:
        return None
    name = max(means, key=means.get)
    atomic_write_json(record, {"name": name, "test_acc_mean": means[name]})
    return name

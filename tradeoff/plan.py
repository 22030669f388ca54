"""The plan of a sweep: which searches, retrains and baselines to run, each with a fixed
directory name inside the sweep directory and the argv of its program, and the genotype files
of the baselines (random samples of the search space, published cells with a multiplier applied
to every conv op, searched cells with their multipliers stripped).

Names: `search-ew0.5` / `search-b12` (energy weight / budget), `train-ew0.5`,
`baseline-exact-ew0.5`, `baseline-random-s1`, `baseline-DARTS_V2`, `baseline-DARTS_V2@trunc6`;
with several multiplier sets each name gets the set as a suffix (`search-ew0.5-exact+trunc6`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

import genotypes
from reporting.retrain_report import RESULTS_FILE
from tradeoff.table import conv_multiplier, search_fields, search_label

GENOTYPE_DIR = "genotypes"
FLOAT_SET = "float"  # a multiplier set without approximate candidates
STEPS = 4  # DARTS cells: 4 intermediate nodes


@dataclass
class SubRun:
    """One planned run. `program` is 'search' or 'train'; a train run's genotype is a search
    directory, a published name or a file under `genotypes/` made by `make` when missing."""

    name: str
    program: str
    kind: str
    argv: list[str]
    genotype: str | None = None
    needs: str | None = None
    make: dict = field(default_factory=dict)

    @property
    def marker(self) -> str:
        return genotypes.GENOTYPE_FILE if self.program == "search" else RESULTS_FILE


def parse_numbers(text: str | None, flag: str) -> list[float]:
    """'0,0.5,2' -> [0.0, 0.5, 2.0]; anything else fails naming `flag`."""
    try:
        return [float(item) for item in (text or "").split(",") if item.strip()]
    except ValueError:
        raise ValueError(f"{flag} {text!r}: give comma-separated numbers such as "
                         f"'0,0.5,2'") from None


def parse_multiplier_sets(text: str) -> list[list[str]]:
    """'exact,trunc6;drum4;float' -> [['exact', 'trunc6'], ['drum4'], []]."""
    sets = []
    for group in text.split(";"):
        names = [name.strip() for name in group.split(",") if name.strip()]
        sets.append([] if names == [FLOAT_SET] else names)
    return sets


def set_tag(multipliers: list[str]) -> str:
    return "+".join(Path(name).stem for name in multipliers) or FLOAT_SET


def search_points(args) -> list[tuple[str, list[str]]]:
    """(tag, extra search flags) for every energy weight and energy budget of the sweep."""
    points = [(f"ew{w:g}", ["--energy_weight", f"{w:g}"])
              for w in parse_numbers(args.energy_weights, "--energy_weights")]
    points += [(f"b{b:g}", ["--energy_budget", f"{b:g}", "--budget_control", args.budget_control])
               for b in parse_numbers(args.energy_budgets, "--energy_budgets")]
    return points


def common_argv(args, sweep_dir: Path, name: str) -> list[str]:
    argv = ["--dataset", args.dataset, "--seed", str(args.seed), "--device", args.device,
            "--runs_dir", str(sweep_dir), "--save", str(sweep_dir / name)]
    for flag in ("data", "n_train", "n_test", "lut_dir"):
        if getattr(args, flag) is not None:
            argv += [f"--{flag}", str(getattr(args, flag))]
    return argv


def search_argv(args, sweep_dir: Path, name: str, multipliers: list[str]) -> list[str]:
    argv = common_argv(args, sweep_dir, name) + [
        "--epochs", str(args.search_epochs), "--init_channels", str(args.search_channels),
        "--layers", str(args.search_layers), "--batch_size", str(args.search_batch_size),
        "--primitives", args.primitives, "--multipliers", ",".join(multipliers)]
    if not multipliers:  # the float set: float convs only, no multiplier to search
        argv += ["--multiplier_search", "flat"]
    return argv + shlex.split(args.search_args)


def train_argv(args, sweep_dir: Path, name: str, genotype: str) -> list[str]:
    argv = common_argv(args, sweep_dir, name) + [
        "--genotype", genotype, "--epochs", str(args.retrain_epochs),
        "--init_channels", str(args.retrain_channels), "--layers", str(args.retrain_layers),
        "--batch_size", str(args.retrain_batch_size)]
    return argv + shlex.split(args.train_args)


def plan_sweep(args, sweep_dir: Path) -> list[SubRun]:
    """Searches (each followed by its retrain and all-exact baseline), then the random and
    published baselines, in that order."""
    sets = parse_multiplier_sets(args.multiplier_sets)
    runs = []
    for multipliers in sets:
        suffix = f"-{set_tag(multipliers)}" if len(sets) > 1 else ""
        for tag, flags in search_points(args):
            runs += searched_runs(args, sweep_dir, f"{tag}{suffix}", multipliers, flags)
        runs += random_runs(args, sweep_dir, suffix, multipliers)
    all_multipliers = list(dict.fromkeys(m for group in sets for m in group))
    for published in [name for name in args.published.split(",") if name.strip()]:
        for multiplier in [None, *all_multipliers]:
            runs.append(published_run(args, sweep_dir, published.strip(), multiplier))
    return with_retrain_seeds(runs, args, sweep_dir)


SEED_SUFFIX = "-seed"


def with_retrain_seeds(runs: list[SubRun], args, sweep_dir: Path) -> list[SubRun]:
    """With --retrain_seeds N > 1, every retrain runs N times (seeds seed..seed+N-1, named
    `<name>-seed<k>`), so each genotype's accuracy comes with its seed-to-seed spread."""
    count = getattr(args, "retrain_seeds", 1)
    if count <= 1:
        return runs
    seeded = []
    for run in runs:
        if run.program != "train":
            seeded.append(run)
            continue
        for seed in range(args.seed, args.seed + count):
            name = f"{run.name}{SEED_SUFFIX}{seed}"
            argv = _replace_flag(_replace_flag(run.argv, "--seed", str(seed)),
                                 "--save", str(sweep_dir / name))
            seeded.append(SubRun(name, run.program, run.kind, argv, genotype=run.genotype,
                                 needs=run.needs, make=run.make))
    return seeded


def _replace_flag(argv: list[str], flag: str, value: str) -> list[str]:
    index = argv.index(flag)
    return [*argv[:index + 1], value, *argv[index + 2:]]


def searched_runs(args, sweep_dir, tag, multipliers, flags) -> list[SubRun]:
    search = f"search-{tag}"
    runs = [SubRun(search, "search", "searched",
                   search_argv(args, sweep_dir, search, multipliers) + flags),
            SubRun(f"train-{tag}", "train", "searched",
                   train_argv(args, sweep_dir, f"train-{tag}", str(sweep_dir / search)),
                   genotype=str(sweep_dir / search), needs=search)]
    if args.exact_baselines:
        runs.append(file_run(args, sweep_dir, f"baseline-exact-{tag}", "exact", needs=search,
                             make={"strip": search}))
    return runs


def random_runs(args, sweep_dir, suffix, multipliers) -> list[SubRun]:
    import operations
    from approx.settings import Emulation

    primitives = [p.strip() for p in args.primitives.split(",") if p.strip()]
    candidates = operations.candidate_ops(primitives, (), Emulation(args.lut_dir))
    space = list(dict.fromkeys(["exact", *multipliers])) if multipliers else []
    return [file_run(args, sweep_dir, f"baseline-random-s{seed}{suffix}", "random",
                     make={"random": candidates, "multipliers": space, "seed": seed,
                           "label": f"random s{seed}{suffix.replace('-', ' ')}"})
            for seed in range(1, args.random_baselines + 1)]


def published_run(args, sweep_dir, published: str, multiplier: str | None) -> SubRun:
    if genotypes.published(published) is None:
        raise ValueError(f"--published {published}: not one of {', '.join(genotypes.PUBLISHED)}"
                         f" or a backbone (resnet8, resnet14, resnet20)")
    name = f"baseline-{published}" + (f"@{Path(multiplier).stem}" if multiplier else "")
    return file_run(args, sweep_dir, name, "published",
                    make={"published": published, "multiplier": multiplier})


def file_run(args, sweep_dir, name, kind, needs=None, make=None) -> SubRun:
    path = str(sweep_dir / GENOTYPE_DIR / f"{name}.json")
    return SubRun(name, "train", kind, train_argv(args, sweep_dir, name, path), genotype=path,
                  needs=needs, make=make or {})


# ----------------------------------------------------------------------------- genotype files
def sample_genotype(candidates: list[str], seed: int,
                    multipliers: list[str] | None = None) -> genotypes.Genotype:
    """A DARTS cell pair drawn uniformly from the candidate ops (and, for conv ops, from
    `multipliers` when the space is factorised; see search.space.SearchSpace)."""
    from search.space import SearchSpace

    return SearchSpace(tuple(candidates), tuple(multipliers or ())).sample_genotype(seed, STEPS)


def map_ops(genotype: genotypes.Genotype, rename) -> genotypes.Genotype:
    return genotype._replace(normal=[(rename(op), i) for op, i in genotype.normal],
                             reduce=[(rename(op), i) for op, i in genotype.reduce])


def with_multiplier(genotype, multiplier: str | None):
    """Every conv op on `multiplier` (None: the float ops as published)."""
    if not isinstance(genotype, genotypes.Genotype):  # a backbone: every conv
        return genotype if multiplier is None else genotype.with_multiplier(multiplier)
    return map_ops(genotype, lambda op: op if multiplier is None or conv_multiplier(op) is None
                   else f"{genotypes.split_op_name(op)[0]}@{multiplier}")


def stripped(genotype):
    """The same cell with every '@multiplier' removed: all conv ops in float32."""
    if not isinstance(genotype, genotypes.Genotype):
        return genotype.with_multiplier(None)
    return map_ops(genotype, lambda op: genotypes.split_op_name(op)[0])


def make_genotype(run: SubRun, sweep_dir: Path) -> bool:
    """Write the run's baseline genotype file if missing; False when the baseline is void (an
    all-exact variant of a searched cell that has no multiplier to strip)."""
    path = Path(run.genotype)
    if path.is_file():
        return True
    make = run.make
    if "random" in make:
        genotype = sample_genotype(make["random"], make["seed"], make.get("multipliers"))
        meta = {"kind": "random", "label": make["label"], "seed": make["seed"],
                "candidates": make["random"], "multipliers": make.get("multipliers")}
    elif "published" in make:
        genotype = with_multiplier(genotypes.published(make["published"]), make["multiplier"])
        meta = {"kind": "published", "published": make["published"],
                "multiplier": make["multiplier"],
                "label": run.name.removeprefix("baseline-") + ("" if make["multiplier"]
                                                             else " (float)")}
    else:
        record = genotypes.read_record(sweep_dir / make["strip"] / genotypes.GENOTYPE_FILE)
        genotype = stripped(record["genotype"])
        if genotype == record["genotype"]:
            return False
        meta = {"kind": "exact", "search": make["strip"],
                "label": f"{search_label(search_fields(record))} all-float"}
    genotypes.save(genotype, path, baseline=meta)
    return True

"""Sweep the accuracy-energy trade-off: `python sweep.py --energy_weights 0,0.5,2`.

Runs one search per energy weight (or per energy budget with `--energy_budgets`, under the
budget controller), for each multiplier set, retrains every derived genotype with the same
budget, trains the baselines with that budget too, and writes the table (tradeoff.csv/.json,
column `pareto`), the hypervolume and the figures into the sweep directory (see analyze.py).

Baselines: `baseline-exact-<tag>` is a searched genotype with every '@multiplier' stripped (the
same cell in float32 arithmetic; not run when the cell has no multiplier); `baseline-random-s<k>`
samples the sweep's candidate set (seed k); `baseline-<NAME>` is a published cell as published
(float32) and `baseline-<NAME>@<m>` the same cell with multiplier m on every conv op, for each
multiplier of the sweep. Their genotypes are written to <sweep>/genotypes/*.json.

Every sub-run has a fixed directory in the sweep directory (search-ew0.5, train-ew0.5, ...).
Rerunning the same command (or `--resume SWEEP_DIR`) continues a partly finished sweep: a run
with its genotype.json / results.json is kept, a run with a checkpoint is resumed.
sweep.json lists the planned runs, their command lines and status.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import genotypes
from preflight import check_at_least
from runner.errors import EXIT_FAILED, EXIT_OK, ONE_LINE_ERRORS, OneLineError, exit_status
from runner.files import atomic_write_json
from runner.rundir import CHECKPOINT_FILE, default_run_dir
from tradeoff.checks import check_runs
from tradeoff.plan import SubRun, make_genotype, plan_sweep
from tradeoff.report import add_reference_args, analyze, print_summary, reference_of

MANIFEST_FILE = "sweep.json"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in --help, and the description's paragraphs kept."""


class SweepError(RuntimeError):
    """A sub-run failed or left no result."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    sweep = parser.add_argument_group("sweep")
    sweep.add_argument("--out", default=None, help="sweep directory (None: runs/sweep-<time>)")
    sweep.add_argument("--resume", default=None, metavar="SWEEP_DIR",
                       help="continue the sweep in SWEEP_DIR with its saved command line")
    sweep.add_argument("--energy_weights", default=None,
                       help="comma-separated lambdas, one search each (None: 0,0.5,2 "
                            "unless --energy_budgets is given)")
    sweep.add_argument("--energy_budgets", default=None,
                       help="comma-separated budgets in uJ/image, one search each")
    sweep.add_argument("--budget_control", default="pi", help="controller used with budgets")
    sweep.add_argument("--multiplier_sets", default="exact,trunc6",
                       help="';'-separated multiplier sets, e.g. 'exact,trunc6;drum4;float'")
    sweep.add_argument("--primitives", default=",".join(genotypes.PRIMITIVES),
                       help="candidate primitives of the searches and random baselines")
    sweep.add_argument("--random_baselines", type=int, default=2,
                       help="number of random genotypes (seeds 1..N) per multiplier set")
    sweep.add_argument("--published", default="DARTS_V2,PC_DARTS",
                       help="published genotypes to retrain ('' for none)")
    sweep.add_argument("--exact_baselines", action=argparse.BooleanOptionalAction, default=True,
                       help="retrain each searched cell with its multipliers stripped")
    sweep.add_argument("--max_runs", type=int, default=None,
                       help="stop after this many sub-runs (rerun to continue)")
    sweep.add_argument("--subprocess", action="store_true",
                       help="run each sub-run as `python <program>.py` instead of in-process")
    add_reference_args(sweep)
    add_program_args(parser)
    args = parser.parse_args(argv)
    check_at_least("--random_baselines", args.random_baselines, 0, "a count of genotypes")
    check_at_least("--retrain_seeds", args.retrain_seeds, 1, "each genotype is retrained once "
                   "or more")
    if args.energy_weights is None and args.energy_budgets is None:
        args.energy_weights = "0,0.5,2"
    return args


def add_program_args(parser: argparse.ArgumentParser) -> None:
    common = parser.add_argument_group("passed to both programs")
    common.add_argument("--dataset", default="shapes")
    common.add_argument("--data", default=None)
    common.add_argument("--n_train", type=int, default=1024)
    common.add_argument("--n_test", type=int, default=512)
    common.add_argument("--seed", type=int, default=2)
    common.add_argument("--device", default="auto")
    common.add_argument("--lut_dir", default=None)
    search = parser.add_argument_group("search (train_search.py)")
    search.add_argument("--search_epochs", type=int, default=6)
    search.add_argument("--search_channels", type=int, default=8, help="--init_channels")
    search.add_argument("--search_layers", type=int, default=5)
    search.add_argument("--search_batch_size", type=int, default=64)
    search.add_argument("--search_args", default="", help="more train_search.py flags, quoted")
    train = parser.add_argument_group("retrain (train.py), the same for every genotype")
    train.add_argument("--retrain_epochs", type=int, default=6)
    train.add_argument("--retrain_channels", type=int, default=8, help="--init_channels")
    train.add_argument("--retrain_layers", type=int, default=5)
    train.add_argument("--retrain_batch_size", type=int, default=64)
    train.add_argument("--retrain_seeds", type=int, default=1,
                       help="retrain every genotype with this many seeds (--seed, --seed + 1, "
                            "...); the table then also gives each genotype's mean and spread")
    train.add_argument("--train_args", default="", help="more train.py flags, quoted")


def resolve_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Arguments and the command line to record; `--resume DIR` replays DIR's command line
    (flags given now are appended, so they win)."""
    args = parse_args(argv)
    if args.resume is None:
        args.out = args.out or str(default_run_dir("sweep", "runs"))
        return args, (argv if "--out" in argv else [*argv, "--out", args.out])
    manifest = Path(args.resume) / MANIFEST_FILE
    if not manifest.is_file():
        raise FileNotFoundError(f"--resume {args.resume}: no {MANIFEST_FILE} there")
    index = argv.index("--resume")
    now = argv[:index] + argv[index + 2:]
    saved = json.loads(manifest.read_text())["argv"]
    replay = [*saved, *now, "--out", args.resume]
    return parse_args(replay), replay


def status_of(run: SubRun, sweep_dir: Path) -> str:
    path = sweep_dir / run.name
    if (path / run.marker).is_file():
        return "finished"
    return "partial" if (path / CHECKPOINT_FILE).is_file() else "planned"


def write_manifest(sweep_dir: Path, argv: list[str], runs: list[SubRun], status: dict) -> None:
    entries = [{"name": r.name, "program": r.program, "kind": r.kind, "genotype": r.genotype,
                "needs": r.needs, "status": status.get(r.name) or status_of(r, sweep_dir),
                "argv": r.argv} for r in runs]
    atomic_write_json(sweep_dir / MANIFEST_FILE, {"argv": argv, "runs": entries})


def run_program(run: SubRun, argv: list[str], use_subprocess: bool) -> int:
    if use_subprocess:
        script = Path(__file__).resolve().parent / f"{_module(run)}.py"
        return subprocess.run([sys.executable, str(script), *argv], check=False).returncode
    import importlib

    return importlib.import_module(_module(run)).main(argv)


def _module(run: SubRun) -> str:
    return "train_search" if run.program == "search" else "train"


def execute(run: SubRun, sweep_dir: Path, use_subprocess: bool) -> str:
    """Run (or resume) one sub-run; return its new status, raise SweepError on failure."""
    if run.needs and not (sweep_dir / run.needs / genotypes.GENOTYPE_FILE).is_file():
        raise SweepError(f"{run.name} needs {run.needs}, which has not finished")
    if run.make and not make_genotype(run, sweep_dir):
        return "void"
    resume = status_of(run, sweep_dir) == "partial"
    argv = run.argv + (["--resume", str(sweep_dir / run.name)] if resume else [])
    print(f"[sweep] {'resuming' if resume else 'running'} {run.name}: python {_module(run)}.py "
          f"{shlex.join(argv)}", flush=True)
    try:
        code = run_program(run, argv, use_subprocess)
    except Exception as error:  # noqa: BLE001 - any crash of a sub-run stops the sweep clearly
        raise SweepError(f"sub-run {run.name} crashed ({type(error).__name__}: {error}); its "
                         f"command: python {_module(run)}.py {shlex.join(argv)}") from error
    if code != 0:
        raise SweepError(f"sub-run {run.name} failed with exit status {code}; its command: "
                         f"python {_module(run)}.py {shlex.join(argv)}; fix and rerun the sweep "
                         f"(finished runs are kept)")
    if status_of(run, sweep_dir) != "finished":
        raise SweepError(f"sub-run {run.name} returned 0 but wrote no {run.marker}")
    return "finished"


def run_sweep(args, argv: list[str]) -> Path:
    sweep_dir = Path(args.out)
    runs = plan_sweep(args, sweep_dir)
    check_runs(runs, _module)  # every sub-run's flags, before the sweep directory exists
    sweep_dir.mkdir(parents=True, exist_ok=True)
    status: dict[str, str] = {}
    write_manifest(sweep_dir, argv, runs, status)
    executed = 0
    for run in runs:
        if status_of(run, sweep_dir) == "finished":
            print(f"[sweep] {run.name}: finished earlier, kept", flush=True)
            continue
        if args.max_runs is not None and executed >= args.max_runs:
            print(f"[sweep] stopping after {executed} runs (--max_runs); rerun to continue")
            break
        status[run.name] = execute(run, sweep_dir, args.subprocess)
        executed += status[run.name] == "finished"
        write_manifest(sweep_dir, argv, runs, status)
    return sweep_dir


# a failed sub-run ends the sweep with status 1 (finished runs are kept for a rerun)
SWEEP_ERRORS = (OneLineError((SweepError,), EXIT_FAILED, "sweep error"), *ONE_LINE_ERRORS)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return exit_status(lambda: sweep(argv), SWEEP_ERRORS)


def sweep(argv: list[str]) -> int:
    """Run (or continue) the sweep of `argv`, then its table and summary; the exit status."""
    args, recorded = resolve_args(argv)
    sweep_dir = run_sweep(args, recorded)
    print_summary(analyze(sweep_dir, reference=reference_of(args)))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

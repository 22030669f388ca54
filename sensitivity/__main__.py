"""`python -m sensitivity RUN_DIR`: which multiplier where in a retrained network. Each layer
group alone on each candidate multiplier (accuracy drop, energy saved), a greedy per-group
assignment within an accuracy tolerance, and the uniform assignments for comparison; a JSON
file (default RUN_DIR/sensitivity.json) and a table (docs/reference/sensitivity.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import genotypes
import preflight
from approx import Emulation, MultiplierError
from export.deps import ExportError
from export.source import load_run, read_config
from runner.errors import exit_status
from runner.files import atomic_write_json
from search import runs as search_runs
from sensitivity.analysis import analyse
from sensitivity.compare import ComparedGenotypeError
from sensitivity.measure import RECALIBRATION_BATCHES
from sensitivity.report import table

DEFAULT_MULTIPLIERS = "drum6,kulkarni,drum4,bam4_4"
OUTPUT_FILE = "sensitivity.json"
GREEDY_GENOTYPE_FILE = "greedy_genotype.json"  # beside the output JSON


class SensitivityInputError(ValueError):
    """A bad input of the command line: one line, exit status 2."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a train.py run directory (its --save)")
    parser.add_argument("--multipliers", default=DEFAULT_MULTIPLIERS,
                        help="comma-separated candidate multipliers (built-in names, EvoApprox "
                             "names in the run's --lut_dir, or .bin paths); default: %(default)s")
    parser.add_argument("--n_test", type=int, default=None,
                        help="evaluate on the first N test images (default: all of the run's)")
    parser.add_argument("--tolerance", type=float, default=0.01,
                        help="greatest accuracy drop (fraction) of the greedy assignment "
                             "against the network as trained; default: %(default)s")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output JSON file (default: RUN_DIR/{OUTPUT_FILE})")
    parser.add_argument("--lut_dir", default=None,
                        help="directory of EvoApproxLib .bin tables (default: the run's)")
    parser.add_argument("--compare", action="append", default=[], metavar="GENOTYPE",
                        help="also evaluate this genotype's multipliers on the run's weights "
                             "(a genotype JSON file, a search run directory or a published "
                             "name; the run's ops on the run's edges, other multipliers), e.g. "
                             "a search's derived assignment against the greedy one; repeatable")
    parser.add_argument("--recalibrate", type=int, default=RECALIBRATION_BATCHES,
                        metavar="BATCHES",
                        help="re-estimate the BatchNorm statistics of every evaluated "
                             "assignment on this many batches of 256 training images (0: keep "
                             "the trained statistics, which mistake a biased multiplier's "
                             "offset for damage); default: %(default)s")
    parser.add_argument("--mode", choices=("exact", "lowrank"), default="exact",
                        help="emulation of the approximate convs: exact (the truth tables, as "
                             "results.json's test_acc) or lowrank (faster); default: %(default)s")
    return parser.parse_args(argv)


def check_numbers(args) -> None:
    if not args.tolerance >= 0:
        raise SensitivityInputError(f"--tolerance {args.tolerance}: must be >= 0 (the greatest "
                                    f"accuracy drop as a fraction, e.g. 0.01 for one point)")
    if args.recalibrate < 0:
        raise SensitivityInputError(f"--recalibrate {args.recalibrate}: must be >= 0 (batches "
                                    f"of training images; 0 keeps the trained statistics)")
    if args.n_test is not None and args.n_test < 1:
        raise SensitivityInputError(f"--n_test {args.n_test}: must be >= 1 (or leave it out "
                                    f"for the whole test set)")


def run_config(run_dir: Path) -> dict:
    """The train.py config of `run_dir`, or a one-line error naming the directory."""
    if not run_dir.is_dir():
        raise SensitivityInputError(f"{run_dir}: no such directory; give the --save directory "
                                    f"of a train.py run")
    try:
        return read_config(run_dir)
    except ExportError as error:
        raise SensitivityInputError(str(error).removeprefix("export: ")) from None


def candidates(names: str, emulation: Emulation) -> list:
    """The multipliers of --multipliers, each once, resolved in the run's library."""
    specs = list(dict.fromkeys(name.strip() for name in names.split(",") if name.strip()))
    if not specs:
        raise SensitivityInputError("--multipliers is empty; name at least one multiplier, "
                                    f"e.g. --multipliers {DEFAULT_MULTIPLIERS}")
    try:
        preflight.check_multiplier_power("--multipliers", specs, emulation)
        return [emulation.multiplier(spec) for spec in specs]
    except MultiplierError as error:
        raise SensitivityInputError(f"--multipliers: {error}") from None


def compared_genotype(spec: str) -> genotypes.Genotype:
    """The genotype of a --compare value, or a one-line error naming it."""
    try:
        genotype, _ = search_runs.resolve(spec)
    except (genotypes.GenotypeError, OSError, ValueError) as error:
        raise SensitivityInputError(f"--compare: {error}") from None
    if not isinstance(genotype, genotypes.Genotype):
        raise SensitivityInputError(f"--compare {spec}: a backbone genotype; give a cell "
                                    f"genotype like the run's")
    return genotype


def run(args) -> tuple[dict, Path]:
    """(the sensitivity document, the JSON file written)."""
    check_numbers(args)
    config = run_config(args.run_dir)
    lut_dir = args.lut_dir if args.lut_dir is not None else config.get("lut_dir")
    multipliers = candidates(args.multipliers, Emulation(lut_dir))
    compare = [(spec, compared_genotype(spec)) for spec in args.compare]
    model, dataset, config = load_run(args.run_dir, lut_dir)
    try:
        document = {"run_dir": str(args.run_dir), **analyse(
            model, genotypes.from_dict(config["genotype"]), dataset, multipliers,
            tolerance=args.tolerance, n_test=args.n_test, mode=args.mode,
            energy_table=config.get("energy_table"), compare=compare,
            emulation=Emulation(lut_dir), recalibrate=args.recalibrate)}
    except (ComparedGenotypeError, MultiplierError) as error:
        raise SensitivityInputError(str(error)) from None
    return document, atomic_write_json(args.out or args.run_dir / OUTPUT_FILE, document)


def save_greedy_genotype(document: dict, path: Path) -> Path | None:
    """The greedy assignment of a cell network as a genotype file beside `path` (the output
    JSON), which `train.py --genotype FILE` retrains; None for other networks."""
    greedy = document["greedy"]
    if "genotype" not in greedy:
        return None
    return genotypes.save(genotypes.from_dict(greedy["genotype"]),
                          path.with_name(GREEDY_GENOTYPE_FILE), sensitivity=str(path),
                          assignment=f"greedy within {document['tolerance']:g}: accuracy "
                                     f"{greedy['accuracy']:.4f} on {document['run_dir']}'s "
                                     f"weights, {greedy['energy_uj']:.3f} uJ/image")


def report(args) -> None:
    document, path = run(args)
    print(table(document))
    print(f"written: {path}")
    genotype_path = save_greedy_genotype(document, path)
    if genotype_path is not None:
        print(f"greedy genotype: {genotype_path} (retrain: python train.py --genotype "
              f"{genotype_path})")


def main(argv=None) -> int:
    args = parse_args(argv)
    return exit_status(lambda: report(args))


if __name__ == "__main__":
    sys.exit(main())

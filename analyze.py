"""Build the accuracy-energy trade-off table and figures from existing run directories:
`python analyze.py runs/sweep-1`.

Reads every finished search (genotype.json) and retrain (results.json) run found recursively
below RUNS_DIR, runs nothing, and writes to --out (default RUNS_DIR): tradeoff.csv and
tradeoff.json (one row per retrained genotype, plus searches not yet retrained; column `pareto`
marks the non-dominated rows: maximise test_acc, minimise energy_uj; the JSON also holds the
front's hypervolume and its reference point), plots/*.png (tradeoff, curves, multipliers,
alphas-<search>) and the same figures in TensorBoard under <out>/summary.
"""

from __future__ import annotations

import argparse
import sys

from runner.errors import exit_status
from tradeoff.report import add_reference_args, analyze, print_summary, reference_of


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs_dir", help="directory searched recursively for run directories")
    parser.add_argument("--out", default=None, help="where to write (default: RUNS_DIR)")
    add_reference_args(parser)
    parser.add_argument("--no_tensorboard", action="store_true", help="skip the event file")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return exit_status(lambda: print_summary(analyze(args.runs_dir, args.out, reference_of(args),
                                                     tensorboard=not args.no_tensorboard)))


if __name__ == "__main__":
    sys.exit(main())

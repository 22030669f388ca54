"""`python -m energy_estimator --genotype DARTS_V2`: cost report of a CIFAR-style network.

Energy per image on an accelerator (`--accelerator`, a preset or a JSON file), broken down into
multipliers, other arithmetic, on-chip and DRAM traffic (`--plot` draws it). `DARTS_V2@m` puts
every conv on multiplier m (cells and fixed layers); a plain published name keeps float cell
convs with its fixed layers on the exact 8-bit multiplier.

Builds `model.NetworkCIFAR(init_channels, num_classes, layers, auxiliary=False, genotype)` from
a resolved `--genotype` (a published name, a JSON file, a run directory or `best`), prints the
per-layer table (grouped by `--depth` name components) and the totals per image. A backbone
genotype (`resnet20@mul8u_197B`, a backbone file or search) builds its `ResNetCIFAR`;
--init_channels and --layers do not apply to it.
"""

from __future__ import annotations

import argparse
import sys

from approx.settings import Emulation
from energy_estimator.latency import measure_latency
from energy_estimator.report import profile
from energy_estimator.table import add_accelerator_argument, load_energy_table
from model import build_network as network_of
from runner.errors import exit_status
from runner.files import atomic_write_json
from search.runs import resolve

NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "shapes": 10}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m energy_estimator", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--genotype", default="DARTS_V2",
                        help="published name, genotype JSON file, run directory or 'best'")
    parser.add_argument("--runs_dir", default="runs", help="where '--genotype best' looks")
    parser.add_argument("--init_channels", type=int, default=36, help="C of the first cells")
    parser.add_argument("--layers", type=int, default=20, help="number of cells")
    parser.add_argument("--dataset", default="cifar10", choices=sorted(NUM_CLASSES),
                        help="sets the number of classes")
    parser.add_argument("--num_classes", type=int, default=None,
                        help="number of classes (overrides --dataset)")
    parser.add_argument("--input_size", type=int, default=32, help="image height and width")
    add_accelerator_argument(parser)
    parser.add_argument("--lut_dir", default=None, help="directory of EvoApprox .bin tables")
    parser.add_argument("--depth", type=int, default=2,
                        help="group layers by this many name components (0: every layer)")
    parser.add_argument("--latency", action="store_true", help="also measure CPU latency")
    parser.add_argument("--json", default=None, help="write the full report to this file")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="draw the energy breakdown (per --depth group and in total)")
    return parser.parse_args(argv)


def build_network(args: argparse.Namespace):
    """NetworkCIFAR of a cell genotype, or the ResNetCIFAR of a backbone genotype."""
    genotype, _ = resolve(args.genotype, runs_dir=args.runs_dir)
    num_classes = args.num_classes or NUM_CLASSES[args.dataset]
    return network_of(genotype, args.init_channels, num_classes, args.layers, False,
                      emulation=Emulation(args.lut_dir))


def main(argv=None) -> int:
    args = parse_args(argv)
    return exit_status(lambda: report_cost(args))


def report_cost(args: argparse.Namespace) -> None:
    """Print (and with --json write) the cost report; table, genotype, op and multiplier errors
    are ValueErrors with a clear message (one line, exit status 2)."""
    input_size = (3, args.input_size, args.input_size)
    table = load_energy_table(args.energy_table)
    network = build_network(args)
    report = profile(network, input_size, energy_table=table)
    shape = (f"C={args.init_channels}, layers={args.layers}" if hasattr(network, "cells")
             else str(network.genotype))
    print(f"genotype {args.genotype}: {type(network).__name__} {shape}, input {input_size}")
    print(report.table(depth=args.depth or None))
    record = {"genotype": args.genotype, **report.to_dict()}
    if args.latency:
        record["latency"] = measure_latency(network, input_size)
        print(f"latency: {record['latency']['median_ms_per_image']:.2f} ms per image (CPU, "
              f"batch 1, median of {record['latency']['repeats']})")
    if args.json:
        atomic_write_json(args.json, record)
        print(f"report written to {args.json}")
    if args.plot:
        from energy_estimator.plot import plot_breakdown

        plot_breakdown(report, args.plot, args.depth or None,
                       f"{args.genotype} on {report.accelerator}")
        print(f"breakdown plot written to {args.plot}")


if __name__ == "__main__":
    sys.exit(main())

"""`python -m approx`: list multipliers with cost and error figures, or print the fidelity table."""

import argparse
import sys

from approx.fidelity import fidelity_table
from approx.lowrank import resolve_rank
from approx.registry import available_multipliers, load_multiplier
from runner.errors import exit_status


def describe(spec: str, lut_dir) -> str:
    m = load_multiplier(spec, lut_dir=lut_dir)
    energy = "unknown" if m.relative_energy is None else f"{m.relative_energy:.3f}"
    return (
        f"| {m.name} | {'s' if m.signed else 'u'} | {energy} | {m.mae_pct:.4g} | {m.wce_pct:.4g} "
        f"| {m.mre_pct:.4g} | {m.ep_pct:.4g} | {resolve_rank(m, None)} |"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m approx", description=__doc__)
    parser.add_argument("names", nargs="*", help="multiplier specs (default: all available)")
    parser.add_argument("--lut_dir", default=None, help="directory of <name>.bin truth tables")
    parser.add_argument("--table", action="store_true",
                        help="print the low-rank fidelity table (realistic 3x3 conv, 64 channels)")
    args = parser.parse_args(argv)
    return exit_status(lambda: list_multipliers(args))


def list_multipliers(args: argparse.Namespace) -> None:
    """Print the table of `args.names` (or of all available multipliers)."""
    names = args.names or available_multipliers(args.lut_dir)
    if args.table:
        print(fidelity_table(names, args.lut_dir))
        return
    print("| name | sign | relative_energy | MAE % | WCE % | MRE % | EP % | lowrank rank |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        print(describe(name, args.lut_dir))


if __name__ == "__main__":
    sys.exit(main())

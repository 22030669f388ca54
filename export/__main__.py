"""`python -m export RUN_DIR`: the deployed int8 network of a retrain run as ONNX (QDQ form,
each conv's multiplier in its node metadata), the per-layer multiplier assignment with MACs
and energy (JSON) and the multiplier tables (.bin); with --check, ONNX Runtime's agreement
with the project's emulation on the run's test set (docs/reference/export.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import data
import deploy
import energy_estimator
from export import check
from export.assignment import assignment, write_tables
from export.deps import ExportError
from export.graph import to_onnx
from export.source import load_run
from runner.files import atomic_write_json

EXIT_BAD_INPUT = 2


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a train.py run directory (--save)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default: RUN_DIR/export)")
    parser.add_argument("--lut_dir", default=None,
                        help="directory of EvoApproxLib .bin tables (default: the run's)")
    parser.add_argument("--check", action="store_true",
                        help="also export every layer on the exact signed int8 multiplier and "
                             "compare ONNX Runtime with the emulation on the test set")
    return parser.parse_args(argv)


def export_network(net, out: Path, stem: str, input_size, note: dict):
    """Write `<out>/<stem>.onnx`; returns (its path, the ModelProto)."""
    path, proto = out / f"{stem}.onnx", to_onnx(net, input_size, note)
    path.write_bytes(proto.SerializeToString())
    return path, proto


def run(args) -> dict:
    model, dataset, config = load_run(args.run_dir, args.lut_dir)
    out = args.out or args.run_dir / "export"
    out.mkdir(parents=True, exist_ok=True)
    input_size = (3, *dataset.test.images.shape[-2:])
    calibration = deploy.calibration_loader(dataset)
    net = deploy.build(model, calibration)
    note = {"axdarts.run": str(args.run_dir), "axdarts.calibration_images":
            deploy.CALIBRATION_IMAGES, "axdarts.dataset": dataset.name}
    written = {"onnx": str(export_network(net, out, "model", input_size, note)[0])}
    cost = energy_estimator.profile(model, input_size, config.get("energy_table"))
    written["assignment"] = str(atomic_write_json(out / "assignment.json",
                                                  assignment(net, cost)))
    written["tables"] = [str(p) for p in write_tables(net, out)]
    if args.check:
        exact_net = deploy.build(model, calibration, check.signed_exact())
        path, proto = export_network(exact_net, out, "model_exact_int8", input_size, note)
        test = data.BatchLoader(dataset.test, 256, mean=dataset.mean, std=dataset.std,
                                train=False)
        result = {"onnx": str(path), **check.agreement(exact_net, proto, test)}
        written["check"] = str(atomic_write_json(out / "check.json", result))
        written["check_result"] = result
    return written


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        written = run(args)
    except (ExportError, deploy.DeployError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(written, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

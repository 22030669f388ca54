"""Benchmark of energy_estimator: one JSON line with the DARTS_V2 CIFAR-10 cost figures and
the time to profile it and to build the standard search-space cost table.

Run from the repository root: PYTHONPATH=. .venv/bin/python bench/energy.py
"""

from __future__ import annotations

import json
import time

from energy_estimator import measure_latency, profile
from genotypes import DARTS_V2
from model import NetworkCIFAR
from operations import candidate_ops
from search.cost_tables import supernet_costs
from topology import NetworkShape


def main() -> None:
    network = NetworkCIFAR(36, 10, 20, False, DARTS_V2)
    started = time.perf_counter()
    report = profile(network, (3, 32, 32))
    profile_s = time.perf_counter() - started
    candidates = candidate_ops(multipliers=["trunc6", "drum4"])
    started = time.perf_counter()
    supernet_costs(candidates, NetworkShape(16, 10, 8))
    table_s = time.perf_counter() - started
    latency = measure_latency(network, (3, 32, 32), batch_size=8, repeats=3)
    print(json.dumps({
        "bench": "energy", "genotype": "DARTS_V2", "params_m": report.params / 1e6,
        "macs_m": report.macs / 1e6, "energy_uj": report.energy_uj,
        "arith_energy_uj": report.arith_energy_uj, "memory_energy_uj": report.memory_energy_uj,
        "profile_s": profile_s, "supernet_costs_s": table_s,
        "num_candidates": len(candidates),
        "cpu_ms_per_image_batch8": latency["median_ms_per_image"],
    }))


if __name__ == "__main__":
    main()

"""How long the benchmark takes, from measured per-epoch times, and how many random genotypes
equal the searches' compute (Li & Talwalkar, 2019: random search given the same compute).

Times are one-thread seconds on the 2-core AMD EPYC (AVX-512) machine of the default runs
(docs/default_runs.md, 2026-12-01/02): a default search epoch (3200 images, half for the
alphas) 28.8 s (1440 s / 50 epochs, the equal-compute budget of docs/reference/strategies.md);
a retrain epoch 24-30 s on 10,000 images at OMP_NUM_THREADS=1, so 2.7 ms per image-epoch;
RUN_OVERHEAD_S covers a run's start, data, profiling and test pass (an estimate, not measured).
The wall-time estimate assumes `processes` one-thread processes (--groups) kept busy to the
end; with other work on the machine it is a lower bound.
"""

from __future__ import annotations

import math

SEARCH_EPOCH_S = 28.8
RETRAIN_IMAGE_EPOCH_S = 27.0 / 10000
RUN_OVERHEAD_S = 15.0
DEFAULT_SEARCH_IMAGES = 3200
MIN_RANDOM = 8


def search_s(args) -> float:
    """One DARTS search (and so one black-box search, which gets its wall time)."""
    return args.search_epochs * SEARCH_EPOCH_S + RUN_OVERHEAD_S


def retrain_s(args) -> float:
    """One retrain of one genotype under one seed."""
    return args.retrain_epochs * args.retrain_n_train * RETRAIN_IMAGE_EPOCH_S + RUN_OVERHEAD_S


def equal_compute_random(args, searches: int) -> int:
    """As many random genotypes as the DARTS searches' compute would retrain under every seed,
    and at least MIN_RANDOM."""
    per_genotype = args.seeds * retrain_s(args)
    return max(MIN_RANDOM, math.floor(searches * search_s(args) / per_genotype))


def estimate(args, counts: dict, processes: int = 2) -> dict:
    """Minutes of one-thread work and of wall time for the planned counts
    (`searches`, `blackbox_searches`, `genotypes`)."""
    searching = (counts["searches"] + counts["blackbox_searches"]) * search_s(args)
    retraining = counts["genotypes"] * args.seeds * retrain_s(args)
    total = searching + retraining
    return {"search_min": round(searching / 60, 1), "retrain_min": round(retraining / 60, 1),
            "one_thread_min": round(total / 60, 1), "processes": processes,
            "wall_min": round(total / 60 / processes, 1)}

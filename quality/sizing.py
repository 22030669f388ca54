"""How long the benchmark takes, from measured per-epoch times, and how many random genotypes
equal the searches' compute (Li & Talwalkar, 2019: random search given the same compute).

Times are one-thread seconds. A search epoch: 28.8 s (the default 50-epoch search's 1440 s
on the 2-core AMD EPYC of docs/default_runs.md, 2026-12-01/02, before int8 end to end; not
remeasured since, so likely low now that the fixed layers are emulated too). A retrain,
measured on 2026-12-02 as CPU time (time.process_time, OMP_NUM_THREADS=1, on a machine
shared 4x over, so CPU time, not wall time) of `train.py --genotype DARTS_V2@drum4 --epochs 1
--n_train 2000`: 15.3 s for the epoch with its 1024-image test pass and the start, so 7.65 ms
per training image-epoch, and 68.1 s for the final evaluations (43.5 s: surrogate, real
tables, exact int8; 24.6 s: float32 and the deployed int8 network), paid once per retrain.
The wall-time estimate assumes `processes` one-thread processes (--groups) kept busy to the
end; with other work on the machine it is a lower bound.
"""

from __future__ import annotations

import math

SEARCH_EPOCH_S = 28.8
RETRAIN_IMAGE_EPOCH_S = 15.3 / 2000
RETRAIN_FINAL_EVAL_S = 68.1
RUN_OVERHEAD_S = 15.0  # a search's start and end (an estimate, not measured)
MIN_RANDOM = 8


def search_s(args) -> float:
    """One DARTS search (and so one black-box search, which gets its wall time)."""
    return args.search_epochs * SEARCH_EPOCH_S + RUN_OVERHEAD_S


def retrain_s(args) -> float:
    """One retrain of one genotype under one seed."""
    return args.retrain_epochs * args.retrain_n_train * RETRAIN_IMAGE_EPOCH_S + RETRAIN_FINAL_EVAL_S


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

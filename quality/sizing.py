"""How long the benchmark takes, from measured per-epoch times, and how many random genotypes
equal the searches' compute (Li & Talwalkar, 2019: random search given the same compute).

Times are one-thread seconds, measured on 2026-12-05 in the benchmark's own run (two
one-thread processes on a 2-core Intel Xeon with AVX-512 and AMX, docs/search_quality.md):
- a search epoch of the default search settings: 23 s while the weights warm up alone (the
  first 40 %), 49 s once the alphas step too (an alpha step before every weight step: the
  alpha steps' 26 s scale by 1 / --arch_every); 55 s at the end for the held-out
  evaluations; the six 20-epoch searches took 820-919 s each;
- a retrain of the benchmark's recipe (5 epochs, 4000 images): 83-102 s of training for the
  genotypes of the default set (4.5 ms per training image-epoch, its test passes included),
  then 12 s to start and for the final pass on the real tables (`--final_eval tables`).
The other kind of machine (AMD EPYC, or AVX2 kernels) may take up to twice as long
(docs/search_profile.md). The wall-time estimate assumes `processes` one-thread processes kept
busy to the end; with other work on the machine it is a lower bound.
"""

from __future__ import annotations

import math

from defaults import SEARCH_DEFAULTS
from train_search import warmup_epochs

SEARCH_WARMUP_EPOCH_S = 23.0
SEARCH_EPOCH_S = 49.0  # with an alpha step before every weight step
SEARCH_END_S = 55.0
RETRAIN_IMAGE_EPOCH_S = 4.5e-3
RETRAIN_FINAL_EVAL_S = 12.0
MIN_RANDOM = 8


def search_s(args) -> float:
    """One DARTS search (and so one black-box search, which gets its wall time): the default
    warm-up share of its epochs at the weights-only time, the rest with alpha steps (one
    before every `arch_every`-th weight step: the directory's, else the default)."""
    shapes = SEARCH_DEFAULTS["shapes"]
    warmup = warmup_epochs(shapes["warmup_epochs"], args.search_epochs)
    arch_every = getattr(args, "search_defaults", shapes)["arch_every"]
    search_epoch = SEARCH_WARMUP_EPOCH_S + (SEARCH_EPOCH_S - SEARCH_WARMUP_EPOCH_S) / arch_every
    return (warmup * SEARCH_WARMUP_EPOCH_S + (args.search_epochs - warmup) * search_epoch
            + SEARCH_END_S)


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

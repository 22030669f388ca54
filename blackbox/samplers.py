"""The samplers of the black-box strategies (optuna's), and their seeding.

- `nsga2`: `NSGAIISampler`, the evolutionary multi-objective algorithm of EvoApproxNAS and
  XAI-NAS (Deb et al., 2002): generations of `population_size` candidates, parents chosen by
  non-dominated rank and crowding distance, uniform crossover and mutation of the parameters.
- `tpe`: multi-objective `TPESampler` (Ozaki et al., 2020; multivariate): after 10 random
  candidates, it models the parameters of the better (non-dominated) candidates against the
  rest and draws where the ratio is high.
- `random`: `RandomSampler`, each parameter uniform: the baseline both must beat.

optuna keeps every sampler's state that matters (NSGA-II's generations and parents, the
trials TPE models) in the study's storage; the only state in memory is the random generator.
So the runner builds a fresh sampler before every candidate, seeded by the run's seed and the
number of candidates completed so far (`candidate_seed`): a run interrupted and resumed draws
the same candidates as one that was not.
"""

from __future__ import annotations

import numpy as np
import optuna

STRATEGIES = ("nsga2", "tpe", "random")


def candidate_seed(seed: int, completed: int) -> int:
    """A well-mixed seed for the sampler drawing the candidate after `completed` others."""
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, completed]).generate_state(1)[0])


def make_sampler(strategy: str, seed: int, population_size: int) -> optuna.samplers.BaseSampler:
    """The optuna sampler of `strategy`, seeded."""
    if strategy == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population_size, seed=seed)
    if strategy == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if strategy == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"--strategy {strategy}: choose darts or one of {', '.join(STRATEGIES)}")

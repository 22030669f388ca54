"""Black-box search strategies over the differentiable search's space: NSGA-II, multi-objective
TPE and random search (optuna's samplers), each candidate scored by a short training proxy
and by its deployed energy from the search's cost tables. See docs/reference/strategies.md.

encoding: the cell space as categorical parameters, and back to a Genotype; samplers: the
strategies and their seeding; objectives: a candidate's scores; study: storage, resume and
budget; records: what a run writes; runner: the loop; cli: the flags."""

"""The flags of the black-box strategies, declared once (train_search.py adds them)."""

from __future__ import annotations

import argparse

from blackbox.samplers import STRATEGIES
from blackbox.study import Budget

# equal compute: the wall time of the default differentiable search on the embedded data, on
# the slower of the project's 2-core machines (an Intel Xeon, 2026-12-02; docs/GUIDE)
DEFAULT_TIME_BUDGET_S = 24 * 60


def add_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("search strategy")
    group.add_argument("--strategy", default="darts", choices=("darts", *STRATEGIES),
                       help="darts: the differentiable search; nsga2, tpe, random: black-box "
                            "searches over the same space, each candidate trained by a short "
                            "proxy and priced by the same cost tables (docs/reference/"
                            "strategies.md)")
    group.add_argument("--trials", type=int, default=None,
                       help="black-box: stop after this many candidates")
    group.add_argument("--time_budget_s", type=float, default=None,
                       help=f"black-box: start no candidate after this many seconds of "
                            f"candidates (default when --trials is not given either: "
                            f"{DEFAULT_TIME_BUDGET_S}, the default DARTS search's wall time)")
    group.add_argument("--proxy_epochs", type=int, default=4,
                       help="black-box: epochs of the proxy that trains each candidate (the "
                            "search's --init_channels, --layers, --batch_size and, with "
                            "--weight_optimizer sgd, --learning_rate, by SGD on its weights "
                            "split; scored on its val split)")
    group.add_argument("--population_size", type=int, default=20,
                       help="nsga2: candidates per generation")


def budget(args) -> Budget:
    """The run's budget (the default time when neither --trials nor --time_budget_s)."""
    if args.trials is None and args.time_budget_s is None:
        return Budget(seconds=DEFAULT_TIME_BUDGET_S)
    return Budget(args.trials, args.time_budget_s)

"""A black-box search run: draw a candidate, score it, tell the study, write the records;
until the budget is spent; then choose the genotype to retrain.

`run` is what `train_search.py --strategy nsga2|tpe|random` calls; `optimise` is the loop
alone (a study, a problem, the settings), returning the Pareto front, for benchmarks.
"""

from __future__ import annotations

import time

import optuna

import energy_estimator
import genotypes
from blackbox import cli, encoding, records
from blackbox.objectives import Problem, build_problem
from blackbox.samplers import candidate_seed, make_sampler
from blackbox.study import Budget, open_study
from runner import distributed, skeleton
from runner.errors import EXIT_INTERRUPTED, EXIT_OK
from runner.rundir import config_markdown


def draw_and_score(study: optuna.Study, problem: Problem, strategy: str, seed: int,
                   population_size: int, completed: int) -> None:
    """One candidate: a freshly seeded sampler draws it, the problem scores it, the study is
    told (an interrupted candidate stays RUNNING in the study, for `fail_interrupted`)."""
    started = time.time()
    study.sampler = make_sampler(strategy, candidate_seed(seed, completed), population_size)
    trial = study.ask(encoding.distributions(problem.space))
    genotype = encoding.decode(trial.params, problem.space)
    scores = problem.evaluate(genotype)
    trial.set_user_attr("genotype", genotypes.to_dict(genotype))
    for key, value in scores.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("seconds", time.time() - started)
    study.tell(trial, [scores["val_acc"], scores["energy_uj"]])


def optimise(study: optuna.Study, problem: Problem, strategy: str, seed: int,
             population_size: int, budget: Budget, on_candidate=None) -> list[dict]:
    """Score candidates until `budget` is spent; the Pareto front of all completed ones.
    `on_candidate(records, front)` is called after each."""
    done = records.trial_records(study)
    while not budget.spent(done):
        draw_and_score(study, problem, strategy, seed, population_size, len(done))
        done = records.trial_records(study)
        if on_candidate is not None:
            on_candidate(done, records.pareto_front(done))
    return records.pareto_front(done)


def run(args, dataset, device, emulation) -> int:
    """The black-box search of train_search.py's settings; its exit status."""
    if args.space != "darts":
        raise ValueError(f"--strategy {args.strategy} searches DARTS cells: use --space darts "
                         f"(or --strategy darts for --space {args.space})")
    if args.population_size < 2:
        raise ValueError(f"--population_size {args.population_size}: a generation needs at "
                         f"least 2 candidates")
    if distributed.world_size() > 1:
        raise ValueError(f"--strategy {args.strategy} runs in one process: start it with "
                         f"python, not torchrun")
    budget = cli.budget(args)
    problem = build_problem(args, dataset, device, emulation,
                            energy_estimator.load_energy_table(args.energy_table))
    run_dir = skeleton.open_run(args, "search", write=True)
    study = open_study(run_dir.path, resume=bool(args.resume))
    start(run_dir, args, problem, budget)
    max_energy_uj = problem.max_energy_uj()

    def progress(done, front):
        records.write_progress(run_dir, done, front,
                               records.front_hypervolume(front, max_energy_uj))
        run_dir.save_checkpoint({"candidates": len(done)})

    try:
        front = optimise(study, problem, args.strategy, args.seed, args.population_size,
                         budget, progress)
    except KeyboardInterrupt:
        run_dir.logger.info(f"interrupted: completed candidates are kept in {run_dir.path}; "
                            f"continue with --resume {run_dir.path}")
        run_dir.close()
        return EXIT_INTERRUPTED
    records.write_genotype(run_dir, args, problem, front, len(records.trial_records(study)))
    run_dir.close()
    return EXIT_OK


def start(run_dir, args, problem: Problem, budget: Budget) -> None:
    """config.json and a first checkpoint for a new run (`--resume` looks for both); the log."""
    if not args.resume:
        config = {**vars(args), "candidates": list(problem.space.ops)}
        run_dir.save_config(config)
        run_dir.writer.add_text("config", config_markdown(config), 0)
        run_dir.save_checkpoint({"candidates": 0})
    run_dir.logger.info(f"run directory: {run_dir.path}")
    run_dir.logger.info(f"{args.strategy} search over {problem.space.describe()}; budget "
                        f"{budget.describe()}; proxy {vars(problem.recipe)} on "
                        f"{len(problem.proxy_data.train)} / {len(problem.proxy_data.val)} "
                        f"images; energy ({args.energy_objective}) from the search's cost tables")

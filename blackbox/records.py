"""What a black-box search writes: one record per candidate, the Pareto front, the chosen
genotype, TensorBoard scalars.

- `history.json`: one record per completed candidate (`trial`, `genotype`, `val_acc`: the
  proxy's accuracy on the search's validation split, `test_acc`: held-out, never used to
  choose, `energy_uj`, `seconds`), rebuilt from the study after each candidate;
- `pareto.json`: the non-dominated candidates in (energy_uj, val_acc), by energy, with the
  hypervolume under a fixed reference point (1.1 x the costliest genotype's energy, acc 0);
- `genotype.json`: the same record as the differentiable search's, so that
  `train.py --genotype RUN_DIR` and `--genotype best` retrain it. The front member chosen
  (`choose`): with `--energy_budget`, the most accurate (val) within it; otherwise the best
  `val_acc - lambda * energy_uj / E_ref`, with the search's lambda (`--energy_weight`) and
  E_ref (the expected energy at uniform alphas), the trade-off the DARTS linear energy loss
  makes. `derived_acc` (what `--genotype best` ranks by) is its held-out accuracy after the
  proxy's training.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna

import genotypes
from reporting.search_report import genotype_costs
from runner.files import atomic_write_json
from runner.rundir import HISTORY_FILE
from tradeoff.pareto import hypervolume, pareto_mask, reference_point

PARETO_FILE = "pareto.json"
SCORES = ("val_acc", "test_acc", "energy_uj", "seconds")


def trial_records(study: optuna.Study) -> list[dict]:
    """One record per completed candidate, in trial order."""
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return [{"trial": t.number, "genotype": t.user_attrs["genotype"],
             **{key: t.user_attrs[key] for key in SCORES}} for t in trials]


def pareto_front(records: list[dict]) -> list[dict]:
    """The non-dominated records in (low energy_uj, high val_acc), by energy."""
    mask = pareto_mask([(r["energy_uj"], r["val_acc"]) for r in records])
    return sorted((r for r, keep in zip(records, mask, strict=True) if keep),
                  key=lambda r: r["energy_uj"])


def front_hypervolume(front: list[dict], max_energy_uj: float) -> float:
    """The front's hypervolume under the fixed reference (1.1 x `max_energy_uj`, acc 0)."""
    reference = reference_point([(max_energy_uj, 0.0)])
    return hypervolume([(r["energy_uj"], r["val_acc"]) for r in front], reference)


def choose(front: list[dict], energy_budget_uj, energy_weight: float,
           reference_uj: float) -> tuple[dict, str]:
    """The front member to retrain and the rule that chose it (module doc)."""
    if energy_budget_uj is not None:
        within = [r for r in front if r["energy_uj"] <= energy_budget_uj]
        if within:
            return (max(within, key=lambda r: (r["val_acc"], -r["energy_uj"])),
                    f"most accurate (val_acc) within the {energy_budget_uj:g} uJ budget")
    rule = (f"best val_acc - {energy_weight:g} * energy_uj / {reference_uj:.4g} uJ (lambda "
            f"and E_ref of the differentiable search)")
    if energy_budget_uj is not None:
        rule += f"; no candidate met the {energy_budget_uj:g} uJ budget"
    best = max(front, key=lambda r: (r["val_acc"] - energy_weight * r["energy_uj"] / reference_uj,
                                     -r["energy_uj"]))
    return best, rule


def read_front(run_dir) -> list[dict]:
    """The Pareto front a black-box run wrote (its pareto.json), for benchmarks."""
    return json.loads((Path(run_dir) / PARETO_FILE).read_text())["front"]


def write_progress(run, records: list[dict], front: list[dict], volume: float) -> None:
    """history.json and pareto.json as they stand, and the last candidate's scalars."""
    atomic_write_json(run.path / HISTORY_FILE, records)
    atomic_write_json(run.path / PARETO_FILE, {"hypervolume": volume, "front": front})
    last, step = records[-1], len(records)
    for key in SCORES:
        run.writer.add_scalar(f"trial/{key}", last[key], step)
    run.writer.add_scalar("front/size", len(front), step)
    run.writer.add_scalar("front/hypervolume", volume, step)
    run.writer.flush()
    run.logger.info(f"candidate {step} (trial {last['trial']}): val acc {last['val_acc']:.3f}, "
                    f"test acc {last['test_acc']:.3f}, energy {last['energy_uj']:.3f} uJ, "
                    f"{last['seconds']:.1f} s | front {len(front)}, hypervolume {volume:.4g}")


def write_genotype(run, args, problem, front: list[dict], num_candidates: int):
    """genotype.json of the chosen front member (module doc); its path."""
    chosen, rule = choose(front, args.energy_budget, args.energy_weight,
                          problem.energy.uniform_uj())
    genotype = genotypes.from_dict(chosen["genotype"])
    costs = genotype_costs(genotype, args, problem.proxy_data.num_classes,
                           problem.test_images.images.shape[-1], problem.emulation)
    space = problem.space
    path = genotypes.save(
        genotype, run.path / genotypes.GENOTYPE_FILE, strategy=args.strategy,
        energy_uj=chosen["energy_uj"], energy_objective=args.energy_objective,
        uniform_energy_uj=problem.energy.uniform_uj(), costs=costs, val_acc=chosen["val_acc"],
        test_acc=chosen["test_acc"], derived_acc=chosen["test_acc"],
        proxy_acc=chosen["val_acc"],  # what `best` ranks by, as DARTS's --rank_proxy_epochs
        energy_budget_uj=args.energy_budget, candidates=list(space.ops),
        multiplier_set=list(space.multipliers), search_space=space.describe(),
        trials=num_candidates, trial=chosen["trial"], selection=rule,
        proxy=vars(problem.recipe), settings=dict(vars(args)))
    run.writer.add_text("genotype/final", f"`{genotype}`", num_candidates)
    run.logger.info(f"chosen: trial {chosen['trial']} ({rule}): {genotype}; retrain with: "
                    f"python train.py --genotype {run.path}")
    return path

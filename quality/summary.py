"""The benchmark's figures from what is on disk: per genotype its group, energies and
per-seed test accuracies with mean, std and min-max; per energy axis and front the
hypervolume of the mean accuracies and its bootstrap 90 % interval (tradeoff/bootstrap.py),
all fronts of an axis under one reference point (1.1 x the axis's largest energy among the
retrained genotypes, accuracy 0; tradeoff/pareto.py).

Axes: `total` is results.json's `energy_uj` (the deployed int8 network's energy per image
under train.py's default accelerator preset), `multiplier` its `energy_mult_uj` (the
multiplications alone; docs/reference/energy_model.md).
"""

from __future__ import annotations

from pathlib import Path

from quality import plan, runs
from tradeoff import bootstrap
from tradeoff.pareto import hypervolume, pareto_mask, reference_point

AXES = {"total": "energy_uj", "multiplier": "energy_mult_uj"}


def genotype_rows(args, out: Path, entries: list[dict]) -> list[dict]:
    rows = []
    for entry in entries:
        found = runs.results(out, entry["name"], args.seeds)
        if not found:
            continue
        first = next(iter(found.values()))
        accs = {seed: r["test_acc"] for seed, r in found.items()}
        rows.append({"name": entry["name"], "group": entry["group"], "seeds": len(accs),
                     "test_acc_by_seed": accs,
                     "test_acc_deployed_int8_by_seed": {
                         seed: r.get("test_acc_deployed_int8") for seed, r in found.items()},
                     **{f"test_acc_{k}": v
                        for k, v in bootstrap.seed_stats(list(accs.values())).items()},
                     "energy_uj": first["energy_uj"], "energy_mult_uj": first["energy_mult_uj"],
                     "energy_arith_uj": first.get("energy_arith_uj"),
                     "genotype": first.get("genotype")})
    return rows


def axis_summary(rows: list[dict], key: str, groups, draws: int, seed: int) -> dict:
    """Reference point, and per group its hypervolume, interval and front members."""
    if not rows:
        return {"reference": None, "fronts": {}}
    reference = reference_point([(r[key], r["test_acc_mean"]) for r in rows])
    fronts = {}
    for group in groups:
        members = [r for r in rows if r["group"] == group]
        points = [(r[key], r["test_acc_mean"]) for r in members]
        seeded = [(r[key], list(r["test_acc_by_seed"].values())) for r in members]
        fronts[group] = {
            "genotypes": len(members),
            "hypervolume": hypervolume(points, reference) if points else None,
            "hypervolume_ci90": bootstrap.hypervolume_interval(seeded, reference, draws, seed),
            "front": [r["name"] for r, on in zip(members, pareto_mask(points), strict=True)
                      if on]}
    return {"reference": list(reference), "fronts": fronts}


def summarise(args, out: Path, entries: list[dict]) -> dict:
    rows = genotype_rows(args, out, entries)
    groups = [g for g in plan.GROUPS if g in {e["group"] for e in entries}]
    return {"axes": {axis: axis_summary(rows, key, groups, args.bootstrap_draws,
                                        args.bootstrap_seed)
                     for axis, key in AXES.items()},
            "bootstrap": {"draws": args.bootstrap_draws, "seed": args.bootstrap_seed,
                          "level": bootstrap.LEVEL,
                          "resampled": "each genotype's retrain seeds, with replacement"},
            "genotypes": rows}

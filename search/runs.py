"""The searches on disk: run discovery and `--genotype` resolution.

`completed_searches` finds the run directories holding a readable genotype.json,
`choose_best` ranks them (`--genotype best`), and `resolve` turns any `--genotype` value (`best`,
a published name of either kind, a JSON file or a run directory) into a genotype and the
record it came from. The records themselves and their JSON I/O are genotypes.py's.
"""

from __future__ import annotations

import json
from pathlib import Path

from backbones import genotype as backbone
from genotypes import (
    GENOTYPE_FILE,
    PUBLISHED,
    Genotype,
    GenotypeError,
    published_cell,
    read_record,
)
from runner.resume import program_of
from runner.rundir import CONFIG_FILE


def completed_searches(runs_dir: str | Path) -> list[tuple[Path, dict]]:
    """Every run directory under `runs_dir` holding a readable genotype.json."""
    return scan_searches(runs_dir)[0]


def scan_searches(runs_dir: str | Path) -> tuple[list[tuple[Path, dict]], list[tuple[Path, str]]]:
    """(the completed searches under `runs_dir`, each run left out with the reason): a
    genotype.json that cannot be read, or a search that has not written one yet."""
    found, skipped = [], []
    for run in sorted(path for path in Path(runs_dir).glob("*") if path.is_dir()):
        if (run / GENOTYPE_FILE).is_file():
            try:
                found.append((run, read_record(run / GENOTYPE_FILE)))
            except GenotypeError as error:
                skipped.append((run, f"damaged {GENOTYPE_FILE} ({error})"))
        elif _is_search(run):
            skipped.append((run, f"no {GENOTYPE_FILE} yet (the search has not finished; "
                                 f"continue it with train_search.py --resume {run})"))
    return found, skipped


def _is_search(run: Path) -> bool:
    try:
        return program_of(json.loads((run / CONFIG_FILE).read_text())) == "train_search.py"
    except (OSError, ValueError):
        return False


def meets_budget(record: dict) -> bool:
    budget = record.get("energy_budget_uj")
    energy = record.get("energy_uj")
    return budget is None or (energy is not None and energy <= budget)


def choose_best(runs_dir: str | Path) -> tuple[Path, dict, str]:
    """`--genotype best`: among the completed searches whose derived genotype meets its
    energy budget (a run without a budget meets it), the one whose derived genotype scored
    highest: by the ranking proxy (`proxy_acc`, `train_search.py --rank_proxy_epochs`: the
    genotype trained from scratch briefly, scored on the search's validation images) where
    a search has it, else by the one-shot `derived_acc` (the discretised cell on test images
    that neither its weights nor its alphas saw); ties go to the lower energy. Searches with
    the proxy rank above those without; searches written before `derived_acc` existed rank
    last, by their `val_acc`. When no search met its budget, all are ranked. The reason lists
    what was compared."""
    searches, skipped = scan_searches(runs_dir)
    left_out = "".join(f"; skipped {run}: {why}" for run, why in skipped)
    if not searches:
        raise GenotypeError(f"--genotype best: no completed search (*/{GENOTYPE_FILE}) under "
                            f"{runs_dir}{left_out}; run train_search.py first or name a genotype "
                            f"({', '.join(PUBLISHED)}), a JSON file or a run directory")
    eligible = [(run, record) for run, record in searches if meets_budget(record)]
    pool = eligible or searches
    run, record = max(pool, key=lambda item: _best_key(item[1]))
    scope = ("that met their energy budget (or had none)" if eligible
             else "(none met its budget, so all were ranked)")
    lines = [f"highest score of the derived genotype (ranking proxy, else one-shot "
             f"held-out accuracy) among {len(pool)} of "
             f"{len(searches)} completed searches {scope}"
             + (f" ({len(skipped)} other run(s) skipped, listed below)" if skipped else "")
             + "; compared:"]
    for other, other_record in searches:
        lines.append(f"  {'*' if other == run else ' '} {other}: " + _describe(other_record))
    lines += [f"  skipped {other}: {why}" for other, why in skipped]
    recipes = sorted({_proxy_recipe(r) for _, r in pool if r.get("proxy_acc") is not None})
    if len(recipes) > 1:
        lines.append(f"  note: the proxy scores compared come from {len(recipes)} recipes "
                     f"({'; '.join(recipes)}), which score on different scales; for a fair "
                     f"ranking run the searches with one --rank_proxy_epochs and "
                     f"--rank_proxy_batch_size")
    return run, record, "\n".join(lines)


def _proxy_recipe(record: dict) -> str:
    """The ranking proxy's recipe a record names (`proxy`: search/proxy.ProxyRecipe fields)."""
    recipe = record.get("proxy")
    if not isinstance(recipe, dict) or "epochs" not in recipe:
        return "recipe not recorded"
    return f"{recipe['epochs']} epochs at batch {recipe.get('batch_size')}"


def _best_key(record: dict) -> tuple:
    """Searches with the ranking proxy's `proxy_acc` first, by it; then those with the
    one-shot `derived_acc`, by it; then the rest by `val_acc`; ties to the lower energy."""
    energy = record.get("energy_uj")
    energy = float("inf") if energy is None else energy
    for rank, key in ((2, "proxy_acc"), (1, "derived_acc")):
        if record.get(key) is not None:
            return rank, record[key], -energy
    return 0, record.get("val_acc") or 0.0, -energy


def _describe(record: dict) -> str:
    budget = record.get("energy_budget_uj")
    energy = record.get("energy_uj")
    proxy, derived = record.get("proxy_acc"), record.get("derived_acc")
    scores = [f"proxy acc {proxy} ({_proxy_recipe(record)})"] if proxy is not None else []
    scores += [f"derived acc {derived}"] if derived is not None else []
    parts = [*(scores or ["no proxy or one-shot score"]),
             f"val acc {record.get('val_acc')}",
             f"energy {energy if energy is None else round(energy, 3)} uJ",
             f"budget {budget if budget is not None else 'none'}",
             "meets budget" if meets_budget(record) else "over budget"]
    return ", ".join(parts)




def resolve(spec: str, runs_dir: str | Path = "runs") -> tuple[Genotype, dict]:
    """Resolve `--genotype`: `best`, a published name, a JSON file or a run directory.

    Returns the genotype and a record describing where it came from (`source`, `reason`,
    and the search metadata such as `energy_budget_uj` when there is any).
    """
    if spec == "best":
        run, record, reason = choose_best(runs_dir)
        return record["genotype"], {**record, "source": str(run), "reason": reason}
    if published_cell(spec) is not None:
        return published_cell(spec), {"source": spec, "reason": "published genotype"}
    path = Path(spec)
    if path.is_dir():
        path = path / GENOTYPE_FILE
    if path.is_file():
        record = read_record(path)
        return record["genotype"], {**record, "source": str(path), "reason": "file"}
    named_backbone = backbone.named(spec)
    if named_backbone is not None:
        return named_backbone, {"source": spec, "reason": "published backbone"}
    raise GenotypeError(f"--genotype {spec}: not 'best', a published name "
                        f"({', '.join(PUBLISHED)}; backbones resnet8, resnet14, resnet20; "
                        f"each optionally @<multiplier>), a JSON file or a run directory with "
                        f"{GENOTYPE_FILE}")

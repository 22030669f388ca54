"""Search-space primitives, the Genotype record, published genotypes, JSON I/O and `--genotype`
resolution (`best`, a published name, a JSON file or a run directory)."""

from __future__ import annotations

import json
from collections import namedtuple
from pathlib import Path

import topology

Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")

# The DARTS search space (Liu et al., ICLR 2019), in the original order.
PRIMITIVES = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
# The primitives that contain convolutions and so may run on an approximate multiplier.
CONV_PRIMITIVES = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
MULTIPLIER_SEPARATOR = "@"
GENOTYPE_FILE = "genotype.json"

# Published cells. DARTS_V1/V2: Liu et al., "DARTS: Differentiable Architecture Search",
# ICLR 2019 (first/second order, CIFAR-10, 3.3 M params for V2). PC_DARTS: Xu et al.,
# "PC-DARTS", ICLR 2020 (CIFAR-10, 3.6 M params). PDARTS: Chen et al., "Progressive DARTS",
# ICCV 2019 (3.4 M params).
DARTS_V1 = Genotype(
    normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
    reduce_concat=[2, 3, 4, 5],
)
DARTS_V2 = Genotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5],
)
PC_DARTS = Genotype(
    normal=[("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
            ("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_3x3", 1)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("sep_conv_5x5", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
            ("sep_conv_3x3", 0), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2)],
    reduce_concat=[2, 3, 4, 5],
)
PDARTS = Genotype(
    normal=[("skip_connect", 0), ("dil_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("sep_conv_3x3", 3), ("sep_conv_3x3", 0), ("dil_conv_5x5", 4)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("avg_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("dil_conv_5x5", 2),
            ("max_pool_3x3", 0), ("dil_conv_3x3", 1), ("dil_conv_3x3", 1), ("dil_conv_5x5", 3)],
    reduce_concat=[2, 3, 4, 5],
)
PUBLISHED = {"DARTS_V1": DARTS_V1, "DARTS_V2": DARTS_V2, "PC_DARTS": PC_DARTS, "PDARTS": PDARTS}
DARTS = DARTS_V2


class GenotypeError(ValueError):
    """A genotype that cannot be parsed, validated or found."""


def split_op_name(op_name: str) -> tuple[str, str | None]:
    """`'sep_conv_3x3@mul8u_197B'` -> `('sep_conv_3x3', 'mul8u_197B')`; no multiplier -> None."""
    base, sep, multiplier = op_name.partition(MULTIPLIER_SEPARATOR)
    return base, (multiplier if sep else None)


def validate(genotype: Genotype, source: str = "genotype") -> Genotype:
    """Check op names and the DAG wiring; return the genotype with lists for concat fields."""
    for cell in ("normal", "reduce"):
        edges = getattr(genotype, cell)
        if not edges or len(edges) % topology.GENOTYPE_INPUTS_PER_NODE:
            raise GenotypeError(f"{source}: '{cell}' needs two (op, input) pairs per node, "
                                f"got {len(edges)} entries")
        for position, edge in enumerate(edges):
            _validate_edge(edge, node=topology.genotype_node(position), cell=cell,
                           source=source)
        concat = list(getattr(genotype, f"{cell}_concat"))
        num_states = topology.node_state(topology.genotype_steps(edges))
        if not concat or any(not (isinstance(i, int) and 0 <= i < num_states) for i in concat):
            raise GenotypeError(f"{source}: '{cell}_concat' {concat} must index states "
                                f"0..{num_states - 1}")
    return genotype._replace(normal_concat=list(genotype.normal_concat),
                             reduce_concat=list(genotype.reduce_concat))


def op_name_problem(op_name: str) -> str | None:
    """Why `op_name` is not a primitive or `<conv primitive>@<multiplier>`; None when it is."""
    base, multiplier = split_op_name(op_name)
    if base not in PRIMITIVES:
        return (f"unknown op '{op_name}'; valid ops: {', '.join(PRIMITIVES)} "
                f"(approximate variants: '<conv op>@<multiplier>')")
    if multiplier is not None and base not in CONV_PRIMITIVES:
        return f"op '{op_name}': only conv ops ({', '.join(CONV_PRIMITIVES)}) run on a multiplier"
    return None


def _validate_edge(edge, node: int, cell: str, source: str) -> None:
    if not (isinstance(edge, (list, tuple)) and len(edge) == 2):
        raise GenotypeError(f"{source}: {cell} edge {edge!r} must be an [op, input] pair")
    op_name, input_index = edge
    problem = op_name_problem(str(op_name))
    if problem:
        raise GenotypeError(f"{source}: {cell} cell: {problem}")
    if not isinstance(input_index, int) or not 0 <= input_index < topology.num_inputs(node):
        raise GenotypeError(f"{source}: {cell} node {node} reads input {input_index!r}, "
                            f"which must be an integer in 0..{topology.num_inputs(node) - 1}")


def to_dict(genotype: Genotype) -> dict:
    if not isinstance(genotype, Genotype):  # another genotype kind, e.g. a ResNet backbone
        return genotype.to_dict()
    return {
        "normal": [[op, int(i)] for op, i in genotype.normal],
        "normal_concat": [int(i) for i in genotype.normal_concat],
        "reduce": [[op, int(i)] for op, i in genotype.reduce],
        "reduce_concat": [int(i) for i in genotype.reduce_concat],
    }


def from_dict(data: dict, source: str = "genotype") -> Genotype:
    from backbones import genotype as backbone

    if backbone.is_backbone_dict(data):
        return backbone.from_dict(data, source)
    fields = ", ".join(Genotype._fields)
    missing = [field for field in Genotype._fields if not isinstance(data, dict)
               or field not in data]
    if missing:
        raise GenotypeError(f"{source}: missing field(s) {', '.join(missing)}; a genotype JSON "
                            f"holds {fields}")
    if not all(isinstance(data[field], list) for field in Genotype._fields):
        raise GenotypeError(f"{source}: the fields {fields} must be JSON lists")
    genotype = Genotype(
        normal=[tuple(edge) if isinstance(edge, list) else edge for edge in data["normal"]],
        normal_concat=data["normal_concat"],
        reduce=[tuple(edge) if isinstance(edge, list) else edge for edge in data["reduce"]],
        reduce_concat=data["reduce_concat"],
    )
    return validate(genotype, source)


def save(genotype: Genotype, path: str | Path, **metadata) -> Path:
    """Write `{"genotype": ..., **metadata}` atomically as JSON."""
    from runner.files import atomic_write_json

    return atomic_write_json(Path(path), {"genotype": to_dict(genotype), **metadata})


def read_record(path: str | Path) -> dict:
    """Read a genotype JSON file: either a bare genotype or `{"genotype": ..., ...}`."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise GenotypeError(f"cannot read genotype file {path}: {error}") from None
    if not isinstance(record, dict):
        raise GenotypeError(f"{path}: expected a JSON object holding a genotype")
    if "genotype" not in record:
        record = {"genotype": record}
    record["genotype"] = from_dict(record["genotype"], source=str(path))
    return record


def load(path: str | Path) -> Genotype:
    return read_record(path)["genotype"]


def completed_searches(runs_dir: str | Path) -> list[tuple[Path, dict]]:
    """Every run directory under `runs_dir` holding a readable genotype.json."""
    found = []
    for path in sorted(Path(runs_dir).glob(f"*/{GENOTYPE_FILE}")):
        try:
            found.append((path.parent, read_record(path)))
        except GenotypeError:
            continue
    return found


def meets_budget(record: dict) -> bool:
    budget = record.get("energy_budget_uj")
    energy = record.get("energy_uj")
    return budget is None or (energy is not None and energy <= budget)


def choose_best(runs_dir: str | Path) -> tuple[Path, dict, str]:
    """`--genotype best`: among the completed searches whose derived genotype meets its
    energy budget (a run without a budget meets it), the one whose derived cell scored the
    highest held-out accuracy (`derived_acc`: the discretised cell on test images that
    neither its weights nor its alphas saw); ties go to the lower energy. Searches written
    before `derived_acc` existed rank below every search that has it, by their `val_acc`.
    When no search met its budget, all are ranked. The reason lists what was compared."""
    searches = completed_searches(runs_dir)
    if not searches:
        raise GenotypeError(f"--genotype best: no completed search (*/{GENOTYPE_FILE}) under "
                            f"{runs_dir}; run train_search.py first or name a genotype "
                            f"({', '.join(PUBLISHED)}), a JSON file or a run directory")
    eligible = [(run, record) for run, record in searches if meets_budget(record)]
    pool = eligible or searches
    run, record = max(pool, key=lambda item: _best_key(item[1]))
    scope = ("that met their energy budget (or had none)" if eligible
             else "(none met its budget, so all were ranked)")
    lines = [f"highest held-out accuracy of the derived cell among {len(pool)} of "
             f"{len(searches)} completed searches {scope}; compared:"]
    for other, other_record in searches:
        lines.append(f"  {'*' if other == run else ' '} {other}: " + _describe(other_record))
    return run, record, "\n".join(lines)


def _best_key(record: dict) -> tuple:
    derived = record.get("derived_acc")
    energy = record.get("energy_uj")
    energy = float("inf") if energy is None else energy
    if derived is not None:
        return 1, derived, -energy
    return 0, record.get("val_acc") or 0.0, -energy


def _describe(record: dict) -> str:
    budget = record.get("energy_budget_uj")
    energy = record.get("energy_uj")
    parts = [f"derived acc {record.get('derived_acc')}", f"val acc {record.get('val_acc')}",
             f"energy {energy if energy is None else round(energy, 3)} uJ",
             f"budget {budget if budget is not None else 'none'}",
             "meets budget" if meets_budget(record) else "over budget"]
    return ", ".join(parts)


def published(name: str):
    """The published cell genotype or backbone (`resnet20`, `resnet8@exact`) named `name`,
    or None."""
    from backbones import genotype as backbone

    if name in PUBLISHED:
        return PUBLISHED[name]
    try:
        return backbone.named(name)
    except GenotypeError:
        return None


def resolve(spec: str, runs_dir: str | Path = "runs") -> tuple[Genotype, dict]:
    """Resolve `--genotype`: `best`, a published name, a JSON file or a run directory.

    Returns the genotype and a record describing where it came from (`source`, `reason`,
    and the search metadata such as `energy_budget_uj` when there is any).
    """
    if spec == "best":
        run, record, reason = choose_best(runs_dir)
        return record["genotype"], {**record, "source": str(run), "reason": reason}
    if spec in PUBLISHED:
        return PUBLISHED[spec], {"source": spec, "reason": "published genotype"}
    path = Path(spec)
    if path.is_dir():
        path = path / GENOTYPE_FILE
    if path.is_file():
        record = read_record(path)
        return record["genotype"], {**record, "source": str(path), "reason": "file"}
    from backbones import genotype as backbone

    named_backbone = backbone.named(spec)
    if named_backbone is not None:
        return named_backbone, {"source": spec, "reason": "published backbone"}
    raise GenotypeError(f"--genotype {spec}: not 'best', a published name "
                        f"({', '.join(PUBLISHED)}; backbones resnet8, resnet14, resnet20, "
                        f"optionally @<multiplier>), a JSON file or a run directory with "
                        f"{GENOTYPE_FILE}")

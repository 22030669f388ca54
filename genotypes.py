"""Search-space primitives, the Genotype record, published genotypes, and the JSON I/O of
genotype records of both kinds (DARTS cells here, ResNet backbones in backbones/genotype.py).
Finding and ranking the searches on disk, and resolving `--genotype`, is search/runs.py's."""

from __future__ import annotations

import json
from collections import namedtuple
from pathlib import Path

import topology
from approx.mixed import FLOAT
from backbones import genotype as backbone
from runner.errors import GenotypeError  # noqa: F401  (re-exported: genotypes.GenotypeError)
from runner.files import atomic_write_json

# `fixed`: the multiplier of every conv outside the cells' searched ops, in four groups: the
# stem, the 1x1 preprocess convs, the FactorizedReduces (s0's preprocessing after a reduction
# and a reducing skip_connect) and the classifier. One multiplier name puts them all on it
# (FLOAT_FIXED: float32); `stem=drum4,preprocess=bam4_4,reduce_skip=bam4_4,classifier=exact`
# (JSON: a {group: multiplier} object) gives each group its own 8-bit multiplier, as a
# per-layer assignment (python -m sensitivity) does. The 4-field DARTS constructor gets the
# exact 8-bit multiplier; a genotype file without the field (written before it existed)
# reads as float32, which is what it meant.
FLOAT_FIXED = FLOAT  # the name by which a multiplier set holds float32 convs
DEFAULT_FIXED = "exact"
FIXED_LAYER_GROUPS = ("stem", "preprocess", "reduce_skip", "classifier")
STEM, PREPROCESS, REDUCE_SKIP, CLASSIFIER = FIXED_LAYER_GROUPS
# a search's --fixed_multiplier may leave groups to the search (`preprocess=search`, or
# `search` for all it can take); never in a genotype. The FactorizedReduces stay fixed: they
# also serve the reducing skip_connects, so their multiplier would couple the op choice.
SEARCHED_FIXED = "search"
SEARCHABLE_FIXED_GROUPS = (STEM, PREPROCESS, CLASSIFIER)
Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat fixed",
                      defaults=(DEFAULT_FIXED,))

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
# The ops without weights (in a normal cell): what a collapsed DARTS cell fills up with.
PARAMETER_FREE_PRIMITIVES = tuple(p for p in PRIMITIVES if p not in CONV_PRIMITIVES + ("none",))
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


def split_op_name(op_name: str) -> tuple[str, str | None]:
    """`'sep_conv_3x3@mul8u_197B'` -> `('sep_conv_3x3', 'mul8u_197B')`; no multiplier -> None."""
    base, sep, multiplier = op_name.partition(MULTIPLIER_SEPARATOR)
    return base, (multiplier if sep else None)


def validate(genotype: Genotype, source: str = "genotype") -> Genotype:
    """Check op names, the DAG wiring and `fixed`; return the genotype with lists for concat
    fields and `fixed` in its canonical form (fixed_spec)."""
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
                             reduce_concat=list(genotype.reduce_concat),
                             fixed=fixed_spec(fixed_assignment(genotype.fixed, source)))


def fixed_assignment(fixed, source: str = "genotype", searchable: bool = False
                     ) -> dict[str, str]:
    """{fixed-layer group: multiplier} of a genotype's `fixed` (a name, a `group=name,...`
    spec or a {group: name} mapping; the comment at FIXED_LAYER_GROUPS). With `searchable`
    (a search's setting) a group may be SEARCHED_FIXED."""
    if isinstance(fixed, str) and "=" not in fixed:
        assignment = dict.fromkeys(FIXED_LAYER_GROUPS, fixed)
    elif isinstance(fixed, (str, dict)):
        pairs = ([item.partition("=")[::2] for item in fixed.split(",")]
                 if isinstance(fixed, str) else list(fixed.items()))
        assignment = dict(pairs)
        if len(assignment) != len(pairs) or sorted(assignment) != sorted(FIXED_LAYER_GROUPS):
            raise GenotypeError(f"{source}: 'fixed' {fixed!r} must give each of "
                                f"{', '.join(FIXED_LAYER_GROUPS)} once, e.g. "
                                f"'stem=exact,preprocess=bam4_4,reduce_skip=bam4_4,"
                                f"classifier=exact'")
        if FLOAT_FIXED in assignment.values():
            raise GenotypeError(f"{source}: 'fixed' {fixed!r}: a per-group assignment is of "
                                f"8-bit multipliers; '{FLOAT_FIXED}' goes on all groups at once")
    else:
        assignment = {}
    for multiplier in assignment.values() or [fixed]:
        if not (isinstance(multiplier, str) and multiplier.strip() == multiplier and multiplier
                and not set(multiplier) & {MULTIPLIER_SEPARATOR, ",", "="}):
            raise GenotypeError(f"{source}: 'fixed' {fixed!r} must name the multiplier of the "
                                f"layers outside the cells' ops (or one per group: "
                                f"{', '.join(FIXED_LAYER_GROUPS)}), or '{FLOAT_FIXED}'")
    assignment = {group: assignment[group] for group in FIXED_LAYER_GROUPS}
    searched = [group for group, m in assignment.items() if m == SEARCHED_FIXED]
    if searched and not searchable:
        raise GenotypeError(f"{source}: 'fixed' {fixed!r}: '{SEARCHED_FIXED}' leaves a group to "
                            f"a search (train_search.py --fixed_multiplier); a genotype names "
                            f"its multipliers")
    if set(searched) - set(SEARCHABLE_FIXED_GROUPS):
        raise GenotypeError(f"{source}: 'fixed' {fixed!r}: only "
                            f"{', '.join(SEARCHABLE_FIXED_GROUPS)} can be searched; "
                            f"{REDUCE_SKIP} (the FactorizedReduces, which also serve the reducing "
                            f"skip_connects) takes a multiplier, e.g. '{REDUCE_SKIP}=exact'")
    return assignment


def fixed_spec(assignment: dict[str, str]) -> str:
    """The `fixed` string of a {group: multiplier} assignment: one name when all agree."""
    if len(set(assignment.values())) == 1:
        return next(iter(assignment.values()))
    return ",".join(f"{group}={assignment[group]}" for group in FIXED_LAYER_GROUPS)


def fixed_multiplier(fixed: str, group: str) -> str:
    """The multiplier of one fixed-layer `group` under a genotype's `fixed`."""
    return fixed_assignment(fixed)[group]


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
        "fixed": fixed_json(genotype.fixed),
    }


def fixed_json(fixed: str):
    """`fixed` as a genotype file holds it: a name, or a {group: multiplier} object."""
    return fixed_assignment(fixed) if "=" in fixed else fixed


def from_dict(data: dict, source: str = "genotype") -> Genotype:
    if backbone.is_backbone_dict(data):
        return backbone.from_dict(data, source)
    cell_fields = Genotype._fields[:4]
    fields = ", ".join(cell_fields)
    missing = [field for field in cell_fields if not isinstance(data, dict)
               or field not in data]
    if missing:
        raise GenotypeError(f"{source}: missing field(s) {', '.join(missing)}; a genotype JSON "
                            f"holds {fields}")
    if not all(isinstance(data[field], list) for field in cell_fields):
        raise GenotypeError(f"{source}: the fields {fields} must be JSON lists")
    genotype = Genotype(
        normal=[tuple(edge) if isinstance(edge, list) else edge for edge in data["normal"]],
        normal_concat=data["normal_concat"],
        reduce=[tuple(edge) if isinstance(edge, list) else edge for edge in data["reduce"]],
        reduce_concat=data["reduce_concat"],
        fixed=data.get("fixed", FLOAT_FIXED),
    )
    return validate(genotype, source)


def save(genotype: Genotype, path: str | Path, **metadata) -> Path:
    """Write `{"genotype": ..., **metadata}` atomically as JSON."""
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


def on_multiplier(genotype: Genotype, multiplier: str) -> Genotype:
    """`genotype` with every conv on `multiplier`: its cells' conv ops without a multiplier
    and its fixed layers (`DARTS_V2@bam4_4`; `@float` keeps float32 everywhere)."""
    def cell(edges):
        if multiplier == FLOAT_FIXED:
            return list(edges)
        return [(f"{op}{MULTIPLIER_SEPARATOR}{multiplier}" if op in CONV_PRIMITIVES else op, i)
                for op, i in edges]
    return genotype._replace(normal=cell(genotype.normal), reduce=cell(genotype.reduce),
                             fixed=multiplier)


def published_cell(name: str) -> Genotype | None:
    """A published cell genotype by name, optionally `@<multiplier>` (every conv on it)."""
    base, multiplier = split_op_name(name)
    if base not in PUBLISHED or multiplier == "":
        return None
    return PUBLISHED[base] if multiplier is None else on_multiplier(PUBLISHED[base], multiplier)


def published(name: str):
    """The published cell genotype (`DARTS_V2`, `DARTS_V2@bam4_4`) or backbone (`resnet20`,
    `resnet8@exact`) named `name`, or None."""
    if published_cell(name) is not None:
        return published_cell(name)
    try:
        return backbone.named(name)
    except GenotypeError:
        return None

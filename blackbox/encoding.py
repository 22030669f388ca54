"""The DARTS cell space as a fixed set of categorical parameters, and back to a Genotype.

The space is the one the differentiable search derives from (search/space.py, topology.py):
per cell type (normal, reduce) and node, two distinct input states and an op on each of the
two edges, any op of the search's candidates but `none` (the DARTS derivation never keeps
`none`); in the factorised space a conv op runs on one multiplier of the set, held at the
search's granularity (`edge`: one per chosen edge, `cell`: one per cell type and conv op,
`network`: one for every conv). Parameters:

- `<cell>.node<i>.inputs`: the input pair, e.g. `"0,2"` (states 0..i+1, two distinct);
- `<cell>.node<i>.op<p>`: the op of the pair's p-th edge (p = 0, 1);
- `<cell>.node<i>.multiplier<p>` / `<cell>.<op>.multiplier` / `multiplier`: the multiplier.

Every parameter is drawn for every candidate, even a multiplier whose edge holds no conv (it
is then unused): a fixed space is what NSGA-II's crossover and multivariate TPE model best.
"""

from __future__ import annotations

import itertools

from optuna.distributions import CategoricalDistribution

import topology
from genotypes import Genotype, validate
from search.space import NONE_OP, SearchSpace

CELLS = ("normal", "reduce")


def input_pairs(node: int) -> list[str]:
    """The input pairs of node `node`, as `"a,b"` (a < b)."""
    pairs = itertools.combinations(range(topology.num_inputs(node)),
                                   topology.GENOTYPE_INPUTS_PER_NODE)
    return [",".join(map(str, pair)) for pair in pairs]


def edge_ops(space: SearchSpace) -> list[str]:
    return [op for op in space.ops if op != NONE_OP]


def multiplier_param(space: SearchSpace, cell: str, node: int, position: int, op: str) -> str:
    """The name of the parameter holding the multiplier of an edge's conv op."""
    if space.granularity == "network":
        return "multiplier"
    if space.granularity == "cell":
        return f"{cell}.{op}.multiplier"
    return f"{cell}.node{node}.multiplier{position}"


def distributions(space: SearchSpace, steps: int = topology.STEPS) -> dict:
    """Every parameter of the space and its choices (optuna distributions), in a fixed order."""
    choices: dict[str, list[str]] = {}
    for cell in CELLS:
        for node in range(steps):
            choices[f"{cell}.node{node}.inputs"] = input_pairs(node)
            for position in range(topology.GENOTYPE_INPUTS_PER_NODE):
                choices[f"{cell}.node{node}.op{position}"] = edge_ops(space)
                for op in space.conv_ops:
                    name = multiplier_param(space, cell, node, position, op)
                    choices[name] = list(space.multipliers)
    return {name: CategoricalDistribution(values) for name, values in choices.items()}


def decode(params: dict, space: SearchSpace, steps: int = topology.STEPS) -> Genotype:
    """The genotype the parameters describe (checked as any genotype file is)."""
    concat = topology.concat(steps, multiplier=steps)
    normal, reduce = (_decode_cell(params, space, cell, steps) for cell in CELLS)
    return validate(Genotype(normal, concat, reduce, concat, space.fixed), "black-box candidate")


def _decode_cell(params: dict, space: SearchSpace, cell: str, steps: int) -> list:
    edges = []
    for node in range(steps):
        sources = [int(s) for s in params[f"{cell}.node{node}.inputs"].split(",")]
        for position, source in enumerate(sources):
            op = params[f"{cell}.node{node}.op{position}"]
            multiplier = (params[multiplier_param(space, cell, node, position, op)]
                          if op in space.conv_ops else None)
            edges.append((space.op_name(op, multiplier), source))
    return edges

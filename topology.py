"""The DARTS cell topology, defined once: which cells reduce, how a cell is wired, how its
edges are numbered, and how channels and resolution progress through the network.

- A network is a stem followed by `layers` cells; the cells at 1/3 and 2/3 of the depth
  (`layers // 3`, `2 * layers // 3`) are reduction cells: they double the channel count and
  halve the resolution. The auxiliary head (retraining) reads the second reduction cell.
- A cell reads the outputs of the two cells before it, s0 = c_{k-2} and s1 = c_{k-1}, each first
  brought to the cell's C channels: s1 by a 1x1 ReLUConvBN, s0 likewise, or by a stride-2
  FactorizedReduce when the previous cell reduced (s0 then has twice s1's resolution).
- The cell's states are numbered 0, 1 (the two inputs), 2, 3, ... (its `steps` intermediate
  nodes). Node i (0-based) sums one op per state 0..i+1 in the search network (2 + i input
  edges) and two of them in a genotype. In a reduction cell the edges leaving the cell inputs
  (source < 2) have stride 2.
- Edges are numbered node-major: edge `offset(i) + j` joins state j to node i, with
  offset(i) = sum_{k<i} (2 + k); the DARTS cell (4 steps) has 14 edges at offsets 0, 2, 5, 9.
  A genotype cell lists two (op, source) pairs per node, in node order: pair p is node p // 2.
- A cell outputs the concatenation of its last `multiplier` states (DARTS: nodes 2..5), so
  multiplier * C channels; the stem has stem_multiplier * C channels (CIFAR).

Pure Python (no torch): the search network, the discrete networks, the cost tables, the genotype
checks and the drawings all import it.
"""

from __future__ import annotations

from dataclasses import dataclass

STEPS = 4  # intermediate nodes of a DARTS cell
MULTIPLIER = 4  # states concatenated into a cell's output
STEM_MULTIPLIER = 3  # stem channels / C of the CIFAR network
CELL_INPUTS = 2  # states 0 and 1: the preprocessed outputs of the two previous cells
GENOTYPE_INPUTS_PER_NODE = 2  # (op, source) pairs a genotype keeps per node


# --- the network: which cells reduce ----------------------------------------------------
def reduction_cells(layers: int) -> tuple[int, int]:
    """Indices of the two reduction cells (1/3 and 2/3 of the depth)."""
    return layers // 3, 2 * layers // 3


def is_reduction(index: int, layers: int) -> bool:
    return index in reduction_cells(layers)


def auxiliary_cell(layers: int) -> int:
    """Index of the cell whose output the auxiliary head reads (the second reduction cell)."""
    return reduction_cells(layers)[1]


def reduced_size(size: int) -> int:
    """Resolution after a stride-2 op (3x3 kernel, padding 1): ceil(size / 2)."""
    return (size + 1) // 2


# --- one cell: edges, offsets, strides ----------------------------------------------------
def node_state(node: int) -> int:
    """The state index of node `node` (states 0 and 1 are the cell inputs)."""
    return CELL_INPUTS + node


def num_inputs(node: int) -> int:
    """Input edges of node `node` in the search cell: states 0..node+1."""
    return CELL_INPUTS + node


def edge_offsets(steps: int = STEPS) -> list[int]:
    """Index of each node's first input edge: offset(i) = sum_{k<i} (2 + k)."""
    offsets, total = [], 0
    for node in range(steps):
        offsets.append(total)
        total += num_inputs(node)
    return offsets


def num_edges(steps: int = STEPS) -> int:
    """Edges of a search cell with `steps` nodes (14 for the DARTS cell)."""
    return sum(num_inputs(node) for node in range(steps))


def edges(steps: int = STEPS) -> list[tuple[int, int]]:
    """(node, source) of every edge, in edge-index order."""
    return [(node, source) for node in range(steps) for source in range(num_inputs(node))]


def edge_index(node: int, source: int) -> int:
    """The index of the edge from state `source` to node `node`."""
    if not 0 <= source < num_inputs(node):
        raise ValueError(f"node {node} reads states 0..{num_inputs(node) - 1}, not {source}")
    return edge_offsets(node + 1)[node] + source


def state_labels(steps: int) -> list[str]:
    """Names of a cell's states: its inputs c_{k-2}, c_{k-1}, then its nodes 0, 1, ..."""
    return ["c_{k-2}", "c_{k-1}"] + [str(node) for node in range(steps)]


def edge_labels(steps: int) -> list[str]:
    """'source->node' of every edge, in the edge order."""
    names = state_labels(steps)
    return [f"{names[source]}->{node}" for node, source in edges(steps)]


def steps_for_edges(count: int) -> int:
    """The node count of a search cell with `count` edges (inverse of `num_edges`)."""
    steps = 0
    while num_edges(steps) < count:
        steps += 1
    if num_edges(steps) != count:
        raise ValueError(f"{count} edges is not a DARTS cell (2+3+4+... edges)")
    return steps


def reads_cell_input(source: int) -> bool:
    """Whether an edge from state `source` reads one of the cell's (preprocessed) inputs."""
    return source < CELL_INPUTS


def edge_stride(reduction: bool, source: int) -> int:
    """Stride of an edge from state `source`: 2 from the inputs of a reduction cell, else 1."""
    return 2 if reduction and reads_cell_input(source) else 1


def preprocess0_stride(reduction_prev: bool) -> int:
    """Stride of s0's preprocessing: 2 (FactorizedReduce) after a reduction cell, else 1."""
    return 2 if reduction_prev else 1


def concat(steps: int = STEPS, multiplier: int = MULTIPLIER) -> list[int]:
    """The states concatenated into the cell's output: the last `multiplier` ones."""
    return [node_state(node) for node in range(steps - multiplier, steps)]


# --- a genotype cell: two (op, source) pairs per node -------------------------------------
def genotype_steps(cell_edges) -> int:
    """Node count of a genotype cell (a list of (op, source) pairs)."""
    return len(cell_edges) // GENOTYPE_INPUTS_PER_NODE


def genotype_node(position: int) -> int:
    """The node of the `position`-th (op, source) pair of a genotype cell."""
    return position // GENOTYPE_INPUTS_PER_NODE


def genotype_positions(node: int) -> range:
    """Positions of node `node`'s (op, source) pairs in a genotype cell."""
    first = GENOTYPE_INPUTS_PER_NODE * node
    return range(first, first + GENOTYPE_INPUTS_PER_NODE)


def genotype_edge_indices(cell_edges) -> list[int]:
    """The search-cell edge index of each (op, source) pair of a genotype cell."""
    return [edge_index(genotype_node(position), source)
            for position, (_, source) in enumerate(cell_edges)]


# --- channels and resolution through the network ------------------------------------------
@dataclass(frozen=True)
class CellLayout:
    """One cell of the network: its place, its input and output channels and resolution.

    `C_prev_prev`/`C_prev`: channels of s0/s1; `C`: the channels of every node;
    `size_prev_prev`/`size_prev`: resolution of s0/s1; `size`: resolution of the nodes."""

    index: int
    reduction: bool
    reduction_prev: bool
    C_prev_prev: int
    C_prev: int
    C: int
    multiplier: int
    size_prev_prev: int
    size_prev: int

    @property
    def C_out(self) -> int:
        return self.multiplier * self.C

    @property
    def size(self) -> int:
        return reduced_size(self.size_prev) if self.reduction else self.size_prev

    def edge_input_size(self, source: int) -> int:
        """Resolution of state `source` (the preprocessed inputs have s1's resolution)."""
        return self.size_prev if reads_cell_input(source) else self.size


@dataclass(frozen=True)
class NetworkShape:
    """The size of a CIFAR-style cell network: C channels, `layers` cells of `steps` nodes
    (the last `multiplier` concatenated), a stem of `stem_multiplier` * C channels, on
    `input_size` images."""

    C: int
    num_classes: int
    layers: int
    steps: int = STEPS
    multiplier: int = MULTIPLIER
    stem_multiplier: int = STEM_MULTIPLIER
    input_size: int = 32

    def layouts(self) -> list[CellLayout]:
        return cell_layouts(self.C, self.layers, self.stem_multiplier * self.C, self.multiplier,
                            input_size=self.input_size)


def cell_layouts(C: int, layers: int, C_stem: int, multiplier: int = MULTIPLIER,
                 reduce_multiplier: int | None = None, input_size: int = 32,
                 reduction_prev: bool = False) -> list[CellLayout]:
    """The cells of a network whose stem outputs `C_stem` channels at `input_size`, s0 and s1
    of the first cell alike (the CIFAR stem). `reduction_prev`: the stem's s0 is twice s1's
    resolution, as in the ImageNet network (the first cell's `size_prev_prev` then still reads
    `input_size`; only the CIFAR cost tables read resolutions). `reduce_multiplier`: the
    reduction cells' output multiplier when it differs from the normal cells' (a genotype's
    two concat lists)."""
    reduce_multiplier = multiplier if reduce_multiplier is None else reduce_multiplier
    plan = []
    C_prev_prev, C_prev, C_curr = C_stem, C_stem, C
    size_prev_prev = size_prev = input_size
    for index in range(layers):
        reduction = is_reduction(index, layers)
        if reduction:
            C_curr *= 2
        cell = CellLayout(index, reduction, reduction_prev, C_prev_prev, C_prev, C_curr,
                          reduce_multiplier if reduction else multiplier, size_prev_prev,
                          size_prev)
        plan.append(cell)
        reduction_prev = reduction
        C_prev_prev, C_prev = C_prev, cell.C_out
        size_prev_prev, size_prev = size_prev, cell.size
    return plan

"""The search space of the ResNet backbone and its energy tables.

`ResNetSpace` holds the choices: number of stages, basic blocks per stage, base width (doubled
per stage) and the candidate multipliers of every conv (`float` and `exact` always among them),
chosen per layer or per stage. `space_costs` profiles, with `energy_estimator.profile`, the
discrete networks of every (base width, multiplier) pair and splits the per-layer rows into:
`conv[l, w, m]` (conv l of the largest network at width w on multiplier m), `block[s, b, w]`
(BatchNorm and ReLU of block b of stage s), `stem[w]` and `head[n, w]` (pooling and classifier
after the n-th stage choice). Every row depends only on its own shape and multiplier, so

    E = sum_w p_w (stem_w + sum_l P(l) sum_m p_lm conv_lwm + sum_sb P(s, b) block_sbw
                   + sum_n p_n head_nw)

with P(s, b) = P(stages > s) P(blocks_s > b) is the expected energy of a network drawn from the
independent choices, and exactly the profiled energy of the derived network when they are
one-hot (tests/test_backbones.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from approx.settings import DEFAULT_EMULATION, Emulation
from backbones import resnet
from backbones.genotype import FLOAT, conv_layers, make
from energy_estimator import profile
from energy_estimator.search_space import objective_field
from energy_estimator.table import resolve_energy_table

ALWAYS = (FLOAT, "exact")  # candidate multipliers of every backbone search
GRANULARITIES = ("layer", "stage")


@dataclass(frozen=True)
class ResNetSpace:
    stage_choices: tuple[int, ...] = (3,)
    block_choices: tuple[int, ...] = (1, 2, 3)
    width_choices: tuple[int, ...] = (16,)
    candidates: tuple[str, ...] = ALWAYS
    shortcut: str = "A"
    granularity: str = "layer"

    def __post_init__(self):
        for label in ("stage_choices", "block_choices", "width_choices"):
            values = getattr(self, label)
            if not values or any(v < 1 for v in values) or list(values) != sorted(set(values)):
                raise ValueError(f"backbone space: {label} {list(values)} must be distinct "
                                 f"positive integers in increasing order")
        missing = [m for m in ALWAYS if m not in self.candidates]
        if missing:
            raise ValueError(f"backbone space: candidates must include {', '.join(ALWAYS)}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"backbone space: granularity {self.granularity!r} must be one of "
                             f"{', '.join(GRANULARITIES)}")

    @property
    def max_stages(self) -> int:
        return self.stage_choices[-1]

    @property
    def max_blocks(self) -> int:
        return self.block_choices[-1]

    def widths(self, base: int, stages: int | None = None) -> list[int]:
        return [base * 2 ** s for s in range(stages or self.max_stages)]

    def largest(self, base: int, multiplier: str = FLOAT):
        """The genotype of the largest network of the space at base width `base`."""
        return make([self.max_blocks] * self.max_stages, self.widths(base), multiplier,
                     self.shortcut)

    @cached_property
    def slots(self):
        """Every conv of the largest network (its names hold for every width)."""
        return conv_layers([self.max_blocks] * self.max_stages, self.widths(1), self.shortcut)

    @cached_property
    def slot_rows(self) -> list[int]:
        """The multiplier-alpha row of each slot: its own (layer) or its stage's (stage)."""
        if self.granularity == "layer":
            return list(range(len(self.slots)))
        return [slot.stage for slot in self.slots]

    @property
    def num_rows(self) -> int:
        return len(self.slots) if self.granularity == "layer" else self.max_stages


@dataclass
class BackboneCosts:
    """Energy tables (µJ per image, float64) of a ResNetSpace; see the module docstring."""

    conv: torch.Tensor   # [slots, widths, candidates]
    block: torch.Tensor  # [max stages, max blocks, widths]
    stem: torch.Tensor   # [widths]
    head: torch.Tensor   # [stage choices, widths]


def space_costs(space: ResNetSpace, num_classes: int, input_size: int = 32, energy_table=None,
                *, objective: str = "total",
                emulation: Emulation = DEFAULT_EMULATION) -> BackboneCosts:
    """The tables of the `objective`'s energy (total, arithmetic or multiplier: the search's
    --energy_objective), profiled on networks built in float mode (`Emulation.for_costing`:
    the costs depend on shapes and the multipliers' figures, not on their emulation)."""
    field = objective_field(objective)
    table = resolve_energy_table(energy_table)
    index = {slot.name: i for i, slot in enumerate(space.slots)}
    shape = (len(space.slots), len(space.width_choices), len(space.candidates))
    costs = BackboneCosts(torch.zeros(shape, dtype=torch.float64),
                          torch.zeros(space.max_stages, space.max_blocks, shape[1],
                                      dtype=torch.float64),
                          torch.zeros(shape[1], dtype=torch.float64),
                          torch.zeros(len(space.stage_choices), shape[1], dtype=torch.float64))
    costing = emulation.for_costing()
    with torch.random.fork_rng(devices=[]):
        for w, base in enumerate(space.width_choices):
            for m, multiplier in enumerate(space.candidates):
                net = resnet.ResNetCIFAR(space.largest(base, multiplier), num_classes,
                                         emulation=costing, channels_last=False)
                for prefix, module, size, float_cost in _parts(net, space, input_size, w, costs):
                    for row in profile(module, size, table).layers:
                        name = f"{prefix}{row.name}"
                        if name in index:
                            costs.conv[index[name], w, m] = getattr(row, field)
                        elif m == 0:  # float32 layers: the same on every multiplier
                            float_cost += getattr(row, field)
            for n, stages in enumerate(space.stage_choices):
                channels = base * 2 ** (stages - 1)
                size = _resolution(input_size, stages)
                report = profile(resnet.head(channels, num_classes), (channels, size, size), table)
                costs.head[n, w] = getattr(report, field)
    return costs


def _parts(net, space, input_size, w, costs):
    """(name prefix, module, input size, view into the table of its float-part cost) of the
    stem and of every block."""
    yield "stem.", net.stem, (3, input_size, input_size), costs.stem[w]
    channels = net.genotype.widths[0]
    for s, stage in enumerate(net.stages()):
        size = _resolution(input_size, s)
        for b, block in enumerate(stage):
            yield f"stage{s + 1}.{b}.", block, (channels, size, size), costs.block[s, b, w]
            channels, size = net.genotype.widths[s], _resolution(input_size, s + 1)


def _resolution(input_size: int, stages: int) -> int:
    """Feature map side after `stages` stages (each after the first halves it)."""
    size = input_size
    for _ in range(max(stages - 1, 0)):
        size = (size + 1) // 2
    return size


def expected_energy_uj(costs: BackboneCosts, space: ResNetSpace, slot_probs, depth_probs,
                       width_probs, stage_probs) -> torch.Tensor:
    """E over independent choices (module docstring); differentiable; in the probs' dtype.
    slot_probs [slots, candidates], depth_probs [max stages, block choices], width_probs
    [width choices], stage_probs [stage choices]."""
    like = dict(dtype=slot_probs.dtype, device=slot_probs.device)
    stage_alive = torch.tensor([[float(n > s) for s in range(space.max_stages)]
                                for n in space.stage_choices], **like)
    depth_alive = torch.tensor([[float(k > b) for b in range(space.max_blocks)]
                                for k in space.block_choices], **like)
    block_exists = (stage_probs @ stage_alive)[:, None] * (depth_probs @ depth_alive)
    slot_block = torch.tensor([0 if slot.block < 0 else
                               1 + slot.stage * space.max_blocks + slot.block
                               for slot in space.slots], device=like["device"])
    slot_exists = torch.cat([torch.ones(1, **like), block_exists.flatten()])[slot_block]
    per_width = (costs.stem.to(**like)
                 + torch.einsum("l,lwm,lm->w", slot_exists, costs.conv.to(**like), slot_probs)
                 + torch.einsum("sb,sbw->w", block_exists, costs.block.to(**like))
                 + stage_probs @ costs.head.to(**like))
    return width_probs @ per_width


def one_hot_choices(space: ResNetSpace, genotype):
    """(slot, depth, width, stage) float64 one-hot tables of a genotype of `space`, the
    arguments of `expected_energy_uj` that give its energy."""
    base, stages = genotype.widths[0], genotype.stages
    if (stages not in space.stage_choices or base not in space.width_choices
            or list(genotype.widths) != space.widths(base, stages)
            or any(b not in space.block_choices for b in genotype.blocks)
            or genotype.shortcut != space.shortcut
            or any(m not in space.candidates for m in genotype.multipliers)):
        raise ValueError(f"genotype {genotype} is outside the search space {space}")
    chosen = dict(zip((layer.name for layer in genotype.layers()), genotype.multipliers,
                      strict=True))
    # slots the genotype lacks have probability 0 of existing: any row will do
    slot = torch.stack([_one_hot(space.candidates.index(chosen.get(s.name, FLOAT)),
                                 len(space.candidates)) for s in space.slots])
    blocks = list(genotype.blocks) + [space.block_choices[0]] * (space.max_stages - stages)
    depth = torch.stack([_one_hot(space.block_choices.index(b), len(space.block_choices))
                         for b in blocks])
    return (slot, depth, _one_hot(space.width_choices.index(base), len(space.width_choices)),
            _one_hot(space.stage_choices.index(stages), len(space.stage_choices)))


def _one_hot(index: int, size: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(index), size).to(torch.float64)

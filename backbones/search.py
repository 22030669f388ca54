"""The ResNet backbone supernet, a `search.supernet.Supernet` as `model_search.Network` is (the
interface the Architect, train_search.py and reporting/search_report use).

Every choice is a softmax over its own alpha table and the network computes the mixture:
- multiplier: each conv is a `MixedConv`, one weight tensor shared by one conv per candidate
  (`operations.conv_factory`: float32 `nn.Conv2d` or emulated `ApproxConv2d`), output
  sum_m p_m conv_m(x) (the weighted sum of per-multiplier convs; the candidates' activation
  codes are shared through `approx.sharing`). One alpha row per conv (`layer`) or per stage.
- depth: a stage's output is sum_k p_k (output after its k-th block), k over the block choices;
- width: channel masks, sum_j p_j [c < w_j 2^s] applied after every BatchNorm of stage s;
- stages: logits = sum_n p_n head_n(output of stage n), one classifier per stage choice.
The derived genotype takes the argmax of each table (`ResNetGenotype`, JSON kind `resnet`).
"""

from __future__ import annotations

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

from approx import DEFAULT_EMULATION, EmulatedNetwork, Emulation
from approx.sharing import share, shared_codes
from backbones import costs as space_costs
from backbones import resnet
from backbones.genotype import ResNetGenotype, conv_layers, make
from search.params import AlphaWeightSplit

ALPHA_TABLES = ("multipliers", "depth", "width", "stages")


class MixedConv(nn.Module):
    """sum_m p_m conv_m(x) over the candidate multipliers, all convs sharing one weight;
    `probs` (one row of softmax(alpha)) is set by the supernet before each forward."""

    def __init__(self, C_in, C_out, kernel_size, stride=1, padding=0, bias=False, *,
                 candidates, emulation: Emulation = DEFAULT_EMULATION):
        super().__init__()
        convs = [resnet.factory(m, emulation)(C_in, C_out, kernel_size, stride=stride,
                                            padding=padding, bias=bias) for m in candidates]
        for conv in convs[1:]:
            conv.weight = convs[0].weight
        self.convs = nn.ModuleList(convs)
        self.probs = None

    def forward(self, x):
        out = None
        with shared_codes():
            x = share(x)
            for p, conv in zip(self.probs, self.convs, strict=True):
                out = conv(x) * p if out is None else out.addcmul_(conv(x), p)
        return out


class ChannelMask(nn.Module):
    """x * mask[c]; `mask` (expected keep-weight per channel) is set by the supernet."""

    def __init__(self):
        super().__init__()
        self.mask = None

    def forward(self, x):
        return x * self.mask.view(1, -1, 1, 1).to(x.dtype)


class ResNetSupernet(AlphaWeightSplit, EmulatedNetwork, nn.Module):
    """The supernet of a `costs.ResNetSpace`; `costs` (keyword): its energy tables, priced by
    the caller with `costs.space_costs` (without them, they are priced here the same way);
    `emulation` (keyword): the approx.Emulation settings of its approximate convs."""

    def __init__(self, space: space_costs.ResNetSpace, num_classes: int, criterion,
                 input_size: int = 32, energy_table=None, *,
                 emulation: Emulation = DEFAULT_EMULATION, costs=None):
        super().__init__()
        self.space, self.criterion, self.candidates = space, criterion, tuple(space.candidates)
        self.emulation = emulation
        mixed = functools.partial(MixedConv, candidates=space.candidates, emulation=emulation)
        widths = space.widths(space.width_choices[-1])
        self.masks = nn.ModuleList(ChannelMask() for _ in widths)
        self.stem = resnet.stem(widths[0], mixed, self.masks[0])
        previous = widths[0]
        for s, width in enumerate(widths):
            blocks = [resnet.BasicBlock(previous if b == 0 else width, width,
                                        2 if s > 0 and b == 0 else 1, space.shortcut,
                                        [mixed] * 3, self.masks[s])
                      for b in range(space.max_blocks)]
            self.add_module(f"stage{s + 1}", nn.Sequential(*blocks))
            previous = width
        self.heads = nn.ModuleList(resnet.head(widths[n - 1], num_classes)
                                   for n in space.stage_choices)
        for s, width in enumerate(widths):
            keep = [[float(c < base * 2 ** s) for c in range(width)]
                    for base in space.width_choices]
            self.register_buffer(f"width_keep{s}", torch.tensor(keep), persistent=False)
        self._mixed = [self.get_submodule(slot.name) for slot in space.slots]
        self.alphas_multipliers = nn.Parameter(1e-3 * torch.randn(space.num_rows,
                                                                  len(space.candidates)))
        self.alphas_depth = nn.Parameter(1e-3 * torch.randn(len(widths),
                                                            len(space.block_choices)))
        self.alphas_width = nn.Parameter(1e-3 * torch.randn(len(space.width_choices)))
        self.alphas_stages = nn.Parameter(1e-3 * torch.randn(len(space.stage_choices)))
        if costs is None:
            costs = space_costs.space_costs(space, num_classes, input_size, energy_table,
                                            emulation=emulation)
        self.costs = costs
        with torch.no_grad():
            self._reference_energy_uj = float(self.expected_energy_uj(
                {name: torch.zeros_like(alpha) for name, alpha in self.named_alpha_tables()}))
        self.to(memory_format=torch.channels_last)

    # --- forward and loss -------------------------------------------------------------
    def probabilities(self, alphas: dict | None = None) -> dict:
        """softmax of every alpha table (`alphas`: {table: logits}, default the parameters)."""
        alphas = alphas or dict(self.named_alpha_tables())
        return {name: F.softmax(alphas[name], dim=-1) for name in ALPHA_TABLES}

    def forward(self, x):
        p = self.probabilities()
        for conv, probs in zip(self._mixed, p["multipliers"][self.space.slot_rows], strict=True):
            conv.probs = probs
        for s, mask in enumerate(self.masks):
            mask.mask = p["width"] @ getattr(self, f"width_keep{s}")
        x = self.stem(x.contiguous(memory_format=torch.channels_last))
        logits = 0.0
        for s in range(self.space.max_stages):
            outputs = []
            for block in getattr(self, f"stage{s + 1}"):
                x = block(x)
                outputs.append(x)
            x = sum(p["depth"][s, k] * outputs[count - 1]
                    for k, count in enumerate(self.space.block_choices))
            if s + 1 in self.space.stage_choices:
                n = self.space.stage_choices.index(s + 1)
                logits = logits + p["stages"][n] * self.heads[n](x)
        return logits

    def loss(self, x, y):
        return self.criterion(self(x), y)

    # --- parameter groups -------------------------------------------------------------
    def named_alpha_tables(self):
        for name in ALPHA_TABLES:
            yield name, getattr(self, f"alphas_{name}")

    def named_alphas(self):
        for name, alpha in self.named_alpha_tables():
            yield f"alphas_{name}", alpha

    def alpha_softmax(self) -> dict:
        """Detached softmax of every table, as 2-D tables (width and stages: one row)."""
        return {name: probs.detach().reshape(-1, probs.shape[-1])
                for name, probs in self.probabilities().items()}

    def alpha_axes(self, table: str) -> tuple[list[str], list[str]]:
        """(row labels, column labels) of an `alpha_softmax()` table, for the heatmaps."""
        space = self.space
        stages = [f"stage{s + 1}" for s in range(space.max_stages)]
        return {"multipliers": ([slot.name for slot in space.slots]
                                if space.granularity == "layer" else stages,
                                list(self.candidates)),
                "depth": (stages, [f"{k} blocks" for k in space.block_choices]),
                "width": (["base width"], [str(w) for w in space.width_choices]),
                "stages": (["stages"], [str(n) for n in space.stage_choices])}[table]

    def multiplier_set(self) -> list[str]:
        return list(self.candidates)

    def multiplier_softmax(self) -> dict[str, tuple[torch.Tensor, list[str]]]:
        """{'multipliers': (detached [slots or stages, multipliers] softmax, row labels)}."""
        return {"multipliers": (self.alpha_softmax()["multipliers"].cpu(),
                                self.alpha_axes("multipliers")[0])}

    def describe(self) -> dict:
        return {"search_space": "resnet", "multiplier_set": None}

    def derived_accuracy(self, genotype, loaders: dict, evaluate) -> dict:
        """No one-shot evaluation of a derived backbone: {}."""
        return {}

    # --- energy -----------------------------------------------------------------------
    def expected_energy_uj(self, alphas: dict | None = None):
        """E(alpha) per image (µJ), differentiable in the alphas (`alphas`: {table: logits})."""
        p = self.probabilities(alphas)
        return space_costs.expected_energy_uj(self.costs, self.space,
                                              p["multipliers"][self.space.slot_rows],
                                              p["depth"], p["width"], p["stages"])

    def reference_energy_uj(self) -> float:
        """E_ref: the expected energy at uniform alphas, the loss normaliser."""
        return self._reference_energy_uj

    def genotype_energy_uj(self, genotype: ResNetGenotype | None = None) -> float:
        """Energy per image (µJ) of a genotype of this space: E at its one-hot choices."""
        genotype = self.genotype() if genotype is None else genotype
        return float(space_costs.expected_energy_uj(
            self.costs, self.space, *space_costs.one_hot_choices(self.space, genotype)))

    # --- discrete architecture --------------------------------------------------------
    def genotype(self) -> ResNetGenotype:
        """The argmax of every table: stage count, base width, blocks per stage, and the
        multiplier of every conv that the derived network keeps."""
        space, p = self.space, {k: v.detach().cpu() for k, v in self.probabilities().items()}
        stages = space.stage_choices[int(p["stages"].argmax())]
        base = space.width_choices[int(p["width"].argmax())]
        blocks = [space.block_choices[int(p["depth"][s].argmax())] for s in range(stages)]
        rows = {slot.name: row for slot, row in zip(space.slots, space.slot_rows, strict=True)}
        best = p["multipliers"].argmax(dim=-1).tolist()
        widths = space.widths(base, stages)
        layers = conv_layers(blocks, widths, space.shortcut)
        return make(blocks, widths, [self.candidates[best[rows[layer.name]]] for layer in layers],
                    space.shortcut)

"""The ResNet backbone genotype: stages, basic blocks per stage, channels per stage, shortcut type
and one multiplier per convolution, with its JSON form (`"kind": "resnet"`) and the published
CIFAR ResNets by name (`resnet8`, `resnet14`, `resnet20`, any `resnet<6n+2>`).

He et al. (CVPR 2016, sec. 4.2) define the CIFAR ResNets as a 3x3 stem conv with 16 channels,
three stages of n basic blocks with 16, 32 and 64 channels (stride 2 at the first block of the
second and third stage), global average pooling and a linear classifier: 6n + 2 weighted layers.
Shortcut `A` is their parameter-free one (stride-2 subsampling, zero channels appended); `B`
is a 1x1 conv + BatchNorm projection wherever the shape changes (Keras' ResNet v1, used by
ALWANN and TFApprox). A name may carry a multiplier for every conv (`resnet20@mul8u_197B`) and
a `b` for shortcut B (`resnet8b@exact`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from runner.errors import GenotypeError

KIND = "resnet"
FLOAT = "float"  # a float32 convolution (no multiplier)
SHORTCUTS = ("A", "B")
HE_WIDTHS = (16, 32, 64)
NAME_PATTERN = re.compile(r"resnet(\d+)(b?)(?:@(.+))?$")


@dataclass(frozen=True)
class ConvLayer:
    """One convolution of a backbone, in network order; `name` is its module path."""

    name: str
    stage: int
    block: int  # -1 for the stem
    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int


def conv_layers(blocks, widths, shortcut: str = "A", in_channels: int = 3) -> list[ConvLayer]:
    """Every conv of the backbone in forward order: the stem, then per block conv1, conv2 and
    (shortcut B, where the shape changes) the projection `shortcut.conv`."""
    layers = [ConvLayer("stem.conv", 0, -1, in_channels, widths[0], 3, 1)]
    previous = widths[0]
    for stage, (count, width) in enumerate(zip(blocks, widths, strict=True)):
        for block in range(count):
            stride = 2 if stage > 0 and block == 0 else 1
            prefix = f"stage{stage + 1}.{block}"
            layers.append(ConvLayer(f"{prefix}.conv1", stage, block, previous, width, 3, stride))
            layers.append(ConvLayer(f"{prefix}.conv2", stage, block, width, width, 3, 1))
            if shortcut == "B" and (stride != 1 or previous != width):
                layers.append(ConvLayer(f"{prefix}.shortcut.conv", stage, block, previous,
                                        width, 1, stride))
            previous = width
    return layers


@dataclass(frozen=True)
class ResNetGenotype:
    """A CIFAR-style basic-block ResNet; `multipliers[i]` runs `conv_layers()[i]` (`float`:
    float32, else a multiplier name such as `exact` or `mul8u_197B`)."""

    blocks: tuple[int, ...]
    widths: tuple[int, ...]
    multipliers: tuple[str, ...]
    shortcut: str = "A"

    kind = KIND

    @property
    def stages(self) -> int:
        return len(self.blocks)

    def layers(self) -> list[ConvLayer]:
        return conv_layers(self.blocks, self.widths, self.shortcut)

    def with_multiplier(self, multiplier: str | None) -> ResNetGenotype:
        """The same backbone with `multiplier` on every conv (None: float32)."""
        return replace(self, multipliers=(multiplier or FLOAT,) * len(self.multipliers))

    def to_dict(self) -> dict:
        return {"kind": KIND, "stages": self.stages, "blocks": list(self.blocks),
                "widths": list(self.widths), "shortcut": self.shortcut,
                "multipliers": list(self.multipliers),
                "layers": [layer.name for layer in self.layers()]}

    def __str__(self) -> str:
        return (f"ResNet(blocks={list(self.blocks)}, widths={list(self.widths)}, shortcut "
                f"{self.shortcut}, multipliers={list(self.multipliers)})")


class BackboneError(GenotypeError):
    """A backbone genotype that cannot be parsed or validated."""


def make(blocks, widths, multipliers=FLOAT, shortcut: str = "A",
         source: str = "genotype") -> ResNetGenotype:
    """A validated genotype; `multipliers` is one name for every conv or one per conv."""
    blocks, widths = tuple(blocks), tuple(widths)
    if shortcut not in SHORTCUTS:
        raise BackboneError(f"{source}: shortcut {shortcut!r} must be one of {SHORTCUTS}")
    if not blocks or len(blocks) != len(widths):
        raise BackboneError(f"{source}: 'blocks' {list(blocks)} and 'widths' {list(widths)} "
                            f"need one entry per stage")
    for label, values in (("blocks", blocks), ("widths", widths)):
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
            raise BackboneError(f"{source}: '{label}' must be positive integers, got "
                                f"{list(values)}")
    if shortcut == "A" and list(widths) != sorted(widths):
        raise BackboneError(f"{source}: shortcut A pads channels with zeros, so widths must "
                            f"not decrease; got {list(widths)} (use shortcut B)")
    names = [layer.name for layer in conv_layers(blocks, widths, shortcut)]
    count = len(names)
    if isinstance(multipliers, str):
        multipliers = (multipliers,) * count
    multipliers = tuple(str(m) for m in multipliers)
    if len(multipliers) != count:
        raise BackboneError(f"{source}: {len(multipliers)} multipliers for {count} conv layers "
                            f"({', '.join(names)})")
    return ResNetGenotype(blocks, widths, multipliers, shortcut)


def from_dict(data: dict, source: str = "genotype") -> ResNetGenotype:
    """Parse `{"kind": "resnet", "blocks": [...], "widths": [...] (or "width": base, doubled
    per stage), "multipliers": name or list, "shortcut": "A"}`."""
    if "blocks" not in data:
        raise BackboneError(f"{source}: a resnet genotype needs 'blocks' (per stage)")
    blocks = list(data["blocks"])
    widths = data.get("widths")
    if widths is None:
        base = data.get("width", HE_WIDTHS[0])
        widths = [base * 2 ** stage for stage in range(len(blocks))]
    if "stages" in data and data["stages"] != len(blocks):
        raise BackboneError(f"{source}: 'stages' {data['stages']} but {len(blocks)} 'blocks'")
    return make(blocks, widths, data.get("multipliers", FLOAT), data.get("shortcut", "A"), source)


def is_backbone_dict(data) -> bool:
    return isinstance(data, dict) and data.get("kind") == KIND


def named(spec: str) -> ResNetGenotype | None:
    """`resnet20`, `resnet20@mul8u_197B`, `resnet8b@exact` (shortcut B); None if no such name."""
    match = NAME_PATTERN.match(spec)
    if not match:
        return None
    depth, projection, multiplier = int(match[1]), match[2], match[3]
    if depth < 8 or (depth - 2) % 6:
        raise BackboneError(f"--genotype {spec}: CIFAR ResNets have 6n + 2 layers "
                            f"(resnet8, resnet14, resnet20, resnet32, ...)")
    n = (depth - 2) // 6
    return make([n] * 3, HE_WIDTHS, multiplier or FLOAT, "B" if projection else "A", spec)

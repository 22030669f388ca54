"""Convolution geometry (stride, padding, dilation, groups) as pairs, with the output size."""

from dataclasses import dataclass

import torch


def pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    is_pair = isinstance(value, (tuple, list)) and len(value) == 2
    if is_pair and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name}={value!r}: give an int or a pair of ints (no string padding)")


@dataclass(frozen=True)
class Geometry:
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int

    @classmethod
    def of(cls, stride=1, padding=0, dilation=1, groups=1) -> "Geometry":
        return cls(pair(stride, "stride"), pair(padding, "padding"), pair(dilation, "dilation"),
                   int(groups))

    def conv_kwargs(self) -> dict:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation,
                "groups": self.groups}

    def unfold_kwargs(self, weight: torch.Tensor) -> dict:
        return {"kernel_size": tuple(weight.shape[2:]), "dilation": self.dilation,
                "padding": self.padding, "stride": self.stride}

    def output_size(self, x: torch.Tensor, weight: torch.Tensor) -> tuple[int, int]:
        sizes = []
        for axis in range(2):
            span = self.dilation[axis] * (weight.shape[2 + axis] - 1) + 1
            extent = x.shape[2 + axis] + 2 * self.padding[axis] - span
            sizes.append(extent // self.stride[axis] + 1)
        return sizes[0], sizes[1]

    def check(self, x: torch.Tensor, weight: torch.Tensor) -> None:
        if x.dim() != 4 or weight.dim() != 4:
            shapes = f"{tuple(x.shape)} and {tuple(weight.shape)}"
            raise ValueError(f"need a 4-d input and a 4-d weight, got {shapes}")
        if x.shape[1] != weight.shape[1] * self.groups or weight.shape[0] % self.groups:
            raise ValueError(
                f"input channels {x.shape[1]} / weight {tuple(weight.shape)} do not fit "
                f"groups={self.groups}"
            )

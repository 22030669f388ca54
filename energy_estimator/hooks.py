"""Run a model once with forward hooks on its leaf modules and collect per-layer counts.

The pass runs in eval mode under torch.no_grad on a batch of random images; every module's
train/eval flag is restored afterwards, and every hook is removed even on error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch
import torch.nn as nn

from energy_estimator import counting
from energy_estimator.counting import LayerCount


class _Recorder:
    """Forward hook target: turns each leaf-module call into a LayerCount."""

    def __init__(self, model: nn.Module, batch_size: int, int8_network: bool):
        self.batch_size = batch_size
        self.int8_network = int8_network
        self.names = {}
        for name, module in model.named_modules():
            self.names.setdefault(module, name or type(module).__name__)
        self.calls: Counter = Counter()
        self.layers: list[LayerCount] = []
        self.warned: set[type] = set()

    def __call__(self, module: nn.Module, inputs, output) -> None:
        self.calls[module] += 1
        first_call = self.calls[module] == 1
        if counting.is_free(module):
            return
        if not counting.is_counted_type(module):
            self._warn_once(module)
        self.layers.append(self._count(module, inputs, output, first_call))

    def _count(self, module, inputs, output, first_call: bool) -> LayerCount:
        multiplier = counting.multiplier_of(module)
        in_elems, out_elems = self._elements(inputs), self._elements(output)
        macs, adds, mults = counting.operation_counts(module, in_elems, out_elems)
        int8 = multiplier is not None or (self.int8_network and not macs)
        bits = counting.INT8_BITS if int8 else counting.FLOAT_BITS
        known = counting.is_counted_type(module)
        return LayerCount(
            name=self._name(module),
            type=counting.layer_type(module),
            multiplier=counting.multiplier_label(multiplier),
            macs=macs,
            params=counting.count_params(module) if first_call else 0,
            weight_bytes=counting.weight_bytes(module, bits),
            activation_bytes=(in_elems + out_elems) * bits // 8 if known else 0,
            adds=adds,
            mults=mults,
            bits=bits,
            relative_energy=getattr(multiplier, "relative_energy", None),
            power_mw=getattr(multiplier, "power_mw", None),
            outputs=out_elems if known else 0,
        )

    def _name(self, module: nn.Module) -> str:
        name, call = self.names.get(module, type(module).__name__), self.calls[module]
        return name if call == 1 else f"{name}#{call}"

    def _elements(self, value) -> int:
        """Elements per image in a tensor or a (nested) tuple/list of tensors."""
        if isinstance(value, torch.Tensor):
            return value.numel() // self.batch_size
        if isinstance(value, (tuple, list)):
            return sum(self._elements(item) for item in value)
        return 0

    def _warn_once(self, module: nn.Module) -> None:
        if type(module) not in self.warned:
            self.warned.add(type(module))
            counting.warn_uncounted(module)


def count_layers(model: nn.Module, input_size: Sequence[int], batch_size: int = 1,
                 int8_network: bool | None = None) -> list[LayerCount]:
    """Per-layer counts (per image) of one forward pass on `(batch_size, *input_size)`;
    `int8_network` (default: the model's `int8_deployed` attribute, else False): every layer
    without MACs handles 8-bit codes, as in a network whose convs all run on multipliers."""
    if int8_network is None:
        int8_network = bool(getattr(model, "int8_deployed", False))
    recorder = _Recorder(model, batch_size, int8_network)
    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    modes = {module: module.training for module in model.modules()}
    handles = [leaf.register_forward_hook(recorder) for leaf in leaves]
    try:
        model.eval()
        with torch.no_grad():
            model(_example_input(model, input_size, batch_size))
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    return recorder.layers


def _example_input(model: nn.Module, input_size: Sequence[int], batch_size: int):
    reference = next(model.parameters(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None else torch.float32
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch_size, *input_size, generator=generator)
    return images.to(device=device, dtype=dtype)

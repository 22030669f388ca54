"""ONNX nodes of the deployed layers, in the standard quantised (QDQ) form.

A quantised conv: [Relu] -> Clip(+-levels * s_x) -> QuantizeLinear(s_x) ->
DequantizeLinear -> Conv, whose weight is DequantizeLinear(integer codes, s_w[o], axis 0) and
whose bias is DequantizeLinear(int32 codes, s_x * s_w[o], axis 0). Signed multipliers use int8
codes (-127..127: symmetric int8, what ONNX Runtime's integer kernels take); sign-magnitude
(unsigned) multipliers need codes -255..255 and use int16 Q/DQ (opset 21), which hold the same
values. The Clip keeps QuantizeLinear from saturating to -128 where the deployed network clamps
to -127. Each Conv (Gemm for the classifier) carries its multiplier in `metadata_props`.
A float32 layer is a plain Conv / Gemm of the folded weights.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from approx.quantize import levels
from deploy import DeployedConv2d, DeployedLinear
from export.deps import ExportError
from operations import Zero

INT_MAX = 2**62


def multiplier_metadata(layer: DeployedConv2d) -> dict[str, str]:
    """What a hardware simulator reads from a conv node: the layer and its multiplier."""
    m = layer.multiplier
    if m is None:
        return {"axdarts.layer": layer.name, "axdarts.multiplier": "float32"}
    energy = "unknown" if m.relative_energy is None else f"{m.relative_energy:.6g}"
    return {"axdarts.layer": layer.name, "axdarts.multiplier": m.name,
            "axdarts.multiplier_sha256": m.sha256,
            "axdarts.multiplier_relative_energy": energy,
            "axdarts.multiplier_table": f"tables/{m.name}.bin",
            "axdarts.code_scheme": "int8 symmetric" if m.signed else "sign-magnitude 8-bit"}


class GraphBuilder:
    """Collects nodes and initializers with unique names."""

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes, self.initializers = [], []
        self._count = 0

    def fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def constant(self, stem: str, array: np.ndarray) -> str:
        name = self.fresh(stem)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def add_node(self, op: str, inputs: list[str], metadata: dict | None = None,
                 **attributes) -> str:
        output = self.fresh(op.lower())
        node = self.onnx.helper.make_node(op, inputs, [output], name=output, **attributes)
        for key, value in (metadata or {}).items():
            entry = node.metadata_props.add()
            entry.key, entry.value = key, value
        self.nodes.append(node)
        return output

    def slice(self, x: str, index) -> str:
        """x[...] with slices only (FactorizedReduce's x[:, :, 1:, 1:])."""
        starts, ends, axes, steps = [], [], [], []
        for axis, item in enumerate(index if isinstance(index, tuple) else (index,)):
            if not isinstance(item, slice):
                raise ExportError(f"export: cannot write the index {index!r} to ONNX")
            if item == slice(None):
                continue
            starts.append(item.start or 0)
            ends.append(INT_MAX if item.stop is None else item.stop)
            axes.append(axis)
            steps.append(item.step or 1)
        arrays = [np.array(v, dtype=np.int64) for v in (starts, ends, axes, steps)]
        return self.add_node("Slice", [x, *(self.constant("slice", a) for a in arrays)])

    def module(self, module: nn.Module, x: str) -> str:
        if isinstance(module, DeployedLinear):
            return self.linear(module.conv, self.add_node("Flatten", [x], axis=1))
        if isinstance(module, DeployedConv2d):
            return self.conv(module, x)
        if isinstance(module, nn.ReLU):
            return self.add_node("Relu", [x])
        if isinstance(module, Zero):
            strided = x if module.stride == 1 else self.slice(
                x, (slice(None), slice(None), slice(None, None, module.stride),
                    slice(None, None, module.stride)))
            return self.add_node("Mul", [strided, self.constant("zero", np.float32(0.0))])
        return self.pool(module, x)

    def pool(self, module: nn.Module, x: str) -> str:
        if isinstance(module, nn.AdaptiveAvgPool2d) and module.output_size in (1, (1, 1)):
            return self.add_node("GlobalAveragePool", [x])
        if isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)) and not module.ceil_mode:
            k, s, p = (_pair(v) for v in (module.kernel_size, module.stride, module.padding))
            attributes = {"kernel_shape": k, "strides": s, "pads": p + p}
            if isinstance(module, nn.AvgPool2d):
                return self.add_node("AveragePool", [x], **attributes,
                                     count_include_pad=int(module.count_include_pad))
            return self.add_node("MaxPool", [x], **attributes)
        raise ExportError(f"export: cannot write {module} to ONNX")

    def quantised_input(self, layer: DeployedConv2d, x: str) -> str:
        """Relu, Clip, QuantizeLinear, DequantizeLinear of the layer's input (s_x, zero 0)."""
        if layer.relu_input:
            x = self.add_node("Relu", [x])
        if layer.multiplier is None:
            return x
        scale = np.float32(layer.act_scale.item())
        bound = np.float32(levels(layer.signed) * scale)
        x = self.add_node("Clip", [x, self.constant("low", -bound), self.constant("high", bound)])
        scale_name = self.constant("x_scale", scale)
        zero = self.constant("x_zero", np.zeros((), self.code_dtype(layer)))
        codes = self.add_node("QuantizeLinear", [x, scale_name, zero])
        return self.add_node("DequantizeLinear", [codes, scale_name, zero])

    @staticmethod
    def code_dtype(layer: DeployedConv2d):
        return np.int8 if layer.signed else np.int16

    def parameters(self, layer: DeployedConv2d, weight_shape) -> tuple[str, str]:
        """(weight, bias) inputs: DequantizeLinear of integer codes, or float initializers."""
        if layer.multiplier is None:
            weight = layer.weight.numpy().reshape(weight_shape)
            return self.constant("w", weight), self.constant("b", layer.bias.numpy())
        wq = layer.weight_codes()
        out_channels = weight_shape[0]
        codes = wq.value.numpy().astype(self.code_dtype(layer)).reshape(weight_shape)
        w_scale = layer.weight_scale().numpy().astype(np.float32)
        weight = self.add_node("DequantizeLinear", [
            self.constant("w_codes", codes), self.constant("w_scale", w_scale),
            self.constant("w_zero", np.zeros(out_channels, self.code_dtype(layer)))], axis=0)
        bias = self.add_node("DequantizeLinear", [
            self.constant("b_codes", layer.bias_codes().numpy().astype(np.int32)),
            self.constant("b_scale", layer.accumulator_scale().numpy().astype(np.float32)),
            self.constant("b_zero", np.zeros(out_channels, np.int32))], axis=0)
        return weight, bias

    def conv(self, layer: DeployedConv2d, x: str) -> str:
        g = layer.geometry
        weight, bias = self.parameters(layer, tuple(layer.weight.shape))
        return self.add_node("Conv", [self.quantised_input(layer, x), weight, bias],
                             multiplier_metadata(layer), kernel_shape=list(layer.weight.shape[2:]),
                             strides=list(g.stride), pads=list(g.padding) * 2,
                             dilations=list(g.dilation), group=g.groups)

    def linear(self, layer: DeployedConv2d, x: str) -> str:
        weight, bias = self.parameters(layer, tuple(layer.weight.shape[:2]))
        return self.add_node("Gemm", [self.quantised_input(layer, x), weight, bias],
                             multiplier_metadata(layer), transB=1)


def _pair(value) -> list[int]:
    return [value, value] if isinstance(value, int) else list(value)

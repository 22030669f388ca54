"""The deployed network as an ONNX graph: torch.fx traces the network's own forward with the
deployed layers, pools and Zero ops as leaves, and each traced node becomes ONNX nodes
(export.nodes writes the quantised layers). Supported: the DARTS CIFAR/ImageNet networks
after deploy (adds, concatenations, slices, pools, flatten)."""

from __future__ import annotations

import operator

import torch
import torch.fx
from torch import nn

from deploy import DeployedConv2d, DeployedLinear
from export.deps import ExportError, require
from export.nodes import GraphBuilder
from operations import Zero

OPSET = 21  # int16 QuantizeLinear/DequantizeLinear (sign-magnitude codes) need opset 21
IR_VERSION = 10
LEAVES = (DeployedConv2d, DeployedLinear, nn.AvgPool2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d,
          nn.ReLU, Zero)


class _Tracer(torch.fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, LEAVES) or super().is_leaf_module(m, qualname)


def trace(net: nn.Module) -> torch.fx.GraphModule:
    graph = _Tracer().trace(net)
    return torch.fx.GraphModule(net, graph)


def to_onnx(net: nn.Module, input_size: tuple[int, int, int], producer_note: dict):
    """The ModelProto of the calibrated deployed `net` on (N, *input_size) float32 images."""
    onnx = require("onnx")
    with torch.no_grad():
        output_shape = list(net(torch.zeros(1, *input_size)).shape[1:])
    traced = trace(net)
    builder = GraphBuilder(onnx)
    names: dict[torch.fx.Node, str] = {}
    output = None
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            names[node] = "images"
        elif node.op == "output":
            output = names[node.args[0]]
        else:
            names[node] = emit(builder, traced, node, names)
    graph = onnx.helper.make_graph(
        builder.nodes, "axdarts_deployed_int8",
        [onnx.helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT,
                                            ["N", *input_size])],
        [onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT,
                                            ["N", *output_shape])],
        builder.initializers)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   producer_name="axdarts.export")
    model.ir_version = IR_VERSION
    onnx.helper.set_model_props(model, {key: str(value) for key, value in producer_note.items()})
    onnx.checker.check_model(model)
    return model


def emit(builder: GraphBuilder, traced, node: torch.fx.Node, names: dict) -> str:
    """ONNX nodes for one fx node; returns the name of its output."""
    args = list(torch.fx.node.map_arg(node.args, lambda n: names[n]))
    if node.op == "call_module":
        return builder.module(traced.get_submodule(node.target), args[0])
    if node.op == "call_method" and node.target == "contiguous":
        return args[0]
    if node.op == "call_function":
        return function(builder, node, args)
    raise ExportError(f"export: cannot write the traced step {node.op} {node.target} to ONNX")


def function(builder: GraphBuilder, node: torch.fx.Node, args: list) -> str:
    if node.target in (operator.add, torch.add):
        tensors = [a for a in args if isinstance(a, str)]
        if len(tensors) == 1 and all(a == 0 for a in args if not isinstance(a, str)):
            return tensors[0]  # the cell's `0 + h`
        return builder.add_node("Add", tensors)
    if node.target is torch.cat:
        dim = args[1] if len(args) > 1 else node.kwargs.get("dim", 0)
        return builder.add_node("Concat", list(args[0]), axis=dim)
    if node.target is torch.flatten:
        return builder.add_node("Flatten", [args[0]], axis=args[1])
    if node.target is operator.getitem:
        return builder.slice(args[0], args[1])
    raise ExportError(f"export: cannot write {node.target} to ONNX")

"""What precision an ONNX graph runs in, read from the graph itself (pure: takes a ModelProto).

INT8 means explicit quantisation (QuantizeLinear nodes, which TensorRT and ONNX Runtime both
honour); FP16 means the first convolution computes in half precision (an FP16 ONNX, e.g. from
onnxconverter-common with float32 inputs/outputs kept); anything else is FP32.
"""

from __future__ import annotations

from typing import Any

FLOAT16 = 10  # onnx.TensorProto.FLOAT16, spelled out so this module needs no onnx import


def has_qdq(model: Any) -> bool:
    """True when the graph quantises explicitly (QuantizeLinear present)."""
    return any(node.op_type == "QuantizeLinear" for node in model.graph.node)


def _first_conv(model: Any) -> Any | None:
    return next((node for node in model.graph.node if node.op_type == "Conv"), None)


def _elem_type(model: Any, name: str) -> int | None:
    """Element type of a tensor by name, where the graph records it."""
    graph = model.graph
    for init in graph.initializer:
        if init.name == name:
            return int(init.data_type)
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        if vi.name == name:
            return int(vi.type.tensor_type.elem_type)
    for node in graph.node:
        if node.op_type == "Cast" and name in node.output:
            return next((int(a.i) for a in node.attribute if a.name == "to"), None)
    return None


def is_fp16_graph(model: Any) -> bool:
    """True when the first convolution's input or weight is float16."""
    conv = _first_conv(model)
    if conv is None:
        return False
    return any(_elem_type(model, name) == FLOAT16 for name in conv.input[:2])


def graph_precision(model: Any) -> str:
    """``"int8"``, ``"fp16"`` or ``"fp32"`` for an ONNX ModelProto."""
    if has_qdq(model):
        return "int8"
    if is_fp16_graph(model):
        return "fp16"
    return "fp32"

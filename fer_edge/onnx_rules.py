"""TensorRT's explicit-quantisation rules, checked on an ONNX graph (DESIGN.md, "INT8").

TensorRT 8.6, 10.x and 11.x build a Q/DQ graph into INT8 kernels only when:

- every ``QuantizeLinear``/``DequantizeLinear`` is int8 (not uint8) with zero point 0 (symmetric);
- weight scales are per channel, on axis 0 of a Conv weight and on the output axis of a
  Gemm/MatMul weight; activation scales are per tensor (a scalar);
- the opset is 13 or newer (per-channel Q/DQ needs 13);
- there are no ``QLinear*``, ``ConvInteger``, ``MatMulInteger`` or ``DynamicQuantizeLinear`` nodes;
- biases stay float: no ``DequantizeLinear`` of an int32 tensor (ONNX Runtime's quantised bias).

:func:`tensorrt_violations` returns one message per broken rule; an empty list means the graph
follows them all. Pure: it reads the model proto only (no ONNX Runtime, no TensorRT).
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
FORBIDDEN_OPS = ("ConvInteger", "MatMulInteger", "DynamicQuantizeLinear")
MIN_OPSET = 13


def _constants(graph: Any) -> dict[str, np.ndarray]:
    """Every tensor whose value is known from the graph: initializers and Constant outputs."""
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _attr(node: Any, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(attr.i)
    return default


def _describe(node: Any) -> str:
    return f"{node.op_type} {node.name or node.output[0]!r}"


def _weight_axis(consumer: Any, input_index: int, rank: int) -> int | None:
    """The output-channel axis of the weight that ``consumer`` reads at ``input_index``."""
    if consumer.op_type in ("Conv", "ConvTranspose") and input_index == 1:
        return 0 if consumer.op_type == "Conv" else 1
    if consumer.op_type == "Gemm" and input_index == 1:
        return 0 if _attr(consumer, "transB", 0) else 1
    if consumer.op_type == "MatMul" and input_index == 1:
        return rank - 1
    return None


def opset_version(model: Any) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 0


def tensorrt_violations(model: Any) -> list[str]:
    """Every TensorRT explicit-quantisation rule ``model`` breaks, one message each."""
    graph = model.graph
    problems: list[str] = []
    opset = opset_version(model)
    if opset < MIN_OPSET:
        problems.append(f"opset {opset} is older than {MIN_OPSET} (per-channel Q/DQ needs it)")

    consts = _constants(graph)
    consumers: dict[str, list[tuple[Any, int]]] = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, i))

    for node in graph.node:
        if node.op_type.startswith("QLinear") or node.op_type in FORBIDDEN_OPS:
            problems.append(f"{_describe(node)}: operator {node.op_type} is not allowed (use Q/DQ pairs)")
        if node.domain not in ("", "ai.onnx") and node.op_type in QDQ_OPS:
            problems.append(f"{_describe(node)}: Q/DQ from domain {node.domain!r}, not the standard one")
        if node.op_type not in QDQ_OPS:
            continue
        problems.extend(_qdq_problems(node, consts, consumers))
    return problems


Consumers = Dict[str, List[Tuple[Any, int]]]


def _qdq_problems(node: Any, consts: dict[str, np.ndarray], consumers: Consumers) -> list[str]:
    problems: list[str] = []
    where = _describe(node)
    is_dq = node.op_type == "DequantizeLinear"
    x_name = node.input[0]
    scale = consts.get(node.input[1]) if len(node.input) > 1 else None
    zp_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
    zp = consts.get(zp_name) if zp_name else None

    # Quantised bias: ONNX Runtime writes biases as int32 tensors behind a DequantizeLinear.
    x_value = consts.get(x_name)
    if is_dq and x_value is not None and x_value.dtype == np.int32:
        feeds = ", ".join(f"{c.op_type} {c.name!r}" for c, _ in consumers.get(node.output[0], []))
        problems.append(f"{where}: quantised (int32) bias feeding {feeds or 'nothing'}; keep biases float")
        return problems

    # The integer type: the zero point's dtype, or for a DQ of a constant the constant's dtype.
    if zp_name is None:
        if is_dq and x_value is not None:
            qtype = x_value.dtype
        elif is_dq:
            qtype = None  # the producing Q decides; it is checked itself
        else:
            qtype = np.dtype(np.uint8)  # QuantizeLinear without a zero point outputs uint8
    elif zp is None:
        problems.append(f"{where}: zero point {zp_name!r} is not a constant")
        qtype = None
    else:
        qtype = zp.dtype
    if qtype is not None and qtype != np.int8:
        problems.append(f"{where}: {np.dtype(qtype).name} quantisation; TensorRT needs int8")
    if zp is not None and np.any(zp != 0):
        shown = zp.reshape(-1)[:4].tolist()
        problems.append(f"{where}: zero point {shown} is not 0 (asymmetric quantisation)")

    if scale is None:
        problems.append(f"{where}: scale {node.input[1]!r} is not a constant")
        return problems
    per_channel = scale.ndim > 0 and scale.size > 1
    if is_dq and x_value is not None:
        # A weight: per channel on the consumer's output axis.
        for consumer, index in consumers.get(node.output[0], []):
            axis = _weight_axis(consumer, index, x_value.ndim)
            if axis is None:
                continue
            channels = x_value.shape[axis]
            declared = _attr(node, "axis", 1)
            if declared < 0:
                declared += x_value.ndim
            if not per_channel and channels > 1:
                problems.append(f"{where}: per-tensor weight scale for {_describe(consumer)}; "
                                f"TensorRT needs per-channel scales on axis {axis}")
            elif per_channel and (declared != axis or scale.size != channels):
                problems.append(f"{where}: weight scales on axis {declared} ({scale.size} values) for "
                                f"{_describe(consumer)}; expected axis {axis} ({channels} channels)")
    elif per_channel and x_value is None:
        problems.append(f"{where}: per-channel scale ({scale.size} values) on an activation; "
                        "TensorRT needs per-tensor activation scales")
    return problems

"""TensorRT's explicit-quantisation rules, checked on an ONNX graph (docs/architecture.md, "INT8").

TensorRT 8.6, 10.x and 11.x build a Q/DQ graph into INT8 kernels only when:

- every ``QuantizeLinear``/``DequantizeLinear`` is int8 (not uint8) with zero point 0 (symmetric);
- weight scales are per channel, on axis 0 of a Conv weight and on the output axis of a
  Gemm/MatMul weight; activation scales are per tensor (a scalar);
- every ``QuantizeLinear``/``DequantizeLinear`` gives its zero point explicitly, and its scale is
  positive (TensorRT computes the reciprocal of the scale);
- the opset is 13 or newer (per-channel Q/DQ needs 13) and no newer than the target TensorRT's
  ONNX parser takes (:data:`PARSER_MAX_OPSET`);
- there are no ``QLinear*``, ``ConvInteger``, ``MatMulInteger`` or ``DynamicQuantizeLinear`` nodes;
- biases stay float: no ``DequantizeLinear`` of an int32 tensor (ONNX Runtime's quantised bias).

:func:`tensorrt_violations` returns one message per broken rule; an empty list means the graph
follows them all. :func:`placement_warnings` flags Q/DQ placements that build but cost speed or
accuracy (NVIDIA's placement guidance: Q/DQ on the inputs of weighted layers, none between a
Conv/Gemm and its activation, none on the graph output). Pure: they read the model proto only
(no ONNX Runtime, no TensorRT).
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
FORBIDDEN_OPS = ("ConvInteger", "MatMulInteger", "DynamicQuantizeLinear")
MIN_OPSET = 13
WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")
ACTIVATIONS = ("Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu",
               "PRelu", "Softplus", "Gelu")

# The newest ONNX opset each TensorRT's ONNX parser takes, as (major, minor, opset), oldest first.
# Sources: the "supports operators up to Opset N" line of onnx/onnx-tensorrt docs/operators.md at
# each release (8.5: 17, 8.6: 17, 9.x: 19, 10.0/10.1: "opset 9 to opset 20"), and NVIDIA's ONNX
# Opset Guide for TensorRT 11.x (maximum opset 25). Later 10.x releases take more than 20; 20 is
# the documented floor for the 10.3 of JetPack 6.1/6.2, so a model that passes parses there.
PARSER_MAX_OPSET: Tuple[Tuple[int, int, int], ...] = (
    (8, 5, 17),
    (8, 6, 17),
    (9, 0, 19),
    (10, 0, 20),
    (11, 0, 25),
)
# The oldest TensorRT fer-edge supports (JetPack 5.1): a model that passes for it parses on all.
DEFAULT_TRT_TARGET = (8, 5)


def max_parser_opset(trt_version: tuple[int, int]) -> int:
    """The newest opset the ONNX parser of TensorRT ``trt_version`` takes (pure)."""
    supported = [opset for major, minor, opset in PARSER_MAX_OPSET if (major, minor) <= trt_version]
    if not supported:
        oldest = PARSER_MAX_OPSET[0]
        raise ValueError(f"TensorRT {trt_version[0]}.{trt_version[1]} is older than {oldest[0]}.{oldest[1]}")
    return supported[-1]


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


def tensorrt_violations(model: Any, trt_version: tuple[int, int] | None = DEFAULT_TRT_TARGET) -> list[str]:
    """Every TensorRT explicit-quantisation rule ``model`` breaks, one message each, for a build
    with TensorRT ``trt_version`` (it decides the newest opset allowed; None: not checked)."""
    graph = model.graph
    problems: list[str] = []
    opset = opset_version(model)
    if opset < MIN_OPSET:
        problems.append(f"opset {opset} is older than {MIN_OPSET} (per-channel Q/DQ needs it)")
    newest = max_parser_opset(trt_version) if trt_version is not None else opset
    if trt_version is not None and opset > newest:
        problems.append(f"opset {opset} is newer than TensorRT {trt_version[0]}.{trt_version[1]}'s ONNX parser "
                        f"takes ({newest}); re-export with opset {newest} or target a newer TensorRT")

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
        # Without one, QuantizeLinear outputs uint8 and TensorRT's parser assumes a type.
        problems.append(f"{where}: no explicit zero point; give an int8 zero point 0 (symmetric)")
        qtype = x_value.dtype if is_dq and x_value is not None else None
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
    if scale.size == 0 or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        bad = scale.reshape(-1)[~(np.isfinite(scale.reshape(-1)) & (scale.reshape(-1) > 0))][:4].tolist()
        problems.append(f"{where}: scale {node.input[1]!r} has non-positive or non-finite values {bad}; "
                        "TensorRT needs positive scales")
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


def placement_warnings(model: Any) -> list[str]:
    """Q/DQ placements TensorRT builds but that go against NVIDIA's placement guidance.

    - A Q/DQ pair between a Conv/Gemm/MatMul and its activation: TensorRT cannot fuse the
      activation into the convolution's INT8 kernel, and the activation's input is quantised
      before its floor is applied (half the int8 codes wasted on values the ReLU drops).
    - A Q/DQ pair on a graph output: the output (the logits) is rounded to 256 levels.
    """
    graph = model.graph
    producers = {out: n for n in graph.node for out in n.output}
    warnings: list[str] = []

    def qdq_source(tensor: str) -> Any | None:
        """The node before a ``Q -> DQ`` pair that ends in ``tensor``, or None if there is none."""
        dq = producers.get(tensor)
        if dq is None or dq.op_type != "DequantizeLinear":
            return None
        q = producers.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            return None
        return producers.get(q.input[0])

    for node in graph.node:
        if node.op_type not in ACTIVATIONS or not node.input:
            continue
        source = qdq_source(node.input[0])
        if source is not None and source.op_type in WEIGHTED:
            warnings.append(f"Q/DQ between {_describe(source)} and its activation {_describe(node)}: blocks "
                            "TensorRT's fusion; quantise the inputs of the next weighted layer instead")
    for output in graph.output:
        producer = producers.get(output.name)
        if producer is not None and producer.op_type in QDQ_OPS:
            warnings.append(f"graph output {output.name!r} is quantised ({_describe(producer)}); leave the "
                            "output in float (no Q/DQ after the last layer)")
    return warnings

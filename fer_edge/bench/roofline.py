"""Roofline lower bound: per layer, multiply-adds and bytes moved, against a device's peak rates.

A layer cannot finish faster than ``max(2 * MACs / peak ops, bytes / memory bandwidth)``; the model's
bound is the sum over its Conv and Gemm/MatMul layers (BatchNorm, ReLU and pooling fuse into them or
are negligible). Bytes = weights (1, 2 or 4 bytes a value for INT8, FP16, FP32; bias 4) + input and
output activations, each moved once: the best any implementation can do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fer_edge.core.errors import FerEdgeError

ELEMENT_BYTES = {"int8": 1, "fp16": 2, "fp32": 4}
BIAS_BYTES = 4


@dataclass(frozen=True)
class LayerCost:
    name: str
    kind: str  # "conv" | "fc"
    output_shape: tuple[int, ...]  # without the batch dimension
    macs: int  # per image
    weights: int  # weight values (bias excluded)
    bias: int
    input_elems: int  # per image
    output_elems: int  # per image

    def bytes_moved(self, precision: str, batch: int = 1) -> int:
        e = ELEMENT_BYTES[precision]
        return self.weights * e + self.bias * BIAS_BYTES + batch * (self.input_elems + self.output_elems) * e


@dataclass(frozen=True)
class LayerBound:
    layer: LayerCost
    bytes: int
    compute_s: float
    memory_s: float

    @property
    def bound_s(self) -> float:
        return max(self.compute_s, self.memory_s)

    @property
    def limit(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory"


class PeakDevice(Protocol):
    """A device's peak rates: a Jetson's published ones or this CPU's (``host_peak``)."""

    @property
    def name(self) -> str: ...
    @property
    def memory_bandwidth_gbs(self) -> float: ...
    @property
    def precisions(self) -> tuple[str, str]: ...  # the two the table compares, low first
    @property
    def caption(self) -> str: ...  # where the figures come from, what the bound leaves out
    def dense_tops(self, precision: str) -> float: ...  # 10^12 operations (2 per MAC) per second


def _shape_table(model: Any) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {}
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    for vi in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        dims = vi.type.tensor_type.shape.dim
        # A dynamic batch dimension counts as 1: costs are per image.
        shapes[vi.name] = [int(d.dim_value) if d.HasField("dim_value") else 1 for d in dims]
    return shapes


def _prod(values: list[int] | tuple[int, ...]) -> int:
    return int(math.prod(values))


def layers_from_onnx(path: str | Path) -> list[LayerCost]:
    """Conv and Gemm/MatMul layers of an ONNX model, FP32 or Q/DQ, via ONNX shape inference."""
    import onnx

    from fer_edge.model.onnx_contract import load_onnx

    model = load_onnx(path)
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # noqa: BLE001 - onnx raises several types for a bad graph
        raise FerEdgeError(f"ONNX shape inference failed ({type(exc).__name__})", path=path) from None
    shapes = _shape_table(model)
    layers: list[LayerCost] = []
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        x, w = shapes.get(node.input[0]), shapes.get(node.input[1])
        y = shapes.get(node.output[0])
        if not x or not w or not y:
            raise FerEdgeError(f"cannot infer the shapes around {node.op_type} node {node.name!r}", path=path)
        bias = _prod(shapes.get(node.input[2], [0])) if len(node.input) > 2 and node.input[2] else 0
        if node.op_type == "Conv":  # y [N, Cout, H, W], w [Cout, Cin/groups, kh, kw]: prod(w[1:]) a value
            macs, kind = _prod(y[1:]) * _prod(w[1:]), "conv"
        else:
            macs, kind = w[0] * w[1], "fc"  # K x N, whichever way round (transB) W is stored
        name = node.name or f"{node.op_type.lower()}{len(layers) + 1}"
        layers.append(LayerCost(name, kind, tuple(y[1:]), macs, _prod(w), bias, _prod(x[1:]), _prod(y[1:])))
    if not layers:
        raise FerEdgeError("has no Conv or Gemm/MatMul layers to estimate", path=path)
    return layers


def layer_bounds(
    layers: list[LayerCost], device: PeakDevice, precision: str, batch: int = 1
) -> list[LayerBound]:
    if precision not in ELEMENT_BYTES:
        raise FerEdgeError(f"roofline precision must be one of {', '.join(ELEMENT_BYTES)}, got {precision!r}")
    ops_per_s, bytes_per_s = device.dense_tops(precision) * 1e12, device.memory_bandwidth_gbs * 1e9
    return [
        LayerBound(layer, layer.bytes_moved(precision, batch), 2.0 * layer.macs * batch / ops_per_s,
                   layer.bytes_moved(precision, batch) / bytes_per_s)
        for layer in layers
    ]


def total_macs(layers: list[LayerCost]) -> int:
    return sum(layer.macs for layer in layers)


def total_bound_s(bounds: list[LayerBound]) -> float:
    return sum(b.bound_s for b in bounds)


def total_compute_s(bounds: list[LayerBound]) -> float:
    """The compute term alone, summed: the floor if every byte came from cache."""
    return sum(b.compute_s for b in bounds)


def _short_layer(name: str) -> str:
    # "/features/features.15/Conv" -> "features.15/Conv": the last two parts name the layer
    return "/".join(name.strip("/").split("/")[-2:])


def estimate_table(layers: list[LayerCost], device: PeakDevice, batch: int = 1, wide: bool = False) -> Any:
    """One row a layer, the device's two precisions side by side, totals at the bottom; fitted to the
    terminal (the bounds, µs, are the last columns hidden)."""
    from fer_edge.core.tables import FitTable

    bounds = [layer_bounds(layers, device, p, 1) for p in device.precisions]
    table = FitTable(f"roofline lower bound, batch 1, {device.name}", notes=[device.caption], wide=wide)
    table.add_column("layer", justify="left", shrink=True, short=_short_layer)
    table.add_column("output", justify="left", priority=6)
    table.add_column("MACs (M)", priority=5)
    table.add_column("weights", priority=7)
    for i, precision in enumerate(p.upper() for p in device.precisions):
        table.add_column(f"{precision} MB", priority=8 + i)
        table.add_column(f"{precision} µs", priority=1 + i)
        table.add_column("limit", justify="left", priority=3 + i, name=f"{precision} limit")
    for i, layer in enumerate(layers):
        cells = [[f"{b[i].bytes / 1e6:.3f}", f"{b[i].bound_s * 1e6:.1f}", b[i].limit] for b in bounds]
        table.add_row(layer.name, "x".join(map(str, layer.output_shape)), f"{layer.macs / 1e6:.2f}",
                      f"{layer.weights:,}", *cells[0], *cells[1])
    table.add_section()
    totals = [[f"{sum(x.bytes for x in b) / 1e6:.3f}", f"{total_bound_s(b) * 1e6:.1f}", ""] for b in bounds]
    table.add_row("total", "", f"{total_macs(layers) / 1e6:.2f}", f"{sum(x.weights for x in layers):,}",
                  *totals[0], *totals[1])
    if batch > 1:
        per = [f"{total_bound_s(layer_bounds(layers, device, p, batch)) / batch * 1e6:.1f}" for p in device.precisions]
        table.add_row(f"batch {batch}", "per image", "", "", "", per[0], "", "", per[1], "")
    return table

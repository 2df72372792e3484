"""Roofline lower bound: per layer, multiply-adds and bytes moved, against a device's peak rates.

A layer cannot finish faster than ``max(2 * MACs / peak ops, bytes / memory bandwidth)``; the
model's bound is the sum over layers. Only Conv and Gemm/MatMul are counted: BatchNorm, ReLU
and pooling are fused into them by TensorRT (or are negligible), so the bound stays a lower bound.
Bytes = weights (1 byte per value in INT8, 2 in FP16, 4 in FP32; bias 4 bytes) + input and output
activations (same element size), each read or written once from DRAM: the best any implementation
can do. The device is anything with the :class:`PeakDevice` fields: a Jetson's published peaks
(:mod:`fer_edge.bench.jetson_specs`) or this machine's measured ones (:mod:`fer_edge.bench.host_peak`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fer_edge.errors import FerEdgeError

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
    """What the roofline needs of a device: its peak rates, and how to describe them."""

    @property
    def name(self) -> str: ...
    @property
    def memory_bandwidth_gbs(self) -> float: ...
    @property
    def precisions(self) -> tuple[str, str]:
        """The two precisions the table compares, low first: ("int8", "fp16") on a Jetson."""
        ...

    @property
    def caption(self) -> str:
        """Where the peak figures come from, and what the bound leaves out."""
        ...

    def dense_tops(self, precision: str) -> float:
        """Peak dense operations (2 per multiply-add) per second, in units of 10^12."""
        ...


class ConfigLike(Protocol):
    """The fields of fer_edge.model.ModelConfig that the arithmetic needs (read-only, as it is frozen)."""

    @property
    def num_classes(self) -> int: ...
    @property
    def depth(self) -> int: ...
    @property
    def kernel_size(self) -> int: ...
    @property
    def base_filters(self) -> int: ...
    @property
    def fc_width(self) -> int: ...
    @property
    def fc_layers(self) -> int: ...
    @property
    def image_size(self) -> int: ...


def layers_from_config(config: ConfigLike) -> list[LayerCost]:
    """The layers of fer_edge.model.FerCNN, from its config alone (no torch needed)."""
    layers: list[LayerCost] = []
    channels, size = 1, config.image_size
    k = config.kernel_size
    for i in range(config.depth):
        out = config.base_filters * 2**i
        layers.append(
            LayerCost(
                name=f"conv{i + 1}",
                kind="conv",
                output_shape=(out, size, size),
                macs=size * size * out * channels * k * k,
                weights=out * channels * k * k,
                bias=out,
                input_elems=channels * size * size,
                output_elems=out * size * size,
            )
        )
        if i > 0 and size >= 2:
            size //= 2
        channels = out
    width = channels * size * size
    widths = [config.fc_width] * config.fc_layers + [config.num_classes]
    for j, out in enumerate(widths):
        layers.append(
            LayerCost(
                name=f"fc{j + 1}",
                kind="fc",
                output_shape=(out,),
                macs=width * out,
                weights=width * out,
                bias=out,
                input_elems=width,
                output_elems=out,
            )
        )
        width = out
    return layers


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

    from fer_edge.onnx_model import load_onnx

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
        if node.op_type == "Conv":
            # y: [N, Cout, H, W]; w: [Cout, Cin/groups, kh, kw]; MACs per output element = prod(w[1:])
            macs = _prod(y[1:]) * _prod(w[1:])
            kind = "conv"
        else:
            trans_b = any(a.name == "transB" and a.i == 1 for a in node.attribute)
            k_in, n_out = (w[1], w[0]) if trans_b else (w[0], w[1])
            macs = k_in * n_out
            kind = "fc"
        layers.append(
            LayerCost(
                name=node.name or f"{node.op_type.lower()}{len(layers) + 1}",
                kind=kind,
                output_shape=tuple(y[1:]),
                macs=macs,
                weights=_prod(w),
                bias=bias,
                input_elems=_prod(x[1:]),
                output_elems=_prod(y[1:]),
            )
        )
    if not layers:
        raise FerEdgeError("has no Conv or Gemm/MatMul layers to estimate", path=path)
    return layers


def layer_bounds(
    layers: list[LayerCost], device: PeakDevice, precision: str, batch: int = 1
) -> list[LayerBound]:
    if precision not in ELEMENT_BYTES:
        raise FerEdgeError(f"roofline precision must be one of {', '.join(ELEMENT_BYTES)}, got {precision!r}")
    ops_per_s = device.dense_tops(precision) * 1e12
    bytes_per_s = device.memory_bandwidth_gbs * 1e9
    out = []
    for layer in layers:
        moved = layer.bytes_moved(precision, batch)
        out.append(
            LayerBound(
                layer=layer,
                bytes=moved,
                compute_s=2.0 * layer.macs * batch / ops_per_s,
                memory_s=moved / bytes_per_s,
            )
        )
    return out


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
    """A table fitted to the terminal: one row a layer, the device's two precisions side by side, totals at the
    bottom. The bounds (µs) are the last columns hidden on a narrow terminal."""
    from fer_edge.tables import FitTable

    low_p, high_p = device.precisions
    low = layer_bounds(layers, device, low_p, 1)
    high = layer_bounds(layers, device, high_p, 1)
    table = FitTable(f"roofline lower bound, batch 1, {device.name}", notes=[device.caption], wide=wide)
    lo, hi = low_p.upper(), high_p.upper()
    table.add_column("layer", justify="left", shrink=True, short=_short_layer)
    table.add_column("output", justify="left", priority=6)
    table.add_column("MACs (M)", priority=5)
    table.add_column("weights", priority=7)
    table.add_column(f"{lo} MB", priority=8)
    table.add_column(f"{lo} µs", priority=1)
    table.add_column("limit", justify="left", priority=3, name=f"{lo} limit")
    table.add_column(f"{hi} MB", priority=9)
    table.add_column(f"{hi} µs", priority=2)
    table.add_column("limit", justify="left", priority=4, name=f"{hi} limit")
    for a, b in zip(low, high):
        table.add_row(
            a.layer.name,
            "x".join(map(str, a.layer.output_shape)),
            f"{a.layer.macs / 1e6:.2f}",
            f"{a.layer.weights:,}",
            f"{a.bytes / 1e6:.3f}",
            f"{a.bound_s * 1e6:.1f}",
            a.limit,
            f"{b.bytes / 1e6:.3f}",
            f"{b.bound_s * 1e6:.1f}",
            b.limit,
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        f"{total_macs(layers) / 1e6:.2f}",
        f"{sum(x.weights for x in layers):,}",
        f"{sum(x.bytes for x in low) / 1e6:.3f}",
        f"{total_bound_s(low) * 1e6:.1f}",
        "",
        f"{sum(x.bytes for x in high) / 1e6:.3f}",
        f"{total_bound_s(high) * 1e6:.1f}",
        "",
    )
    if batch > 1:
        per_low = total_bound_s(layer_bounds(layers, device, low_p, batch))
        per_high = total_bound_s(layer_bounds(layers, device, high_p, batch))
        table.add_row(
            f"batch {batch}",
            "per image",
            "",
            "",
            "",
            f"{per_low / batch * 1e6:.1f}",
            "",
            "",
            f"{per_high / batch * 1e6:.1f}",
            "",
        )
    return table

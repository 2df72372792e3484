"""``fer-edge bench --estimate DEVICE``: which layers to count, and the host report (JSON, Markdown)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fer_edge.atomic import write_text_atomic
from fer_edge.bench.machine import machine_info
from fer_edge.bench.roofline import (
    LayerBound,
    LayerCost,
    layer_bounds,
    layers_from_config,
    layers_from_onnx,
    total_bound_s,
    total_compute_s,
    total_macs,
)
from fer_edge.errors import FerEdgeError

if TYPE_CHECKING:
    from fer_edge.bench.host_peak import HostPeaks

HOST_SCHEMA_VERSION = 1


def estimate_layers(models: list[Path]) -> tuple[list[LayerCost], str]:
    """Layers of the one given ONNX model, else the shipped FP32 model, else the default config."""
    onnx_models = [m for m in models if m.suffix.lower() == ".onnx"]
    if len(onnx_models) > 1:
        raise FerEdgeError(
            "--estimate takes one ONNX model (the layer shapes are the same for every precision)"
        )
    if onnx_models:
        return layers_from_onnx(onnx_models[0]), str(onnx_models[0])
    if models:
        raise FerEdgeError("--estimate reads an ONNX model; give the .onnx the engine was built from")
    from fer_edge.weights import WEIGHTS_DIR

    shipped = WEIGHTS_DIR / "fer2013.onnx"
    if shipped.is_file():
        return layers_from_onnx(shipped), str(shipped)
    try:
        from fer_edge.model import ModelConfig
    except ImportError:
        raise FerEdgeError(
            "no shipped fer2013.onnx and no torch to read the default model config; pass --models model.onnx"
        ) from None
    return layers_from_config(ModelConfig()), "the default ModelConfig (salimov-cnn-d6-k2)"


def _bound_dict(bound: LayerBound) -> dict[str, Any]:
    return {
        "bytes": bound.bytes,
        "compute_us": round(bound.compute_s * 1e6, 3),
        "memory_us": round(bound.memory_s * 1e6, 3),
        "bound_us": round(bound.bound_s * 1e6, 3),
        "limit": bound.limit,
    }


def _floors(layers: list[LayerCost], peaks: HostPeaks, batch: int) -> dict[str, float]:
    """Per-image times in ms: the floor (compute alone) and the roofline with every byte from DRAM.

    On a CPU the floor is the compute term: weights that fit in the last-level cache (this model's
    15 MB of FP32 weights fit a 32 MB L3) stay there between calls, so the DRAM term can be beaten
    and is not a bound. The DRAM roofline (per layer max(compute, memory), summed) is reported
    beside it for a cold cache or a larger model.
    """
    out: dict[str, float] = {}
    for precision in peaks.precisions:
        bounds = layer_bounds(layers, peaks, precision, batch)
        out[f"{precision}_floor_ms"] = round(total_compute_s(bounds) / batch * 1e3, 4)
        out[f"{precision}_dram_roofline_ms"] = round(total_bound_s(bounds) / batch * 1e3, 4)
    return out


def host_report(
    layers: list[LayerCost],
    source: str,
    peaks: HostPeaks,
    batch: int = 1,
    machine: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything ``--estimate host`` shows, as plain data: the machine, the peaks, layers, totals."""
    int8 = layer_bounds(layers, peaks, "int8")
    fp32 = layer_bounds(layers, peaks, "fp32")
    rows = [
        {
            "name": a.layer.name,
            "kind": a.layer.kind,
            "output": list(a.layer.output_shape),
            "macs": a.layer.macs,
            "weights": a.layer.weights,
            "int8": _bound_dict(a),
            "fp32": _bound_dict(b),
        }
        for a, b in zip(int8, fp32)
    ]
    totals: dict[str, Any] = {"macs": total_macs(layers), **_floors(layers, peaks, 1)}
    totals["fp32_over_int8"] = round(totals["fp32_floor_ms"] / totals["int8_floor_ms"], 3)
    totals["fp32_over_int8_dram_roofline"] = round(
        totals["fp32_dram_roofline_ms"] / totals["int8_dram_roofline_ms"], 3
    )
    if batch > 1:
        totals["batch"] = {str(batch): _floors(layers, peaks, batch)}
    return {
        "schema": HOST_SCHEMA_VERSION,
        "kind": "host-roofline",
        "machine": machine if machine is not None else machine_info(),
        "peaks": peaks.to_dict(),
        "layers_of": source,
        "layers": rows,
        "totals": totals,
    }


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The totals in three lines, for the screen and the Markdown."""
    t = report["totals"]
    lines = [
        f"{p.upper()} floor: {t[f'{p}_floor_ms']:.3f} ms/image at the measured GEMM rate "
        f"({t[f'{p}_dram_roofline_ms']:.3f} if every byte came from DRAM: the table's total)"
        for p in ("int8", "fp32")
    ]
    lines.append(
        f"ceiling ratio FP32/INT8: {t['fp32_over_int8']:.2f}x ({t['fp32_over_int8_dram_roofline']:.2f}x from DRAM)"
    )
    return lines


def write_host_json(report: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")


def host_markdown(report: dict[str, Any]) -> str:
    machine, peaks = report["machine"], report["peaks"]
    packages = machine.get("packages", {})
    versions = ", ".join(f"{k} {v}" for k, v in packages.items())
    flags = " ".join(machine.get("cpu_flags") or []) or "unknown"
    lines = [
        "# Roofline of this machine, from measured peak rates",
        "",
        f"- Machine: {machine.get('cpu')}, {machine.get('cores')} cores, SIMD flags: {flags}; {machine.get('os')}",
        f"- Versions: Python {machine.get('python')}; {versions}",
        f"- Load average at the start: {machine.get('load_average')}",
        f"- Command: `{machine.get('command')}`",
        f"- Layers of: {report['layers_of']}",
        "",
        "| threads | FP32 GMAC/s | INT8 GMAC/s | INT8/FP32 | memory GB/s |",
        "|---:|---:|---:|---:|---:|",
        f"| {peaks['threads']} | {peaks['fp32_gmacs']:.1f} | {peaks['int8_gmacs']:.1f} "
        f"| {peaks['int8_gmacs'] / peaks['fp32_gmacs']:.2f}x | {peaks['memory_gbs']:.1f} |",
        "",
        f"Method: {peaks['method']}",
        "",
        "| layer | output | MACs (M) | weights | INT8 MB | INT8 µs | limit | FP32 MB | FP32 µs | limit |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for row in report["layers"]:
        a, b = row["int8"], row["fp32"]
        lines.append(
            f"| {row['name']} | {'x'.join(map(str, row['output']))} | {row['macs'] / 1e6:.2f} | {row['weights']:,} "
            f"| {a['bytes'] / 1e6:.3f} | {a['bound_us']:.1f} | {a['limit']} "
            f"| {b['bytes'] / 1e6:.3f} | {b['bound_us']:.1f} | {b['limit']} |"
        )
    t = report["totals"]
    lines.append(
        f"| **total** | | {t['macs'] / 1e6:.2f} | {sum(r['weights'] for r in report['layers']):,} "
        f"| {sum(r['int8']['bytes'] for r in report['layers']) / 1e6:.3f} | {t['int8_dram_roofline_ms'] * 1e3:.1f} | "
        f"| {sum(r['fp32']['bytes'] for r in report['layers']) / 1e6:.3f} | {t['fp32_dram_roofline_ms'] * 1e3:.1f} | |"
    )
    lines += ["", *(f"- {line}" for line in summary_lines(report)), ""]
    lines.append(
        "Each layer's µs is max(2 × MACs / peak ops/s, bytes / DRAM bandwidth), summed over the Conv and "
        "Gemm layers (BN/ReLU/pool assumed fused). The floors are the compute term alone: weights that fit "
        "in the CPU's last-level cache stay there between calls, so the DRAM term is not a bound. The "
        "peaks are a large GEMM's, which a small CNN's convolutions rarely reach: floors, not predictions."
    )
    return "\n".join(lines) + "\n"


def write_host_markdown(report: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, host_markdown(report))

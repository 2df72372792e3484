"""``fer-edge bench --estimate DEVICE``: which layers to count, and the host report (JSON, Markdown)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fer_edge.bench.roofline import (
    LayerBound,
    LayerCost,
    layer_bounds,
    layers_from_onnx,
    total_bound_s,
    total_compute_s,
    total_macs,
)
from fer_edge.core.atomic import write_text_atomic
from fer_edge.core.errors import FerEdgeError
from fer_edge.core.markdown import markdown_table

if TYPE_CHECKING:
    from fer_edge.bench.host_peak import HostPeaks

HOST_SCHEMA_VERSION = 2  # 2: peaks from the instruction set (1: measured GEMMs)


def estimate_layers(models: list[Path]) -> tuple[list[LayerCost], str]:
    """Layers of the one given ONNX model, else of the shipped FP32 model (every precision has the same)."""
    onnx_models = [m for m in models if m.suffix.lower() == ".onnx"]
    if len(onnx_models) > 1:
        raise FerEdgeError("--estimate takes one ONNX model (the layer shapes are the same for every precision)")
    if models and not onnx_models:
        raise FerEdgeError("--estimate reads an ONNX model; give the .onnx the engine was built from")
    from fer_edge.model.shipped import WEIGHTS_DIR

    model = onnx_models[0] if onnx_models else WEIGHTS_DIR / "fer2013.onnx"
    if not model.is_file() and not onnx_models:
        raise FerEdgeError(f"no shipped fer2013.onnx in this installation ({WEIGHTS_DIR}); pass --models model.onnx")
    return layers_from_onnx(model), str(model)


def _bound_dict(bound: LayerBound) -> dict[str, Any]:
    us = {k: round(v * 1e6, 3) for k, v in (("compute_us", bound.compute_s), ("memory_us", bound.memory_s),
                                            ("bound_us", bound.bound_s))}
    return {"bytes": bound.bytes, **us, "limit": bound.limit}


def floors(layers: list[LayerCost], peaks: HostPeaks, batch: int = 1, digits: int = 4) -> dict[str, float]:
    """Per-image ms: the floor (compute alone: weights that fit in the CPU's cache stay there between
    calls, so DRAM is no bound) and, beside it, the roofline with every byte from DRAM."""
    out: dict[str, float] = {}
    for precision in peaks.precisions:
        bounds = layer_bounds(layers, peaks, precision, batch)
        out[f"{precision}_floor_ms"] = round(total_compute_s(bounds) / batch * 1e3, digits)
        out[f"{precision}_dram_roofline_ms"] = round(total_bound_s(bounds) / batch * 1e3, digits)
    return out


def host_report(
    layers: list[LayerCost], source: str, peaks: HostPeaks, batch: int = 1, machine: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Everything ``--estimate host`` shows, as plain data: the machine, the peaks, layers, totals."""
    from fer_edge.bench.machine import machine_info

    int8, fp32 = layer_bounds(layers, peaks, "int8"), layer_bounds(layers, peaks, "fp32")
    rows = [
        {"name": a.layer.name, "kind": a.layer.kind, "output": list(a.layer.output_shape), "macs": a.layer.macs,
         "weights": a.layer.weights, "int8": _bound_dict(a), "fp32": _bound_dict(b)}
        for a, b in zip(int8, fp32)
    ]
    totals: dict[str, Any] = {"macs": total_macs(layers), **floors(layers, peaks)}
    exact = floors(layers, peaks, digits=12)
    totals["fp32_over_int8"] = round(exact["fp32_floor_ms"] / exact["int8_floor_ms"], 3)
    totals["fp32_over_int8_dram_roofline"] = round(exact["fp32_dram_roofline_ms"] / exact["int8_dram_roofline_ms"], 3)
    if batch > 1:
        totals["batch"] = {str(batch): floors(layers, peaks, batch)}
    return {"schema": HOST_SCHEMA_VERSION, "kind": "host-roofline",
            "machine": machine if machine is not None else machine_info(), "peaks": peaks.to_dict(),
            "layers_of": source, "layers": rows, "totals": totals}


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The totals in three lines, for the screen and the Markdown."""
    t = report["totals"]
    lines = [
        f"{p.upper()} floor: {t[f'{p}_floor_ms']:.3f} ms/image at the instruction set's peak "
        f"({t[f'{p}_dram_roofline_ms']:.3f} if every byte came from DRAM: the table's total)"
        for p in ("int8", "fp32")
    ]
    ratio, dram = t["fp32_over_int8"], t["fp32_over_int8_dram_roofline"]
    lines.append(f"ceiling ratio FP32/INT8: {ratio:.2f}x ({dram:.2f}x from DRAM)")
    return lines


def write_host_json(report: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")


def host_markdown(report: dict[str, Any]) -> str:
    machine, peaks, t = report["machine"], report["peaks"], report["totals"]
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("packages", {}).items())
    flags = " ".join(machine.get("cpu_flags") or []) or "unknown"
    peak_table = markdown_table(
        ("threads", "GHz", "FP32 GMAC/s", "INT8 GMAC/s", "INT8/FP32", "memory GB/s"),
        [(peaks["threads"], f"{peaks['ghz']:.2f}", f"{peaks['fp32_gmacs']:.1f}", f"{peaks['int8_gmacs']:.1f}",
          f"{peaks['int8_gmacs'] / peaks['fp32_gmacs']:.2f}x", f"{peaks['memory_gbs']:.1f}")],
        align="rrrrrr",
    )
    layer_rows = [
        (r["name"], "x".join(map(str, r["output"])), f"{r['macs'] / 1e6:.2f}", f"{r['weights']:,}",
         *(cell for p in ("int8", "fp32") for cell in (f"{r[p]['bytes'] / 1e6:.3f}", f"{r[p]['bound_us']:.1f}",
                                                       r[p]["limit"])))
        for r in report["layers"]
    ]
    layer_rows.append(("**total**", "", f"{t['macs'] / 1e6:.2f}", f"{sum(r['weights'] for r in report['layers']):,}",
                       *(cell for p in ("int8", "fp32") for cell in (
                           f"{sum(r[p]['bytes'] for r in report['layers']) / 1e6:.3f}",
                           f"{t[f'{p}_dram_roofline_ms'] * 1e3:.1f}", ""))))
    layer_table = markdown_table(
        ("layer", "output", "MACs (M)", "weights", "INT8 MB", "INT8 µs", "limit", "FP32 MB", "FP32 µs", "limit"),
        layer_rows, align="llrrrrlrrl",
    )
    lines = [
        "# Roofline of this machine, from its instruction set",
        "",
        f"- Machine: {machine.get('cpu')}, {machine.get('cores')} cores, SIMD flags: {flags}; {machine.get('os')}",
        f"- Versions: Python {machine.get('python')}; {versions}",
        f"- Command: `{machine.get('command')}`" + (f"; {report['recomputed']}" if report.get("recomputed") else ""),
        f"- Layers of: {report['layers_of']}",
        "", peak_table, "", f"Method: {peaks['method']}", "", layer_table, "",
        *(f"- {line}" for line in summary_lines(report)),
        "",
        "Each layer's µs is max(2 × MACs / peak ops/s, bytes / DRAM bandwidth), summed over the Conv and Gemm "
        "layers. The floors are the compute term alone: weights that fit in the CPU's last-level cache stay "
        "there between calls, so the DRAM term is not a bound. No kernel runs at the peak: floors, not predictions.",
    ]
    return "\n".join(lines) + "\n"


def write_host_markdown(report: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, host_markdown(report))

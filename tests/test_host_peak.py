"""``fer-edge bench --estimate host``: measured peaks, the roofline against them, and the writers."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fer_edge.bench import host_peak
from fer_edge.bench.estimate import host_markdown, host_report, write_host_json, write_host_markdown
from fer_edge.bench.host_peak import HostPeaks, measure_host_peaks, peak_gmacs
from fer_edge.bench.jetson_specs import jetson_spec
from fer_edge.bench.roofline import LayerCost, estimate_table, layer_bounds, total_bound_s
from fer_edge.cli import app
from fer_edge.errors import FerEdgeError

PEAKS = HostPeaks(
    fp32_gmacs=50.0,
    int8_gmacs=100.0,
    memory_gbs=20.0,
    threads=2,
    cpu="Test CPU",
    onnxruntime="0.0",
    method="made up",
)
MACHINE = {"cpu": "Test CPU", "cores": 2, "cpu_flags": ["avx2", "fma"], "os": "Linux", "python": "3.11",
           "packages": {"onnxruntime": "0.0"}, "load_average": [0.1, 0.2, 0.3], "command": "fer-edge bench"}

# A compute-bound conv and a memory-bound fc, with round numbers.
CONV = LayerCost("conv", "conv", (2, 10, 50), macs=10_000_000, weights=1000, bias=10, input_elems=1000,
                 output_elems=2000)
FC = LayerCost("fc", "fc", (1000,), macs=1_000_000, weights=1_000_000, bias=0, input_elems=1000, output_elems=1000)


def test_host_peaks_are_a_roofline_device() -> None:
    # 100 G multiply-adds/s = 200 G ops/s = 0.2 TOPS.
    assert PEAKS.dense_tops("int8") == pytest.approx(0.2)
    assert PEAKS.dense_tops("fp32") == pytest.approx(0.1)
    assert PEAKS.precisions == ("int8", "fp32") and PEAKS.memory_bandwidth_gbs == 20.0
    with pytest.raises(FerEdgeError, match="fp16"):
        PEAKS.dense_tops("fp16")
    with pytest.raises(FerEdgeError, match="fp32"):
        jetson_spec("orin-nano").dense_tops("fp32")


def test_known_rates_give_known_microseconds() -> None:
    conv8, fc8 = layer_bounds([CONV, FC], PEAKS, "int8")
    conv32, fc32 = layer_bounds([CONV, FC], PEAKS, "fp32")
    # conv: 10M MACs / 100 GMAC/s = 100 µs; bytes 1000 + 10*4 + 3000 = 4040 -> 0.202 µs at 20 GB/s.
    assert conv8.bytes == 4040 and conv8.compute_s == pytest.approx(100e-6)
    assert conv8.memory_s == pytest.approx(0.202e-6) and conv8.limit == "compute"
    # FP32: 4 bytes a value, half the MAC rate.
    assert conv32.bytes == 16_040 and conv32.bound_s == pytest.approx(200e-6)
    # fc: 1M weights -> 1,002,000 bytes INT8 = 50.1 µs (> 10 µs compute); FP32 4,008,000 = 200.4 µs.
    assert fc8.limit == "memory" and fc8.bound_s == pytest.approx(50.1e-6)
    assert fc32.limit == "memory" and fc32.bound_s == pytest.approx(200.4e-6)
    assert total_bound_s([conv8, fc8]) == pytest.approx(150.1e-6)
    assert total_bound_s([conv32, fc32]) == pytest.approx(400.4e-6)


def test_host_report_totals_and_ratio() -> None:
    report = host_report([CONV, FC], "two layers", PEAKS, batch=4, machine=MACHINE)
    t = report["totals"]
    assert t["macs"] == 11_000_000
    # The floor is compute alone (11M MACs at 100 / 50 GMAC/s); the DRAM roofline adds the fc's bytes.
    assert t["int8_floor_ms"] == pytest.approx(0.11) and t["fp32_floor_ms"] == pytest.approx(0.22)
    assert t["fp32_over_int8"] == 2.0
    assert t["int8_dram_roofline_ms"] == pytest.approx(0.1501) and t["fp32_dram_roofline_ms"] == pytest.approx(0.4004)
    assert t["fp32_over_int8_dram_roofline"] == pytest.approx(0.4004 / 0.1501, abs=1e-3)
    # Batch 4 amortises the fc weights: INT8 per image = 100 + max(10, (1e6 + 4*2000)/20e9/4 s) µs.
    batch4 = t["batch"]["4"]
    assert batch4["int8_dram_roofline_ms"] == pytest.approx((100 + 1_008_000 / 20e3 / 4) / 1e3, abs=1e-4)
    assert batch4["int8_floor_ms"] == pytest.approx(0.11)
    assert [row["name"] for row in report["layers"]] == ["conv", "fc"]
    assert report["layers"][1]["fp32"] == {
        "bytes": 4_008_000,
        "compute_us": 20.0,
        "memory_us": 200.4,
        "bound_us": 200.4,
        "limit": "memory",
    }
    assert report["peaks"]["int8_gmacs"] == 100.0 and report["machine"] is MACHINE


def test_host_table_has_int8_and_fp32_columns() -> None:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(estimate_table([CONV, FC], PEAKS, 1))
    text = " ".join(console.export_text().split())  # the caption wraps at the table's width
    assert "INT8 µs" in text and "FP32 µs" in text and "FP16" not in text
    assert "100.0 INT8 GMAC/s" in text and "50.0 FP32 GMAC/s" in text and "20.0 GB/s" in text
    assert "150.1" in text and "400.4" in text  # the totals, µs


def test_writers_are_atomic_and_complete(tmp_path: Path) -> None:
    report = host_report([CONV, FC], "two layers", PEAKS, machine=MACHINE)
    out = tmp_path / "deep" / "host.json"
    write_host_json(report, out)
    assert json.loads(out.read_text()) == report
    md = tmp_path / "host.md"
    write_host_markdown(report, md)
    text = md.read_text()
    assert text == host_markdown(report)
    assert "Test CPU, 2 cores, SIMD flags: avx2 fma" in text and "`fer-edge bench`" in text
    assert "| 2 | 50.0 | 100.0 | 2.00x | 20.0 |" in text
    assert "| fc | 1000 | 1.00 | 1,000,000 | 1.002 | 50.1 | memory | 4.008 | 200.4 | memory |" in text
    assert "INT8 floor: 0.110 ms/image" in text and "(0.400 if every byte came from DRAM" in text
    assert "FP32/INT8: 2.00x (2.67x from DRAM)" in text
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["host.json", "host.md"]  # no temp left


def test_small_real_measurement() -> None:
    peaks = measure_host_peaks(1, size=64, repeats=3, copy_mb=4)
    assert peaks.fp32_gmacs > 0 and peaks.int8_gmacs > 0 and peaks.memory_gbs > 0
    assert peaks.threads == 1 and "M=K=N=64" in peaks.method and peaks.cpu
    with pytest.raises(FerEdgeError, match="fp32 or int8"):
        peak_gmacs(("fp16",), 1, size=8)
    with pytest.raises(FerEdgeError, match="at least 1"):
        measure_host_peaks(0)


def _tiny_onnx(path: Path) -> Path:
    """Conv 1->4 channels, 3x3, on 8x8, then Gemm 256 -> 7: 2,304 + 1,792 multiply-adds."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "wc"),
        numpy_helper.from_array(rng.standard_normal((256, 7)).astype(np.float32), "wf"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "wc"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("Gemm", ["f", "wf"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 7])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


def test_cli_estimate_host_measures_and_writes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = host_peak.measure_host_peaks
    monkeypatch.setattr(host_peak, "measure_host_peaks", functools.partial(real, size=64, repeats=3, copy_mb=4))
    model = _tiny_onnx(tmp_path / "tiny.onnx")
    out_json, out_md = tmp_path / "h.json", tmp_path / "h.md"
    args = ["bench", "--estimate", "host", "--threads", "1", "--models", str(model), "--batch", "1"]
    result = CliRunner().invoke(app, [*args, "--json", str(out_json), "--markdown", str(out_md)])
    assert result.exit_code == 0, result.output
    assert "INT8 floor:" in result.output and "FP32 floor:" in result.output and "FP32/INT8" in result.output
    data = json.loads(out_json.read_text())
    assert data["kind"] == "host-roofline" and data["peaks"]["threads"] == 1
    assert data["peaks"]["fp32_gmacs"] > 0 and data["peaks"]["int8_gmacs"] > 0 and data["peaks"]["memory_gbs"] > 0
    assert [(r["name"], r["macs"]) for r in data["layers"]] == [("conv", 2304), ("fc", 1792)]
    assert all({"int8", "fp32"} <= set(r) for r in data["layers"])
    assert data["totals"]["int8_floor_ms"] > 0 and data["totals"]["fp32_floor_ms"] > 0
    assert data["machine"]["cpu"] == data["peaks"]["cpu"] != ""
    assert data["machine"]["packages"]["onnxruntime"] == data["peaks"]["onnxruntime"]
    assert "| conv | 4x8x8 | 0.00 | 36 |" in out_md.read_text()


def test_cli_unknown_estimate_key_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "--estimate", "xavier", "--json", str(tmp_path / "x.json")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "unknown device 'xavier'" in lines[0] and "host" in lines[0]
    assert not (tmp_path / "x.json").exists()

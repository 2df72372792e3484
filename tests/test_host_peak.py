"""``fer-edge bench --estimate host``: peaks from the instruction set, a floor no shipped figure beats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from typer.testing import CliRunner

from fer_edge.bench import host_peak
from fer_edge.bench.estimate import floors, host_markdown, host_report, write_host_json, write_host_markdown
from fer_edge.bench.host_peak import host_peaks, isa_rate, record_peaks
from fer_edge.bench.jetson_specs import jetson_spec
from fer_edge.bench.roofline import LayerCost, estimate_table, layer_bounds, layers_from_onnx, total_bound_s
from fer_edge.cli import app
from fer_edge.core.errors import FerEdgeError
from fer_edge.model.shipped import WEIGHTS_DIR

REPO = Path(__file__).resolve().parents[1]
PEAKS = host_peaks(2, ["avx2", "fma"], 1.5625, "Test CPU", 20.0, "made up")  # 16 x 2 x 1.5625 = 50 FP32 GMAC/s
MACHINE = {"cpu": "Test CPU", "cores": 2, "cpu_flags": ["avx2", "fma"], "os": "Linux", "python": "3.11",
           "packages": {"onnxruntime": "0.0"}, "load_average": [0.1, 0.2, 0.3], "command": "fer-edge bench"}

# A compute-bound conv and a memory-bound fc, with round numbers.
CONV = LayerCost("conv", "conv", (2, 10, 50), macs=10_000_000, weights=1000, bias=10, input_elems=1000,
                 output_elems=2000)
FC = LayerCost("fc", "fc", (1000,), macs=1_000_000, weights=1_000_000, bias=0, input_elems=1000, output_elems=1000)


def test_isa_rates_per_core_and_cycle() -> None:
    assert isa_rate(["sse2", "avx2", "fma"], host_peak.FP32_PATHS) == (16, "AVX2 FMA")
    assert isa_rate(["avx2", "fma"], host_peak.INT8_PATHS) == (32, "AVX2 vpmaddubsw")  # 2x FP32, not 4x
    assert isa_rate(["avx2", "fma", "avx_vnni"], host_peak.INT8_PATHS)[0] == 64
    assert isa_rate(["avx512f", "avx512bw", "avx512_vnni"], host_peak.INT8_PATHS)[0] == 128
    assert isa_rate(["avx512f", "fma"], host_peak.FP32_PATHS)[0] == 32
    assert isa_rate(["fp", "asimd", "asimddp"], host_peak.INT8_PATHS) == (32, "NEON sdot")
    assert isa_rate(["fp", "asimd"], host_peak.FP32_PATHS)[0] == 8
    assert "assumed" in isa_rate([], host_peak.FP32_PATHS)[1]


def test_host_peaks_are_a_roofline_device() -> None:
    assert PEAKS.fp32_gmacs == pytest.approx(50.0) and PEAKS.int8_gmacs == pytest.approx(100.0)
    # 100 G multiply-adds/s = 200 G ops/s = 0.2 TOPS.
    assert PEAKS.dense_tops("int8") == pytest.approx(0.2) and PEAKS.dense_tops("fp32") == pytest.approx(0.1)
    assert PEAKS.precisions == ("int8", "fp32") and PEAKS.memory_bandwidth_gbs == 20.0
    assert "2 core(s) x 1.56 GHz (made up)" in PEAKS.method and "AVX2 vpmaddubsw" in PEAKS.method
    with pytest.raises(FerEdgeError, match="fp16"):
        PEAKS.dense_tops("fp16")
    with pytest.raises(FerEdgeError, match="fp32"):
        jetson_spec("orin-nano").dense_tops("fp32")
    with pytest.raises(FerEdgeError, match="at least 1"):
        host_peaks(0, ["fma"], 3.0, "x", 1.0, "x")


def test_known_rates_give_known_microseconds() -> None:
    conv8, fc8 = layer_bounds([CONV, FC], PEAKS, "int8")
    conv32, fc32 = layer_bounds([CONV, FC], PEAKS, "fp32")
    # conv: 10M MACs / 100 GMAC/s = 100 µs; bytes 1000 + 10*4 + 3000 = 4040 -> 0.202 µs at 20 GB/s.
    assert conv8.bytes == 4040 and conv8.compute_s == pytest.approx(100e-6)
    assert conv8.memory_s == pytest.approx(0.202e-6) and conv8.limit == "compute"
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
    assert t["int8_floor_ms"] == pytest.approx(0.11) and t["fp32_floor_ms"] == pytest.approx(0.22)
    assert t["fp32_over_int8"] == 2.0
    assert t["int8_dram_roofline_ms"] == pytest.approx(0.1501) and t["fp32_dram_roofline_ms"] == pytest.approx(0.4004)
    # Batch 4 amortises the fc weights: INT8 per image = 100 + max(10, (1e6 + 4*2000)/20e9/4 s) µs.
    batch4 = t["batch"]["4"]
    assert batch4["int8_dram_roofline_ms"] == pytest.approx((100 + 1_008_000 / 20e3 / 4) / 1e3, abs=1e-4)
    assert report["layers"][1]["fp32"] == {
        "bytes": 4_008_000, "compute_us": 20.0, "memory_us": 200.4, "bound_us": 200.4, "limit": "memory",
    }
    assert report["peaks"]["basis"] == "isa" and report["peaks"]["ghz"] == 1.5625 and report["machine"] is MACHINE


def test_host_table_and_writers(tmp_path: Path) -> None:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(estimate_table([CONV, FC], PEAKS, 1))
    text = " ".join(console.export_text().split())  # the caption wraps at the table's width
    assert "INT8 µs" in text and "FP32 µs" in text and "FP16" not in text
    assert "100.0 INT8 GMAC/s" in text and "50.0 FP32 GMAC/s" in text and "peak from the instruction set" in text
    report = host_report([CONV, FC], "two layers", PEAKS, machine=MACHINE)
    write_host_json(report, tmp_path / "deep" / "host.json")
    assert json.loads((tmp_path / "deep" / "host.json").read_text()) == report
    write_host_markdown(report, tmp_path / "host.md")
    md = (tmp_path / "host.md").read_text()
    assert md == host_markdown(report)
    assert "| 2 | 1.56 | 50.0 | 100.0 | 2.00x | 20.0 |" in md
    assert "| fc | 1000 | 1.00 | 1,000,000 | 1.002 | 50.1 | memory | 4.008 | 200.4 | memory |" in md
    assert "INT8 floor: 0.110 ms/image" in md and "FP32/INT8: 2.00x (2.67x from DRAM)" in md
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["host.json", "host.md"]  # no temp left


def _records() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted([*(REPO / "benchmarks" / "cpu").glob("*.json"), *(REPO / "benchmarks" / "gpu").glob("*.json")]):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("machine"):
            yield path, data


def _best_ms_per_image(row: dict[str, Any]) -> float:
    rates = [1e3 / v for v in (row.get("throughput") or {}).values() if v]
    return min([row["latency_ms_p50"], *rates])


def test_no_shipped_measurement_beats_the_floor_of_its_machine() -> None:
    layers = layers_from_onnx(WEIGHTS_DIR / "fer2013.onnx")  # every shipped precision has these layers
    checked = 0
    for path, data in _records():
        if data.get("kind") == "host-roofline":
            continue
        for row in data["results"]:
            if row["status"] != "ok" or row["device"] != "cpu":
                continue  # GPU rows: the host floor is for the CPU
            peaks = record_peaks(data["machine"], int(data["settings"]["threads"]))
            floor = floors(layers, peaks)[f"{row['precision']}_floor_ms"]
            assert _best_ms_per_image(row) >= floor, (path.name, row["backend"], row["model"], floor)
            checked += 1
    assert checked >= 20  # the CPU rows of benchmarks/cpu and benchmarks/gpu


def test_shipped_host_floors_are_not_beaten_on_their_machine() -> None:
    """A shipped --estimate host file states floors for one CPU: no bench record of that CPU beats them
    (the measured-GEMM files did: an FP32 floor of 1.30 ms against 1.24 ms measured)."""
    records = list(_records())
    estimates = [(p, d) for p, d in records if d.get("kind") == "host-roofline"]
    assert estimates
    for path, estimate in estimates:
        assert estimate["peaks"]["basis"] == "isa", path.name
        cpu, flags = estimate["machine"]["cpu"], estimate["machine"]["cpu_flags"]
        for _, data in records:
            same = data["machine"]["cpu"] == cpu and data["machine"]["cpu_flags"] == flags
            if data.get("kind") == "host-roofline" or not same:
                continue
            if int(data["settings"]["threads"]) > estimate["peaks"]["threads"]:  # more cores beat fewer
                continue
            for row in (r for r in data["results"] if r["status"] == "ok" and r["device"] == "cpu"):
                floor = estimate["totals"][f"{row['precision']}_floor_ms"]
                assert _best_ms_per_image(row) >= floor, (path.name, row["model"])


def test_record_without_a_clock_takes_the_high_guess() -> None:
    peaks = record_peaks({"cpu": "X", "cores": 16, "cpu_flags": ["avx2", "fma"]}, threads=2)
    assert peaks.ghz == host_peak.UNRECORDED_GHZ and peaks.threads == 2 and "not recorded" in peaks.clock_source
    assert record_peaks({"cpu": "X", "cores": 1, "cpu_mhz": 2000, "cpu_flags": []}, 4).threads == 1


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
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 7])], inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_cli_estimate_host_reads_the_machine_and_writes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(host_peak, "copy_bandwidth_gbs", lambda megabytes=256: 10.0)  # no 256 MB copy in a test
    model = _tiny_onnx(tmp_path / "tiny.onnx")
    out_json, out_md = tmp_path / "h.json", tmp_path / "h.md"
    args = ["bench", "--estimate", "host", "--threads", "1", "--models", str(model), "--batch", "1"]
    result = CliRunner().invoke(app, [*args, "--json", str(out_json), "--markdown", str(out_md)])
    assert result.exit_code == 0, result.output
    assert "INT8 floor:" in result.output and "FP32 floor:" in result.output and "instruction set" in result.output
    data = json.loads(out_json.read_text())
    assert data["kind"] == "host-roofline" and data["peaks"]["threads"] == 1 and data["peaks"]["memory_gbs"] == 10.0
    assert data["peaks"]["fp32_gmacs"] > 0 and data["peaks"]["int8_gmacs"] >= data["peaks"]["fp32_gmacs"]
    assert data["peaks"]["ghz"] > 0 and data["peaks"]["clock_source"]
    assert [(r["name"], r["macs"]) for r in data["layers"]] == [("conv", 2304), ("fc", 1792)]
    assert data["machine"]["cpu"] == data["peaks"]["cpu"] != ""
    assert "| conv | 4x8x8 | 0.00 | 36 |" in out_md.read_text()


def test_cli_unknown_estimate_key_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "--estimate", "xavier", "--json", str(tmp_path / "x.json")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "unknown device 'xavier'" in lines[0] and "host" in lines[0]
    assert not (tmp_path / "x.json").exists()

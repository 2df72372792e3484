"""The outputs: JSON schema, the Markdown table, the plot, the rich table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fer_edge.bench.compare import apply_baseline, baseline_note, choose_baseline
from fer_edge.bench.report import (
    RECORDED_MARK,
    rich_table,
    to_json_dict,
    to_markdown,
    write_json,
    write_markdown,
)
from fer_edge.bench.rows import RowResult
from fer_edge.bench.runner import BenchReport

REQUIRED_ROW_KEYS = {
    "backend",
    "precision",
    "size_mb",
    "accuracy",
    "latency_ms_p50",
    "latency_ms_p90",
    "latency_ms_p99",
    "throughput",
    "peak_memory_mb",
    "speedup",
}
REQUIRED_MACHINE_KEYS = {"cpu", "cores", "gpu", "os", "packages", "command"}


def ok_row(
    model: str, backend: str, precision: str, p50: float, accuracy: float, recorded: bool = False
) -> RowResult:
    return RowResult(
        model=model,
        device="cpu",
        backend=backend,
        precision=precision,
        size_mb=15.4 if precision == "fp32" else 3.9,
        accuracy=accuracy,
        accuracy_recorded=recorded,
        latency_ms_p50=p50,
        latency_ms_p90=p50 * 1.2,
        latency_ms_p99=p50 * 1.5,
        throughput={"1": 1000 / p50, "64": 4000.0},
        peak_memory_mb=150.0,
        load_time_s=0.2,
    )


@pytest.fixture
def report() -> BenchReport:
    rows = [
        ok_row("/m/fer2013.pt", "torch-cpu", "fp32", 4.0, 69.5),
        ok_row("/m/fer2013.onnx", "onnxruntime-cpu", "fp32", 3.0, 69.5),
        ok_row("/m/fer2013.int8.cpu.onnx", "onnxruntime-cpu", "int8", 1.0, 68.9),
        RowResult(
            model="/m/fer2013.int8.engine",
            device="tensorrt",
            backend="tensorrt",
            precision="int8",
            status="failed",
            reason="engine was built for Orin (sm_87), this GPU is none | pipes",
        ),
    ]
    baseline = choose_baseline(rows)
    apply_baseline(rows, baseline)
    return BenchReport(
        machine={
            "cpu": "Test CPU",
            "cores": 2,
            "gpu": [],
            "os": "Linux",
            "python": "3.11",
            "packages": {"onnxruntime": "1.32.0"},
            "command": "fer-edge bench --data x.csv",
            "load_average": [0.1, 0.1, 0.1],
        },
        settings={"batches": [1, 64], "threads": 2, "split": "PrivateTest", "measure": {}},
        inputs="3589 PrivateTest faces",
        results=rows,
        baseline_note=baseline_note(rows, baseline),
        wall_time_s=12.0,
    )


def test_torch_fp32_is_the_baseline_and_ratios_follow(report: BenchReport) -> None:
    torch_row, ort_row, int8_row, failed = report.results
    assert torch_row.baseline and not ort_row.baseline
    assert int8_row.speedup == pytest.approx(4.0)
    assert ort_row.speedup == pytest.approx(4.0 / 3.0)
    assert int8_row.delta_accuracy == pytest.approx(-0.6)
    assert failed.speedup is None
    assert report.baseline_note.startswith("baseline: PyTorch FP32")


def test_onnxruntime_fp32_is_the_baseline_without_a_checkpoint() -> None:
    rows = [
        ok_row("/m/a.onnx", "onnxruntime-cpu", "fp32", 3.0, 69.0),
        ok_row("/m/b.onnx", "onnxruntime-cpu", "int8", 1.0, 68.0),
    ]
    baseline = choose_baseline(rows)
    assert baseline is rows[0]
    assert "no .pt checkpoint was given" in baseline_note(rows, baseline)
    assert choose_baseline([rows[1]]) is None


def test_json_has_the_documented_schema(report: BenchReport, tmp_path: Path) -> None:
    path = tmp_path / "out" / "results.json"
    write_json(report, path)
    data = json.loads(path.read_text())
    assert set(data) >= {"machine", "results"}
    assert set(data["machine"]) >= REQUIRED_MACHINE_KEYS
    assert len(data["results"]) == 4
    for row in data["results"]:
        assert set(row) >= REQUIRED_ROW_KEYS
        assert row["status"] in ("ok", "failed")
    ok = data["results"][2]
    assert ok["throughput"] == {"1": 1000.0, "64": 4000.0}
    assert ok["speedup"] == pytest.approx(4.0)
    assert data["results"][3]["reason"].startswith("engine was built")
    assert to_json_dict(report)["baseline"] == report.baseline_note


def test_markdown_table(report: BenchReport, tmp_path: Path) -> None:
    text = to_markdown(report)
    table = [ln for ln in text.splitlines() if ln.startswith("|")]
    assert len(table) == 2 + 4  # header, rule, one line per row
    widths = {ln.replace("\\|", "").count("|") for ln in table}
    assert len(widths) == 1  # every line has the same number of cells (a '|' in a reason is escaped)
    assert "img/s @1" in table[0] and "img/s @64" in table[0]
    assert "✅" in table[2] and "baseline" in table[2] and "1.00x" in table[2]
    assert "4.00x" in table[4] and "-0.60" in table[4]
    assert "❌" in table[5] and "engine was built for Orin" in table[5]
    assert "`fer-edge bench --data x.csv`" in text
    write_markdown(report, tmp_path / "r.md")
    assert (tmp_path / "r.md").read_text() == text


def test_gpu_time_column_appears_only_with_gpu_rows(report: BenchReport) -> None:
    assert "GPU p50/p99" not in to_markdown(report)
    report.results[1].gpu_latency_ms_p50, report.results[1].gpu_latency_ms_p99 = 0.412, 0.5
    text = to_markdown(report)
    table = [ln for ln in text.splitlines() if ln.startswith("|")]
    assert "GPU p50/p99 (ms)" in table[0]
    assert "0.412/0.500" in table[3]
    assert len({ln.replace("\\|", "").count("|") for ln in table}) == 1  # failed rows get the column too
    assert "CUDA events" in text


def test_recorded_accuracy_is_marked(report: BenchReport) -> None:
    report.results[2].accuracy_recorded = True
    text = to_markdown(report)
    assert f"68.90{RECORDED_MARK}" in text and "recorded in the model's metadata" in text


def test_rich_table_and_plot(report: BenchReport, tmp_path: Path) -> None:
    from rich.console import Console

    from fer_edge.bench.plot import write_plot

    console = Console(width=250, record=True)
    console.print(rich_table(report))
    screen = console.export_text()
    assert "onnxruntime-cpu" in screen and "engine was built for Orin" in screen
    write_plot(report, tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def screen(report: BenchReport, width: int, wide: bool = False) -> list[str]:
    import io

    from rich.console import Console

    console = Console(width=width, file=io.StringIO(), force_terminal=False)
    console.print(rich_table(report, wide=wide), crop=False)
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def header(lines: list[str]) -> str:
    return " ".join(lines[: next(i for i, ln in enumerate(lines) if ln.startswith("──"))])


def row_line(lines: list[str], *parts: str) -> str:
    (line,) = [ln for ln in lines if all(p in ln for p in parts)]
    return line


@pytest.mark.parametrize("width", [80, 100, 200])
def test_screen_table_fits_the_width_one_line_per_row(report: BenchReport, width: int) -> None:
    lines = screen(report, width)
    assert max(len(ln) for ln in lines) <= width
    head = header(lines).lower()
    for name in ("Model", "Backend", "Prec", "Acc", "Δacc", "p50", "img/s", "@64", "Speedup", "Mem"):
        assert name.lower() in head, name
    # model, backend, precision, accuracy and its change, p50, throughput, speedup, memory: on one line
    row_line(lines, "torch-cpu", "fp32", "69.50", "4.000", "4,000", "1.00x", "150")
    backend = "ort-cpu" if width < 200 else "onnxruntime-cpu"
    row_line(lines, backend, "int8", "68.90", "-0.60", "1.000", "4,000", "4.00x")
    failed = row_line(lines, "int8", "failed")
    assert "fer2013.int8" in failed
    assert any("engine was built for Orin" in ln for ln in lines)  # the reason, below the table


def test_wider_screens_show_more_columns_and_wide_shows_all(report: BenchReport) -> None:
    narrow, medium, full = (screen(report, w) for w in (80, 100, 200))
    assert "p99" not in header(narrow) and "p99" in header(medium)
    assert "Load" in header(full) and "Size" in header(full) and "Load" not in header(medium)
    narrow, full = " ".join(narrow), " ".join(full)
    assert "columns hidden to fit 80 columns" in narrow and "--wide shows all columns" in narrow
    assert "hidden" not in full
    wide = screen(report, 80, wide=True)
    assert "Load" in header(wide) and not any("hidden" in ln for ln in wide)
    row_line(wide, "fer2013.int8.cpu.onnx", "onnxruntime-cpu", "3.90", "1.200", "1.500", "1,000", "0.20")


def test_a_row_that_failed_before_loading_shows_no_placeholder(report: BenchReport) -> None:
    from fer_edge.bench.rows import RowSpec

    report.results.append(RowResult.failed(RowSpec(model="/m/gone.onnx"), "file not found"))
    assert report.results[-1].precision == "?"  # the JSON says it is unknown
    line = row_line(screen(report, 80), "gone", "failed")
    assert "?" not in line and "–" in line
    (md,) = [ln for ln in to_markdown(report).splitlines() if "gone.onnx" in ln]
    assert "?" not in md


def test_jetson_rows_at_80_columns_keep_the_key_figures(report: BenchReport) -> None:
    for row in report.results[:3]:
        row.gpu_latency_ms_p50, row.gpu_latency_ms_p99 = 0.412, 0.5
        row.gpu_memory_mb, row.board_ram_mb, row.power_w_mean = 1200.0, 2638.0, 4.6
        row.speedup_rounds = [3.9, 4.1, 4.3]
    report.results[2].backend = "tensorrt"
    report.results[2].model = "/m/ferplus.int8.engine"
    lines = screen(report, 80)
    assert max(len(ln) for ln in lines) <= 80
    row_line(lines, "ferplus.int8", "trt", "int8", "68.90", "1.000", "4,000", "4.00x", "150")
    full = screen(report, 200)
    row_line(full, "ferplus.int8.engine", "0.412/0.500", "1200", "2638", "4.6", "3.90-4.30")


def test_tegrastats_lines_parse_on_orin_and_older_jetsons() -> None:
    from fer_edge.core.tegrastats import parse_line, summarise

    orin = (
        "11-22-2026 10:00:00 RAM 2638/7620MB (lfb 1x4MB) SWAP 0/3810MB (cached 0MB) CPU [2%@729,1%@729] "
        "GR3D_FREQ 0%@[305] VDD_IN 4567mW/4500mW VDD_CPU_GPU_CV 483mW/483mW VDD_SOC 1450mW/1450mW"
    )
    xavier = "RAM 3000/7772MB (lfb 2x4MB) CPU [1%@1190] POM_5V_IN 3120/2900 POM_5V_GPU 0/0"
    a, b = parse_line(orin), parse_line(xavier)
    assert (a.ram_used_mb, a.power_mw) == (2638, 4567)
    assert (b.ram_used_mb, b.power_mw) == (3000, 3120)
    assert parse_line("nothing here").power_mw is None
    summary = summarise([a, b])
    assert summary.ram_used_mb_peak == 3000 and summary.power_w_peak == pytest.approx(4.567)
    assert summary.power_w_mean == pytest.approx((4.567 + 3.12) / 2)


def test_recorded_accuracy_formats_and_split_fallback() -> None:
    from fer_edge.bench.recorded import recorded_accuracy

    assert recorded_accuracy({"metrics": '{"PublicTest": 68.1, "PrivateTest": 69.5}'}, "PrivateTest") == (
        69.5,
        "PrivateTest",
    )
    assert recorded_accuracy({"metrics": '{"PublicTest": 0.681}'}, "PrivateTest") == (
        pytest.approx(68.1),
        "PublicTest",
    )
    assert recorded_accuracy({"metrics": '{"PrivateTest": {"accuracy": 70.0}}'}, "PrivateTest") == (
        70.0,
        "PrivateTest",
    )
    assert recorded_accuracy({"metrics": '{"PrivateTest_accuracy": 71}'}, "PrivateTest") == (
        71.0,
        "PrivateTest",
    )
    assert recorded_accuracy({"metrics": "not json"}, "PrivateTest") == (None, None)
    assert recorded_accuracy({}, "PrivateTest") == (None, None)


def _recorded(model: str, precision: str, accuracy: float, p50: float) -> RowResult:
    row = ok_row(model, "onnxruntime-cpu", precision, p50, accuracy, recorded=True)
    row.accuracy_split, row.dataset = "PrivateTest", "fer2013"
    return row


def test_int8_repeating_the_fp32_recorded_accuracy_is_marked_not_compared() -> None:
    fp32 = _recorded("/m/fer2013.onnx", "fp32", 69.5, 3.0)
    copied = _recorded("/m/fer2013.int8.onnx", "int8", 69.5, 1.0)
    own = _recorded("/m/fer2013.int8.cpu.onnx", "int8", 68.9, 1.0)
    rows = [fp32, copied, own]
    apply_baseline(rows, choose_baseline(rows))
    assert copied.accuracy_inherited and copied.delta_accuracy is None
    assert not own.accuracy_inherited and own.delta_accuracy == pytest.approx(-0.6)
    report = BenchReport(
        machine={},
        settings={"batches": [1], "split": "PrivateTest"},
        inputs="x",
        results=rows,
        baseline_note="",
    )
    text = to_markdown(report)
    assert "69.50†" in text and "68.90*" in text and "repeats the FP32 model's recorded accuracy" in text


def test_measured_and_recorded_accuracies_are_never_subtracted() -> None:
    base = ok_row("/m/a.pt", "torch-cpu", "fp32", 4.0, 69.5)  # measured
    recorded = _recorded("/m/b.onnx", "int8", 60.0, 1.0)
    apply_baseline([base, recorded], base)
    assert recorded.delta_accuracy is None and recorded.speedup == pytest.approx(4.0)

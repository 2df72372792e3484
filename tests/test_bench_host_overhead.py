"""The bench carries host overhead beside GPU time: a row's p50 of each call's wall time not spent
on the device, in the JSON and in the table next to the GPU column (only when GPU rows ran)."""

from __future__ import annotations

from pathlib import Path

from bench_fakes import write_fake
from test_bench_isolation import TESTS, inputs_file, spec_for  # noqa: F401  (the fixture)
from test_bench_report import report  # noqa: F401  (the fixture)

from fer_edge.bench.isolation import run_isolated
from fer_edge.bench.report import to_markdown
from fer_edge.bench.rows import RowResult
from fer_edge.bench.runner import BenchReport


def test_a_gpu_row_reports_its_host_overhead(tmp_path: Path, inputs_file: Path) -> None:  # noqa: F811
    gpu = write_fake(tmp_path / "gpu.fake", sleep_ms=2, gpu_ms=0.25, name="fake-cuda")
    cpu = write_fake(tmp_path / "cpu.fake", sleep_ms=0)
    row_gpu = run_isolated(spec_for(gpu, inputs_file), extra_pythonpath=[TESTS])
    row_cpu = run_isolated(spec_for(cpu, inputs_file), extra_pythonpath=[TESTS])
    assert row_gpu.ok and row_cpu.ok, (row_gpu.reason, row_cpu.reason)
    # the fake sleeps 2 ms on the host and reports 0.25 ms of device time per call
    assert row_gpu.host_overhead_ms_p50 is not None and row_gpu.host_overhead_ms_p50 >= 1.7
    assert row_gpu.latency_ms_p50 is not None and row_gpu.host_overhead_ms_p50 <= row_gpu.latency_ms_p50
    assert row_cpu.host_overhead_ms_p50 is None
    assert RowResult.from_dict(row_gpu.to_dict()).host_overhead_ms_p50 == row_gpu.host_overhead_ms_p50


def test_host_overhead_column_sits_beside_the_gpu_column(report: BenchReport) -> None:  # noqa: F811
    assert "Host overhead" not in to_markdown(report)
    row = report.results[1]
    row.gpu_latency_ms_p50, row.gpu_latency_ms_p99, row.host_overhead_ms_p50 = 0.412, 0.5, 1.234
    text = to_markdown(report)
    table = [ln for ln in text.splitlines() if ln.startswith("|")]
    head = [c.strip() for c in table[0].split("|")]
    assert head[head.index("GPU p50/p99 (ms)") + 1] == "Host overhead p50 (ms)"
    assert "0.412/0.500 | 1.234" in table[3]
    assert len({ln.replace("\\|", "").count("|") for ln in table}) == 1
    assert "host overhead p50" in text

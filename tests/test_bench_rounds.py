"""--rounds: rows run round-robin, timings merge as medians, speed-up as the median of per-round ratios."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_fakes import write_fake
from test_bench_isolation import FAKE_LOADER, QUICK, TESTS
from typer.testing import CliRunner

from fer_edge.bench.report import to_markdown
from fer_edge.bench.rounds import merge_rounds
from fer_edge.bench.rows import RowResult, RowSpec
from fer_edge.bench.runner import BenchOptions, BenchReport, run_bench
from fer_edge.cli import app


def timed(model: str, backend: str, precision: str, p50: float, memory: float = 100.0) -> RowResult:
    return RowResult(
        model=model,
        device="cpu",
        backend=backend,
        precision=precision,
        accuracy=69.0,
        accuracy_split="PrivateTest",
        latency_ms_p50=p50,
        latency_ms_p90=p50 * 1.1,
        latency_ms_p99=p50 * 1.5,
        latency_iterations=100,
        throughput={"1": 1000.0 / p50, "64": 64000.0 / (p50 * 40)},
        peak_memory_mb=memory,
        load_time_s=0.1 * p50,
        wall_time_s=2.0,
    )


def three_rounds() -> list[list[RowResult]]:
    # Round 2 is a slow phase for the baseline only: the ratio of medians would say 2.5x,
    # each round's own ratio says 2, 2, 3 -> median 2.
    base = [4.0, 5.0, 6.0]
    int8 = [2.0, 2.5, 2.0]
    failed = RowResult(model="x.engine", device="tensorrt", backend="tensorrt", precision="int8",
                       status="failed", reason="no TensorRT")
    return [
        [timed("m.pt", "torch-cpu", "fp32", b, 300.0 + i), timed("m.int8.onnx", "onnxruntime-cpu", "int8", q), failed]
        for i, (b, q) in enumerate(zip(base, int8))
    ]


def test_merge_takes_medians_and_the_median_of_per_round_ratios() -> None:
    merged, baseline = merge_rounds(three_rounds())
    base, int8, failed = merged
    assert baseline is base and base.baseline and base.speedup == 1.0
    assert base.latency_ms_p50 == pytest.approx(5.0) and int8.latency_ms_p50 == pytest.approx(2.0)
    assert int8.latency_ms_p99 == pytest.approx(3.0)
    assert int8.speedup_rounds == [2.0, 2.0, 3.0]
    assert int8.speedup == pytest.approx(2.0)  # not 5.0 / 2.0 = 2.5
    assert base.peak_memory_mb == 302.0  # the highest round
    assert base.throughput["1"] == pytest.approx(200.0)
    assert base.rounds == int8.rounds == 3 and base.latency_iterations == 300
    assert base.wall_time_s == pytest.approx(6.0)
    assert not failed.ok and failed.reason == "no TensorRT" and failed.speedup is None


def test_one_round_is_the_plain_comparison() -> None:
    merged, _ = merge_rounds(three_rounds()[:1])
    assert merged[1].speedup == pytest.approx(2.0) and merged[1].speedup_rounds == []
    assert merged[0].rounds == 1


def test_speedup_range_and_the_note_in_the_table() -> None:
    merged, baseline = merge_rounds(three_rounds())
    report = BenchReport(machine={}, settings={"batches": [1, 64], "rounds": 3}, inputs="x",
                         results=merged, baseline_note="baseline: PyTorch FP32")
    text = to_markdown(report)
    assert "2.00x (2.00-3.00)" in text
    assert "3 rounds" in text and "median of each round's own ratio" in text


def test_rows_run_round_robin_and_failures_are_not_retried(tmp_path: Path) -> None:
    models = [
        write_fake(tmp_path / "a.fake", sleep_ms=2, precision="fp32"),
        write_fake(tmp_path / "b.fake", fail="not a fer-edge model"),
        write_fake(tmp_path / "c.fake", sleep_ms=0, precision="int8"),
    ]
    started: list[tuple[str, bool]] = []
    planned: list[int] = []

    def on_start(i: int, spec: RowSpec) -> None:
        started.append((Path(spec.model).name, spec.accuracy))

    options = BenchOptions(models=models, batches=(1,), threads=1, measure=QUICK, loader=FAKE_LOADER,
                           extra_pythonpath=[TESTS], rounds=2)
    report = run_bench(options, on_plan=lambda specs: planned.append(len(specs)), on_start=on_start)
    assert planned == [6]
    assert started == [("a.fake", True), ("b.fake", True), ("c.fake", True), ("a.fake", False), ("c.fake", False)]
    a, b, c = report.results
    assert a.ok and not b.ok and c.ok
    assert a.rounds == c.rounds == 2
    assert len(c.speedup_rounds) == 2 and all(r > 1.0 for r in c.speedup_rounds)  # no sleep vs 2 ms
    assert report.settings["rounds"] == 2


def test_bad_rounds_is_one_line() -> None:
    result = CliRunner().invoke(app, ["bench", "--rounds", "0", "--device", "cpu"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: Invalid value for '--rounds': 0 is not in the range 1<=x<=20"
    assert "Traceback" not in result.output


def test_cli_rounds_on_the_shipped_models(tmp_path: Path) -> None:
    import json

    out = tmp_path / "r.json"
    args = ["bench", "--rounds", "2", "--device", "cpu", "--batch", "1", "--threads", "1",
            "--min-time", "0.02", "--min-iters", "5", "--json", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "[round 1/2]" in result.output and "[round 2/2]" in result.output
    data = json.loads(out.read_text())
    assert data["settings"]["rounds"] == 2
    rows = [r for r in data["results"] if r["status"] == "ok"]
    assert len(rows) == 3 and all(r["rounds"] == 2 for r in rows)
    assert all(len(r["speedup_rounds"]) == 2 for r in rows)

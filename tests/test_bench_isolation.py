"""Each row runs in its own process: memory is its own, a failure or crash stays in its row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_fakes import write_fake

from fer_edge.bench.harness import MeasureConfig
from fer_edge.bench.inputs import synthetic_inputs
from fer_edge.bench.isolation import run_isolated
from fer_edge.bench.memory import current_rss_mb, peak_rss_mb
from fer_edge.bench.rows import RowSpec
from fer_edge.bench.runner import BenchOptions, run_bench

TESTS = str(Path(__file__).parent)
FAKE_LOADER = "bench_fakes:load_fake"
QUICK = MeasureConfig(warmup_iters=1, warmup_time_s=0.0, min_iters=5, min_time_s=0.02)


def spec_for(model: Path, inputs: Path, **kw: object) -> RowSpec:
    return RowSpec(
        model=str(model),
        device="cpu",
        threads=1,
        batches=(1, 4),
        inputs=str(inputs),
        measure=QUICK.to_dict(),
        loader=FAKE_LOADER,
        **kw,
    )  # type: ignore[arg-type]


@pytest.fixture
def inputs_file(tmp_path: Path) -> Path:
    return synthetic_inputs(32).save(tmp_path / "inputs.npz")


def test_child_memory_is_its_own_and_the_parent_is_untouched(tmp_path: Path, inputs_file: Path) -> None:
    small = write_fake(tmp_path / "small.fake", sleep_ms=0)
    big = write_fake(tmp_path / "big.fake", sleep_ms=0, alloc_mb=200)
    parent_peak_before = peak_rss_mb()
    parent_rss_before = current_rss_mb()
    row_small = run_isolated(spec_for(small, inputs_file), extra_pythonpath=[TESTS])
    row_big = run_isolated(spec_for(big, inputs_file), extra_pythonpath=[TESTS])
    assert row_small.ok and row_big.ok, (row_small.reason, row_big.reason)
    assert row_small.peak_memory_mb is not None and row_big.peak_memory_mb is not None
    assert row_big.peak_memory_mb - row_small.peak_memory_mb > 180
    # The 200 MB lived and died in the child.
    assert peak_rss_mb() - parent_peak_before < 50
    rss_after = current_rss_mb()
    assert parent_rss_before is not None and rss_after is not None and rss_after - parent_rss_before < 50


def test_gpu_event_times_are_kept_beside_the_wall_clock(tmp_path: Path, inputs_file: Path) -> None:
    gpu = write_fake(tmp_path / "gpu.fake", sleep_ms=2, gpu_ms=0.25, name="fake-cuda")
    cpu = write_fake(tmp_path / "cpu.fake", sleep_ms=0)
    row_gpu = run_isolated(spec_for(gpu, inputs_file), extra_pythonpath=[TESTS])
    row_cpu = run_isolated(spec_for(cpu, inputs_file), extra_pythonpath=[TESTS])
    assert row_gpu.ok and row_cpu.ok, (row_gpu.reason, row_cpu.reason)
    assert row_gpu.gpu_latency_ms_p50 == pytest.approx(0.25)
    assert row_gpu.gpu_latency_ms_p99 == pytest.approx(0.25)
    assert row_gpu.latency_ms_p50 is not None and row_gpu.latency_ms_p50 >= 2.0  # the wall clock saw the sleep
    assert row_cpu.gpu_latency_ms_p50 is None and row_cpu.gpu_latency_ms_p99 is None


def test_failing_and_crashing_rows_do_not_stop_the_others(tmp_path: Path) -> None:
    models = [
        write_fake(tmp_path / "a.fake", sleep_ms=1, precision="fp32", metrics={"PrivateTest": 69.5}),
        write_fake(tmp_path / "b.fake", fail="not a fer-edge model"),
        write_fake(tmp_path / "c.fake", crash=True),
        tmp_path / "missing.fake",
        write_fake(tmp_path / "d.fake", sleep_ms=0, precision="int8", metrics={"PrivateTest": 68.0}),
    ]
    options = BenchOptions(
        models=models, batches=(1, 2), threads=1, measure=QUICK, loader=FAKE_LOADER, extra_pythonpath=[TESTS]
    )
    report = run_bench(options)
    status = [(Path(r.model).name, r.status) for r in report.results]
    assert status == [
        ("a.fake", "ok"),
        ("b.fake", "failed"),
        ("c.fake", "failed"),
        ("missing.fake", "failed"),
        ("d.fake", "ok"),
    ]
    reasons = {Path(r.model).name: r.reason for r in report.results}
    assert "not a fer-edge model" in reasons["b.fake"]
    assert "exited with code 3" in reasons["c.fake"]
    assert "file not found" in reasons["missing.fake"]
    a, d = report.results[0], report.results[4]
    assert a.baseline and a.speedup == pytest.approx(1.0)
    assert d.accuracy_recorded and d.accuracy == pytest.approx(68.0)
    assert d.delta_accuracy == pytest.approx(-1.5)
    assert d.speedup is not None and d.speedup > 1.0  # no sleep vs 1 ms sleep
    assert set(d.throughput) == {"1", "2"}


def test_rows_measure_accuracy_on_the_same_labelled_faces(tmp_path: Path, tiny_fer_csv: Path) -> None:
    models = [write_fake(tmp_path / "a.fake"), write_fake(tmp_path / "b.fake", precision="int8")]
    options = BenchOptions(
        models=models,
        data=tiny_fer_csv,
        split="PublicTest",
        batches=(1,),
        threads=1,
        measure=QUICK,
        loader=FAKE_LOADER,
        extra_pythonpath=[TESTS],
    )
    report = run_bench(options)
    a, b = report.results
    assert a.ok and b.ok
    assert not a.accuracy_recorded and a.accuracy_images == 50
    assert a.accuracy == b.accuracy  # same deterministic fake, same faces
    assert "50 PublicTest faces" in report.inputs
    json.dumps([r.to_dict() for r in report.results])  # every row is JSON-serialisable


def test_a_model_for_the_other_dataset_fails_its_row() -> None:
    import numpy as np

    from fer_edge.bench.inputs import BenchInputs
    from fer_edge.bench.worker import check_dataset
    from fer_edge.core.errors import FerEdgeError

    class Fer2013Model:
        dataset, labels, path = "fer2013", tuple("abcdefg"), Path("m.onnx")

    ferplus = BenchInputs(
        images=np.zeros((2, 48, 48), np.uint8),
        labels=np.array([0, 7]),
        dataset="ferplus",
        split="PrivateTest",
        source="x",
    )
    with pytest.raises(FerEdgeError, match="drop --votes"):
        check_dataset(Fer2013Model(), ferplus)

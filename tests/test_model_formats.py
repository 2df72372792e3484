"""One table of model files: what each suffix is, runs on, how its precision is read, what its layout is for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fer_edge.bench.plan import plan_rows
from fer_edge.bench.report import LAYOUT_MARK, notes, rich_table
from fer_edge.bench.rows import RowResult
from fer_edge.bench.runner import BenchReport
from fer_edge.core.errors import FerEdgeError
from fer_edge.model.formats import FORMATS, layout_note, layout_of, model_format, precision_of
from fer_edge.model.shipped import WEIGHTS_DIR
from fer_edge.runtime.classifier import load_backend

FP32, TRT_INT8, CPU_INT8 = (WEIGHTS_DIR / n for n in ("fer2013.onnx", "fer2013.int8.onnx", "fer2013.int8.cpu.onnx"))
needs_shipped = pytest.mark.skipif(not CPU_INT8.is_file(), reason="the shipped models are not in this installation")


def test_the_table() -> None:
    assert [(f.suffix, f.backend, f.devices) for f in FORMATS] == [
        (".pt", "pytorch", ("cpu", "cuda")),
        (".onnx", "onnxruntime", ("cpu", "cuda", "tensorrt")),
        (".engine", "tensorrt", ("tensorrt",)),
    ]
    assert model_format("M.ONNX").kind == "onnx"
    with pytest.raises(FerEdgeError, match=r"unknown model file type '\.plan'.*\.engine \(TensorRT\)"):
        model_format("m.plan")


@pytest.mark.parametrize("name", ["m.plan", "m.trt", "m.pth"])
def test_bench_takes_no_file_for_what_load_backend_refuses(tmp_path: Path, name: str) -> None:
    """bench planned .plan/.trt as TensorRT engines and .pth as PyTorch, which load_backend refuses: now
    such a file is one row that fails with the loader's message, not rows on devices it guessed."""
    path = tmp_path / name
    path.write_bytes(b"x")
    with pytest.raises(FerEdgeError, match="unknown model file type"):
        load_backend(path)
    (row,) = plan_rows([path], "auto", 2, (1,), tmp_path, {}, "PrivateTest")
    assert (row.device, row.backend_hint, row.precision_hint) == ("cpu", "unknown-cpu", "?")


def test_engine_precision_from_its_sidecar_else_its_name(tmp_path: Path) -> None:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"x")
    assert precision_of(engine) == "?"
    assert precision_of(tmp_path / "model.fp16.engine") == "fp16"
    (tmp_path / "model.engine.json").write_text(json.dumps({"precision": "int8"}))
    assert precision_of(engine) == "int8"
    assert precision_of(tmp_path / "x.pt") == "fp32" and layout_of(engine) is None


@needs_shipped
def test_shipped_precisions_and_layouts() -> None:
    assert [precision_of(p) for p in (FP32, TRT_INT8, CPU_INT8)] == ["fp32", "int8", "int8"]
    assert [layout_of(p) for p in (FP32, TRT_INT8, CPU_INT8)] == [None, "tensorrt", "cpu"]
    assert layout_note("tensorrt", "cpu") == "laid out for TensorRT" and layout_note("tensorrt", "tensorrt") == ""
    assert layout_note("cpu", "cuda") == "laid out for ONNX Runtime on the CPU" and layout_note(None, "cpu") == ""


@needs_shipped
def test_bench_labels_the_tensorrt_layout_on_a_cpu(tmp_path: Path) -> None:
    """A first `fer-edge bench` on a CPU showed the TensorRT-layout INT8 file at 0.29x FP32 with no word why."""
    rows = plan_rows([FP32, TRT_INT8, CPU_INT8], "cpu", 2, (1,), tmp_path, {}, "PrivateTest")
    assert [r.layout_note for r in rows] == ["", "laid out for TensorRT", ""]
    results = [RowResult(r.model, r.device, "onnxruntime-cpu", r.precision_hint, layout_note=r.layout_note,
                         latency_ms_p50=1.0) for r in rows]
    report = BenchReport(machine={}, settings={"batches": [1]}, inputs="x", results=results, baseline_note="b")
    layout_notes = [n for n in notes(report) if n.startswith(LAYOUT_MARK)]
    assert len(layout_notes) == 1 and "laid out for TensorRT" in layout_notes[0]
    assert "on a CPU use the CPU layout (NAME.int8.cpu.onnx)" in layout_notes[0]
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(rich_table(report))
    lines = console.export_text().splitlines()
    assert f"int8{LAYOUT_MARK}" in next(ln for ln in lines if "fer2013.int8.onnx" in ln)
    assert LAYOUT_MARK not in next(ln for ln in lines if "fer2013.int8.cpu.onnx" in ln)


@needs_shipped
def test_info_names_the_layout() -> None:
    from fer_edge.model.describe import model_info

    assert model_info(TRT_INT8)["layout"] == "laid out for TensorRT"
    assert model_info(CPU_INT8)["layout"] == "laid out for ONNX Runtime on the CPU"
    assert "layout" not in model_info(FP32)


def test_choosing_the_shipped_model_does_not_import_bench() -> None:
    """weights.default_model asked bench/plan for the GPU probe, and bench/plan imported weights."""
    code = ("import sys; from fer_edge.model.shipped import default_model; default_model('auto'); "
            "print(sorted(m for m in sys.modules if m.startswith('fer_edge.bench')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

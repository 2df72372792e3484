"""The models that ship in fer_edge/weights/: contract, TensorRT rules, recorded figures, INT8 agreement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fer_edge.cli import app
from fer_edge.data import load_dataset
from fer_edge.model.onnx_contract import read_model_metadata
from fer_edge.model.shipped import WEIGHTS_DIR, shipped_model
from fer_edge.runtime.classifier import load_backend

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "models"
SHIPPED = [
    "fer2013.onnx",
    "fer2013.int8.onnx",
    "fer2013.int8.cpu.onnx",
    "ferplus.onnx",
    "ferplus.int8.onnx",
    "ferplus.int8.cpu.onnx",
]
# The paper's figures, which the shipped models must beat (PrivateTest, single pass).
PAPER = {"fer2013": 69.32, "ferplus": 85.35}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_passes_check_onnx(name: str) -> None:
    args = ["check-onnx", str(WEIGHTS_DIR / name)]
    if ".int8." in name and ".cpu." not in name:
        args += ["--rules", "tensorrt"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


def test_shipped_files_fit_the_size_budget() -> None:
    total = sum((WEIGHTS_DIR / n).stat().st_size for n in SHIPPED)
    assert total < 80e6
    for ds in ("fer2013", "ferplus"):
        fp32 = (WEIGHTS_DIR / f"{ds}.onnx").stat().st_size
        assert (WEIGHTS_DIR / f"{ds}.int8.onnx").stat().st_size <= 0.27 * fp32
        assert (WEIGHTS_DIR / f"{ds}.int8.cpu.onnx").stat().st_size <= 0.27 * fp32


@pytest.mark.parametrize("name", SHIPPED)
def test_recorded_metrics_match_the_measured_results(name: str) -> None:
    """The accuracy in each file's metadata is the one measured on that file (benchmarks/models/)."""
    meta = read_model_metadata(WEIGHTS_DIR / name)
    metrics = json.loads(meta["metrics"])
    stem = name[: -len(".onnx")]
    result_name = f"{stem}.fp32" if stem.count(".") == 0 else stem
    measured = json.loads((RESULTS / f"{result_name}.PrivateTest.json").read_text())
    assert metrics["PrivateTest"] == pytest.approx(measured["accuracy"], abs=0.005)
    assert measured["n"] == {"fer2013": 3589, "ferplus": 3153}[meta["dataset"]]
    assert measured["accuracy"] > PAPER[meta["dataset"]]


@pytest.mark.parametrize("dataset", ["fer2013", "ferplus"])
def test_int8_loses_at_most_half_a_point(dataset: str) -> None:
    fp32 = json.loads((RESULTS / f"{dataset}.fp32.PrivateTest.json").read_text())["accuracy"]
    for stem in (f"{dataset}.int8", f"{dataset}.int8.cpu"):
        int8 = json.loads((RESULTS / f"{stem}.PrivateTest.json").read_text())["accuracy"]
        assert fp32 - int8 <= 0.5, stem


@pytest.mark.slow  # real-data accuracy: the host run checks it; device runs skip it
@pytest.mark.parametrize("target", ["tensorrt", "cpu"])
def test_int8_agrees_with_fp32_on_real_faces(real_slice_csv: Path, target: str) -> None:
    faces = load_dataset(real_slice_csv).split("PrivateTest")
    with load_backend(shipped_model("fer2013", "fp32"), device="cpu", threads=1) as fp32:
        a = fp32.infer(faces.images).argmax(1)
    with load_backend(shipped_model("fer2013", "int8", target), device="cpu", threads=1) as int8:
        b = int8.infer(faces.images).argmax(1)
    assert np.mean(a == b) >= 0.97
    assert np.mean(a == faces.labels) > 0.6


def test_default_model_takes_the_layout_that_is_fast_on_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    import fer_edge.model.shipped as weights
    from fer_edge.model.shipped import default_model

    monkeypatch.setattr(weights, "nvidia_gpu_present", lambda: False)
    assert default_model("auto").name == "fer2013.int8.cpu.onnx"
    assert default_model("cpu").name == "fer2013.int8.cpu.onnx"
    assert default_model("tensorrt").name == "fer2013.int8.onnx"
    monkeypatch.setattr(weights, "nvidia_gpu_present", lambda: True)
    assert default_model("auto").name == "fer2013.int8.onnx"

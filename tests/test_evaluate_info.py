"""``evaluate`` and ``info`` on checkpoints and ONNX models: JSON, tables, TTA, confusion PNG, bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, List, Union

import numpy as np
import pytest
from conftest import REPO, one_line_error, synthetic_faces, write_fer_csv
from typer.testing import CliRunner, Result

from fer_edge.cli import app
from fer_edge.model.labels import FER2013_LABELS, FERPLUS_LABELS
from fer_edge.model.scoring import classification_report

torch = pytest.importorskip("torch")

from fer_edge.model.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from fer_edge.model.net import ModelConfig, build_model  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
SHIPPED_FP32 = REPO / "fer_edge" / "weights" / "fer2013.onnx"


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def write_checkpoint(path: Path, dataset: str = "fer2013", seed: int = 0) -> Path:
    """An untrained, narrow model of the paper's layer structure: enough to exercise evaluate and info."""
    labels = FER2013_LABELS if dataset == "fer2013" else FERPLUS_LABELS
    torch.manual_seed(seed)
    config = ModelConfig(num_classes=len(labels), base_filters=8, fc_width=32)
    model = build_model(config).eval()
    save_checkpoint(
        path,
        {
            "model_config": config.to_dict(),
            "arch": config.arch,
            "dataset": dataset,
            "labels": list(labels),
            "state_dict": model.state_dict(),
            "epoch": 1,
            "metrics": {},
        },
    )
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt")


@pytest.fixture(scope="module")
def faces_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    images, labels = synthetic_faces(90, 7, seed=4)
    splits = ["Training"] * 30 + ["PublicTest"] * 20 + ["PrivateTest"] * 40
    return write_fer_csv(tmp_path_factory.mktemp("data") / "faces.csv", images, labels, splits)


def evaluate_json(*args: str | Path) -> dict:
    result = invoke("evaluate", *args, "--json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def test_evaluate_json_report(checkpoint: Path, faces_csv: Path) -> None:
    report = evaluate_json(checkpoint, "--data", faces_csv, "--split", "PrivateTest", "--device", "cpu")
    assert report["n"] == 40 and report["split"] == "PrivateTest" and report["dataset"] == "fer2013"
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (7, 7) and cm.sum() == 40
    assert report["accuracy"] == round(100 * np.trace(cm) / 40, 2)
    assert set(report["per_class"]) == set(FER2013_LABELS)
    assert sum(row["support"] for row in report["per_class"].values()) == 40
    assert report["backend"].startswith("torch") and report["precision"] == "fp32"
    assert "accuracy_flip_tta" not in report
    public = evaluate_json(checkpoint, "--data", faces_csv, "--split", "PublicTest", "--device", "cpu")
    assert public["n"] == 20


def test_flip_tta_is_reported_separately(checkpoint: Path, faces_csv: Path) -> None:
    plain = evaluate_json(checkpoint, "--data", faces_csv, "--device", "cpu")
    tta = evaluate_json(checkpoint, "--data", faces_csv, "--device", "cpu", "--tta")
    assert 0 <= tta["accuracy_flip_tta"] <= 100
    assert tta["accuracy"] == plain["accuracy"]  # the headline stays the single pass
    table = invoke("evaluate", checkpoint, "--data", faces_csv, "--device", "cpu", "--tta")
    assert table.exit_code == 0
    assert "flip TTA" in table.stdout and "reported separately" in table.stdout


def test_table_output_and_confusion_png(checkpoint: Path, faces_csv: Path, tmp_path: Path) -> None:
    png = tmp_path / "figs" / "confusion.png"
    result = invoke("evaluate", checkpoint, "--data", faces_csv, "--device", "cpu", "--confusion", png)
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == PNG
    assert [p.name for p in png.parent.iterdir()] == ["confusion.png"]
    for word in ("precision", "recall", "F1", "accuracy", "macro F1", *FER2013_LABELS):
        assert word in result.stdout


def test_record_stores_the_accuracy_in_the_checkpoint(faces_csv: Path, tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path / "rec.pt")
    report = evaluate_json(path, "--data", faces_csv, "--device", "cpu", "--record")
    assert load_checkpoint(path)["metrics"]["PrivateTest"] == report["accuracy"]


def test_info_of_a_checkpoint(checkpoint: Path) -> None:
    result = invoke("info", checkpoint, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    model = build_model(ModelConfig(base_filters=8, fc_width=32))
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["dataset"] == "fer2013" and info["labels"] == list(FER2013_LABELS)
    assert info["format"] == "pytorch checkpoint" and info["arch"] == "salimov-cnn-d6-k2"
    table = invoke("info", checkpoint)
    assert table.exit_code == 0 and f"{info['parameters']:,}" in table.stdout


def test_info_of_the_environment() -> None:
    result = invoke("info", "--json")
    assert result.exit_code == 0, result.output
    env = json.loads(result.stdout)
    assert env["fer_edge"] and env["python"] and env["numpy"]
    assert "CPUExecutionProvider" in env["onnxruntime"]["providers"]


def test_evaluate_an_exported_onnx_model(checkpoint: Path, faces_csv: Path, tmp_path: Path) -> None:
    from fer_edge.build.export import export_checkpoint

    onnx_path = tmp_path / "model.onnx"
    export_checkpoint(checkpoint, onnx_path)
    via_onnx = evaluate_json(onnx_path, "--data", faces_csv, "--device", "cpu")
    via_pt = evaluate_json(checkpoint, "--data", faces_csv, "--device", "cpu")
    assert via_onnx["backend"].startswith("onnxruntime")
    assert via_onnx["n"] == via_pt["n"] == 40
    assert via_onnx["confusion_matrix"] == via_pt["confusion_matrix"]
    info = json.loads(invoke("info", onnx_path, "--json").stdout)
    assert info["format"] == "onnx" and info["labels"] == list(FER2013_LABELS)


def test_shipped_onnx_model_beats_chance_on_real_faces(real_slice_csv: Path) -> None:
    if not SHIPPED_FP32.exists():
        pytest.skip(f"shipped model {SHIPPED_FP32.name} not built yet (fer_edge/weights/)")
    report = evaluate_json(SHIPPED_FP32, "--data", real_slice_csv, "--split", "PrivateTest", "--device", "cpu")
    assert report["n"] == 300
    assert report["accuracy"] > 50, report["accuracy"]  # chance is 14%; the paper's model reaches about 70%


# ---- bad input -------------------------------------------------------------------------------------


def test_evaluate_on_an_empty_split(checkpoint: Path, tmp_path: Path) -> None:
    images, labels = synthetic_faces(10, 7)
    data = write_fer_csv(tmp_path / "no_public.csv", images, labels, ["Training"] * 5 + ["PrivateTest"] * 5)
    line = one_line_error(invoke("evaluate", checkpoint, "--data", data, "--split", "PublicTest", "--device", "cpu"))
    assert line == f"error: {data}: split PublicTest is empty"
    line = one_line_error(invoke("evaluate", checkpoint, "--data", data, "--split", "Validation", "--device", "cpu"))
    assert "unknown split 'Validation'" in line


BadEvaluate = Callable[[Path, Path, Path], List[Union[str, Path]]]

EVALUATE_BAD: dict[str, tuple[BadEvaluate, list[str]]] = {
    "no --data": (lambda ckpt, data, tmp: [ckpt], ["--data is required"]),
    "missing data file": (lambda ckpt, data, tmp: [ckpt, "--data", tmp / "gone.csv"], ["gone.csv", "file not found"]),
    "missing model": (lambda ckpt, data, tmp: [tmp / "gone.pt", "--data", data], ["gone.pt"]),
    "unknown model type": (lambda ckpt, data, tmp: [data, "--data", data], ["faces.csv", "unknown model file type"]),
}


@pytest.mark.parametrize("case", list(EVALUATE_BAD))
def test_evaluate_bad_input(case: str, checkpoint: Path, faces_csv: Path, tmp_path: Path) -> None:
    make_args, expect = EVALUATE_BAD[case]
    line = one_line_error(invoke("evaluate", *make_args(checkpoint, faces_csv, tmp_path), "--device", "cpu"))
    for part in expect:
        assert part in line


def test_evaluate_ferplus_model_needs_votes(faces_csv: Path, tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "ferplus.pt", dataset="ferplus")
    assert "--votes" in one_line_error(invoke("evaluate", ckpt, "--data", faces_csv, "--device", "cpu"))


def test_evaluate_corrupt_checkpoint(faces_csv: Path, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    line = one_line_error(invoke("evaluate", bad, "--data", faces_csv, "--device", "cpu"))
    assert "corrupt.pt" in line


def test_info_bad_input(tmp_path: Path) -> None:
    assert "file not found" in one_line_error(invoke("info", tmp_path / "gone.pt"))
    other = tmp_path / "model.h5"
    other.write_bytes(b"x")
    assert "model.h5" in one_line_error(invoke("info", other))


def test_classification_report_by_hand() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2])
    preds = np.array([0, 0, 1, 1, 2, 2])
    report = classification_report(labels, preds, ("a", "b", "c"))
    assert report["accuracy"] == round(100 * 4 / 6, 2) and report["n"] == 6
    assert report["per_class"]["a"] == {"precision": 100.0, "recall": 66.67, "f1": 80.0, "support": 3}
    assert report["per_class"]["b"] == {"precision": 50.0, "recall": 50.0, "f1": 50.0, "support": 2}
    assert report["per_class"]["c"]["precision"] == 50.0 and report["per_class"]["c"]["recall"] == 100.0
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]

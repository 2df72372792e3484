"""``fer-edge bench`` end to end on small real models (PyTorch, ONNX Runtime FP32 and INT8)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fer_edge.cli import app
from fer_edge.model.labels import FER2013_LABELS

torch = pytest.importorskip("torch")

# --device cpu: the expected rows are the CPU ones, also on a machine with a GPU (auto would add CUDA rows)
QUICK = ["--min-time", "0.05", "--min-iters", "5", "--threads", "1", "--batch", "1,4", "--device", "cpu"]


def _export(model: torch.nn.Module, out: Path, meta: dict[str, str]) -> Path:
    import onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notes
        torch.onnx.export(
            model,
            (torch.zeros(1, 1, 48, 48),),
            str(out),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        )
    proto = onnx.load(str(out))
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out))
    return out


def _quantize(src: Path, out: Path, meta: dict[str, str]) -> Path:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.feeds = iter([{"input": rng.integers(0, 256, (4, 1, 48, 48)).astype(np.float32)}])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    quantize_static(
        str(src),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )
    proto = onnx.load(str(out))
    for entry in proto.metadata_props:
        if entry.key in meta:
            entry.value = meta[entry.key]
    onnx.save(proto, str(out))
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from fer_edge.model.checkpoint import save_checkpoint
    from fer_edge.model.net import ModelConfig, build_model

    tmp = tmp_path_factory.mktemp("bench-models")
    torch.manual_seed(0)
    config = ModelConfig(depth=3, base_filters=8, fc_width=32, fc_layers=1)
    model = build_model(config).eval()
    pt = tmp / "small.pt"
    save_checkpoint(
        pt,
        {
            "model_config": config.to_dict(),
            "state_dict": model.state_dict(),
            "arch": config.arch,
            "dataset": "fer2013",
            "labels": list(FER2013_LABELS),
            "epoch": 1,
            "train_args": {},
            "metrics": {},
        },
    )
    meta = {
        "labels": json.dumps(list(FER2013_LABELS)),
        "dataset": "fer2013",
        "arch": config.arch,
        "fer_edge_version": "0.1.0",
        "metrics": json.dumps({"PublicTest": 61.0, "PrivateTest": 62.5}),
    }
    fp32 = _export(model, tmp / "small.onnx", meta)
    int8 = _quantize(fp32, tmp / "small.int8.onnx", {"metrics": json.dumps({"PrivateTest": 61.75})})
    return {"pt": pt, "fp32": fp32, "int8": int8}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["bench", *args])
    return result.exit_code, result.output


def test_models_with_data_measure_accuracy_and_write_every_output(
    models: dict[str, Path], tiny_fer_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, text = run(
        "--models",
        str(models["pt"]),
        str(models["fp32"]),
        str(models["int8"]),
        str(tmp_path / "missing.onnx"),
        "--data",
        str(tiny_fer_csv),
        "--split",
        "PublicTest",
        "--json",
        str(out / "r.json"),
        "--markdown",
        str(out / "r.md"),
        "--plot",
        str(out / "r.png"),
        *QUICK,
    )
    assert code == 0, text
    data = json.loads((out / "r.json").read_text())
    rows = data["results"]
    assert [(r["backend"], r["precision"], r["status"]) for r in rows] == [
        ("torch-cpu", "fp32", "ok"),
        ("onnxruntime-cpu", "fp32", "ok"),
        ("onnxruntime-cpu", "int8", "ok"),
        ("onnxruntime-cpu", "?", "failed"),
    ]
    torch_row, ort_row, int8_row, missing = rows
    assert torch_row["baseline"] and "PyTorch FP32" in data["baseline"]
    assert torch_row["accuracy"] == pytest.approx(ort_row["accuracy"])  # same model, same 50 faces
    assert not ort_row["accuracy_recorded"] and ort_row["accuracy_images"] == 50
    assert set(int8_row["throughput"]) == {"1", "4"}
    assert int8_row["size_mb"] < ort_row["size_mb"]
    assert "file not found" in missing["reason"]
    assert data["machine"]["command"].startswith("fer-edge") or data["machine"]["command"]
    assert "| ✅ | torch-cpu |" in (out / "r.md").read_text()
    assert (out / "r.png").stat().st_size > 1000


def test_without_data_accuracy_is_the_recorded_one(models: dict[str, Path], tmp_path: Path) -> None:
    code, text = run(
        "--models", str(models["fp32"]), str(models["int8"]), "--json", str(tmp_path / "r.json"), *QUICK
    )
    assert code == 0, text
    fp32, int8 = json.loads((tmp_path / "r.json").read_text())["results"]
    assert fp32["accuracy"] == 62.5 and fp32["accuracy_recorded"]
    assert int8["accuracy"] == 61.75 and int8["delta_accuracy"] == pytest.approx(-0.75)
    assert "no .pt checkpoint was given" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "0"], "batch size must be at least 1"),
        (["--batch", "1,x"], "not a whole number"),
        (["--split", "Test"], "--split must be one of"),
        (["--estimate", "xavier"], "unknown device"),
    ],
)
def test_bad_options_are_one_line_errors(args: list[str], message: str) -> None:
    code, text = run(*args)
    assert code == 2
    assert message in text and "Traceback" not in text


def test_data_without_the_split_is_a_one_line_error(
    models: dict[str, Path], make_fer_csv: Callable[..., Path]
) -> None:
    csv = make_fer_csv(n_train=20, n_public=10, n_private=0, name="no_private.csv")
    code, text = run("--models", str(models["fp32"]), "--data", str(csv), *QUICK)
    assert code == 2 and "has no PrivateTest images" in text and "Traceback" not in text


def test_nothing_can_run_is_a_one_line_error(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(b"not a model")
    code, text = run("--models", str(foreign), str(tmp_path / "missing.onnx"), *QUICK)
    assert code == 2 and "no backend could run" in text and "Traceback" not in text


def test_no_shipped_models_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import fer_edge.model.shipped

    monkeypatch.setattr(fer_edge.model.shipped, "WEIGHTS_DIR", tmp_path)
    code, text = run(*QUICK)
    assert code == 2 and "no shipped models" in text


def test_estimate_prints_the_per_layer_roofline(models: dict[str, Path]) -> None:
    code, text = run("--estimate", "orin-nano", "--models", str(models["int8"]))
    assert code == 0, text
    assert "Jetson Orin Nano 8GB" in text and "total" in text and "68 GB/s" in text


def test_no_arguments_runs_the_shipped_models(tmp_path: Path) -> None:
    from fer_edge.model.shipped import WEIGHTS_DIR

    shipped = [WEIGHTS_DIR / n for n in ("fer2013.onnx", "fer2013.int8.onnx", "fer2013.int8.cpu.onnx")]
    if not all(p.is_file() for p in shipped):
        pytest.skip("the shipped FER2013 models are not in this checkout yet")
    code, text = run("--json", str(tmp_path / "r.json"), *QUICK)
    assert code == 0, text
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    cpu_rows = [r for r in rows if r["device"] == "cpu"]
    assert [Path(r["model"]).name for r in cpu_rows] == [p.name for p in shipped]
    assert all(r["status"] == "ok" for r in cpu_rows), [r["reason"] for r in cpu_rows]
    assert [r["precision"] for r in cpu_rows] == ["fp32", "int8", "int8"]
    assert cpu_rows[0]["baseline"]

"""Hostile or broken inputs are refused in one line before any work: model files that break the
input contract or carry huge or deeply nested metadata, strings that would drive the terminal, a
Haar file OpenCV cannot load, and a folder, device or pipe where a file is expected."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import invoke_cli, one_line_error, skip_host_command_off_host, synthetic_faces, write_fer_csv
from test_camera_helpers import tiny_fer_model
from typer.testing import CliRunner

from fer_edge.cli import app
from fer_edge.core.errors import FerEdgeError


def _edit_model(path: Path, **metadata: str) -> Path:
    import onnx

    from fer_edge.model.onnx_contract import set_metadata

    model = onnx.load(str(path))
    set_metadata(model, metadata)
    onnx.save(model, str(path))
    return path


def _foreign_input_model(path: Path, elem_type: int, dims: list[int | str]) -> Path:
    """A fer-edge-labelled model whose image input is not float [N, 1, 48, 48] (e.g. uint8 RGB)."""
    import onnx

    tiny_fer_model(path)
    model = onnx.load(str(path))
    graph_input = model.graph.input[0]
    graph_input.type.tensor_type.elem_type = elem_type
    del graph_input.type.tensor_type.shape.dim[:]
    for d in dims:
        dim = graph_input.type.tensor_type.shape.dim.add()
        if isinstance(d, int):
            dim.dim_value = d
        else:
            dim.dim_param = d
    onnx.save(model, str(path))
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_fer_csv(tmp_path / "f.csv", *synthetic_faces(6, 7), ["Training"] * 2 + ["PublicTest"] * 2
                         + ["PrivateTest"] * 2)


# ---- the model-file contract, before ONNX Runtime ---------------------------------------------------


@pytest.mark.parametrize(
    ("elem", "dims", "shown"),
    [
        ("UINT8", ["N", 3, 48, 48], "uint8 [N, 3, 48, 48]"),
        ("FLOAT", ["N", 3, 48, 48], "float32 [N, 3, 48, 48]"),
        ("FLOAT", ["N", 1, 64, 64], "float32 [N, 1, 64, 64]"),
        ("DOUBLE", ["N", 1, 48, 48], "float64 [N, 1, 48, 48]"),
    ],
)
@pytest.mark.parametrize("command", ["evaluate", "bench", "build-engine"])
def test_a_model_outside_the_input_contract_is_one_line_before_onnx_runtime(
    tmp_path: Path, data: Path, elem: str, dims: list[int | str], shown: str, command: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import onnxruntime
    from onnx import TensorProto

    def no_session(*args: object, **kwargs: object) -> None:
        raise AssertionError("ONNX Runtime was asked to load a model that breaks the contract")

    monkeypatch.setattr(onnxruntime, "InferenceSession", no_session)
    model = _foreign_input_model(tmp_path / "rgb.onnx", getattr(TensorProto, elem), dims)
    args = {
        "evaluate": ["evaluate", model, "--data", data, "--device", "cpu"],
        "bench": ["bench", model, "--device", "cpu", "--min-time", "0.01", "--min-iters", "1", "--batch", "1"],
        "build-engine": ["build-engine", model, "--out", tmp_path / "m.engine", "--print-trtexec"],
    }[command]
    result = invoke_cli(*args)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert f"input 'input' is {shown}; a fer-edge classifier takes float32 [N, 1, 48, 48]" in result.output
    assert str(model) in result.output and "AssertionError" not in result.output


def test_the_contract_check_passes_real_models(tmp_path: Path) -> None:
    import onnx

    from fer_edge.model.onnx_contract import check_classifier_input
    from fer_edge.model.shipped import shipped_model

    for dataset in ("fer2013", "ferplus"):
        for precision in ("fp32", "int8"):
            path = shipped_model(dataset, precision)
            check_classifier_input(onnx.load(str(path), load_external_data=False), path)


METADATA_CASES = [
    ("info", "metrics", "[" * 100_000 + "]" * 100_000, "'metrics' nests deeper than 16 levels"),
    ("info", "calibration", '{"a":' * 5000 + "1" + "}" * 5000, "'calibration' nests deeper than 16 levels"),
    ("info", "labels", json.dumps(["x" * 50] * 40_000), "'labels' holds 2,160,000 characters; refused"),
    ("evaluate", "labels", json.dumps(["x" * 50] * 40_000), "'labels' holds 2,160,000 characters; refused"),
    ("evaluate", "labels", "[" * 100_000, "'labels' nests deeper"),
]


@pytest.mark.parametrize(("command", "key", "value", "expect"), METADATA_CASES)
def test_huge_or_deeply_nested_metadata_is_refused_not_recursed_into(
    tmp_path: Path, data: Path, key: str, value: str, expect: str, command: str
) -> None:
    model = _edit_model(tiny_fer_model(tmp_path / "deep.onnx"), **{key: value})
    args = ["info", model] if command == "info" else ["evaluate", model, "--data", data, "--device", "cpu"]
    line = one_line_error(invoke_cli(*args))
    assert expect in line and str(model) in line


def test_a_string_bracket_does_not_count_as_nesting() -> None:
    from fer_edge.model.onnx_contract import metadata_json

    value = json.dumps({"note": "[" * 1000 + "{" * 1000})
    assert metadata_json({"k": value}, "k") == {"note": "[" * 1000 + "{" * 1000}


def test_info_escapes_control_characters_from_the_file(tmp_path: Path) -> None:
    import onnx

    hostile = "\x1b]0;owned\x07\x1b[2J\x1b[31mred"
    model_path = _edit_model(tiny_fer_model(tmp_path / "ansi.onnx"), labels=json.dumps([hostile] + ["x"] * 6),
                             arch=hostile, metrics=json.dumps({"note": hostile}))
    model = onnx.load(str(model_path))
    model.producer_name = hostile
    onnx.save(model, str(model_path))
    result = CliRunner().invoke(app, ["info", str(model_path)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\\x1b]0;owned\\x07" in result.output.replace("\n", "").replace("│", "").replace(" ", "")


# ---- Haar cascades --------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b'<?xml version="1.0"?>\n<opencv_storage><cascade>cut', b"\x00\x01 not xml"])
def test_a_haar_file_opencv_cannot_load_is_one_line(tmp_path: Path, content: bytes,
                                                    capfd: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("cv2")
    from fer_edge.camera.detection import make_detector

    bad = tmp_path / "bad.xml"
    bad.write_bytes(content)
    with pytest.raises(FerEdgeError) as info:
        make_detector(bad)
    assert str(info.value) == f"{bad}: not a readable Haar cascade (OpenCV cannot load this .xml)"


# ---- a folder, a device or a pipe where a file is expected -------------------------------------------


def _folder(tmp: Path) -> Path:
    (tmp / "dir.onnx").mkdir()
    return tmp / "dir.onnx"


def _device(tmp: Path) -> Path:
    os.symlink("/dev/null", tmp / "dev.onnx")
    return tmp / "dev.onnx"


def _pipe(tmp: Path) -> Path:
    os.mkfifo(tmp / "pipe.onnx")
    return tmp / "pipe.onnx"


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (_folder, "is a folder, not a model file"),
        (_device, "is a device, not a model file"),
        (_pipe, "is a named pipe, not a model file"),
        (lambda tmp: tmp / "missing.onnx", "model file not found"),
    ],
)
@pytest.mark.parametrize("command", ["info", "evaluate", "check-onnx", "bench"])
def test_a_folder_or_device_given_as_a_model_says_so(tmp_path: Path, data: Path, make: Callable[[Path], Path],
                                                      said: str, command: str) -> None:
    given = make(tmp_path)
    extra = {"evaluate": ["--data", data, "--device", "cpu"], "bench": ["--device", "cpu", "--batch", "1"]}
    result = invoke_cli(command, given, *extra.get(command, []))
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert f"{given}: {said}" in result.output


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda tmp: Path("/dev/zero"), "is a device, not a data file"),
        (lambda tmp: _pipe(tmp).rename(tmp / "fer.csv"), "is a named pipe, not a data file"),
    ],
)
def test_a_device_or_pipe_as_data_is_refused_unread(tmp_path: Path, make: Callable[[Path], Path], said: str) -> None:
    given = make(tmp_path)
    line = one_line_error(invoke_cli("evaluate", tiny_fer_model(tmp_path / "m.onnx"), "--data", given,
                                 "--device", "cpu"))
    assert said in line and str(given) in line


def test_votes_and_checkpoint_folders_say_so(tmp_path: Path, data: Path) -> None:
    from fer_edge.data import load_dataset

    with pytest.raises(FerEdgeError, match="is a folder, not a CSV file"):
        load_dataset(data, dataset="ferplus", votes=tmp_path, cache=False)


# ---- a checkpoint whose weights do not fit its config -----------------------------------------------


@pytest.mark.parametrize("change", [{"depth": 5}, {"kernel_size": 3}])
@pytest.mark.parametrize("command", ["evaluate", "export"])
def test_a_checkpoint_whose_weights_do_not_fit_its_config_names_the_file(
    tmp_path: Path, data: Path, change: dict[str, int], command: str
) -> None:
    skip_host_command_off_host(command)
    torch = pytest.importorskip("torch")
    from test_evaluate_info import write_checkpoint

    path = write_checkpoint(tmp_path / "good.pt")
    ckpt = torch.load(path, weights_only=False)
    ckpt["model_config"].update(change)
    torch.save(ckpt, tmp_path / "misfit.pt")
    args = {"evaluate": ["evaluate", tmp_path / "misfit.pt", "--data", data, "--device", "cpu"],
            "export": ["export", tmp_path / "misfit.pt", "--out", tmp_path / "m.onnx"]}[command]
    line = one_line_error(invoke_cli(*args))
    assert line.startswith(f"error: {tmp_path / 'misfit.pt'}: checkpoint weights do not fit its model config (")
    assert "RuntimeError: " in line and ("size mismatch" in line or "key(s)" in line), line
    assert not (tmp_path / "m.onnx").exists()

"""The device side (Python 3.8 / 3.10, no torch): host-only commands refuse old Pythons in one
line, ONNX Runtime is an extra whose absence is one line, Typer sees every option on 3.8."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
from conftest import REPO
from typer.testing import CliRunner

from fer_edge.cli import COMMANDS, app
from fer_edge.core.errors import FerEdgeError
from fer_edge.core.host_python import HOST_COMMANDS, require_host_python
from fer_edge.runtime.ort_session import MISSING, import_onnxruntime

SHIPPED_ONNX = REPO / "fer_edge" / "weights" / "fer2013.onnx"


def one_line(result: object) -> str:
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 2, output  # type: ignore[attr-defined]
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


@pytest.mark.parametrize("command", HOST_COMMANDS)
def test_python_38_is_refused_for_host_commands(command: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if sys.version_info >= (3, 10):
        monkeypatch.setattr(sys, "version_info", (3, 8, 18, "final", 0))
    args = {
        "train": ["train", "--data", str(tmp_path / "fer.csv"), "--out", str(tmp_path / "run")],
        "export": ["export", str(tmp_path / "best.pt"), "--out", str(tmp_path / "m.onnx")],
        "quantize": ["quantize", str(SHIPPED_ONNX), "--data", str(tmp_path / "fer.csv"),
                     "--out", str(tmp_path / "q.onnx")],
    }[command]
    line = one_line(CliRunner().invoke(app, args))
    assert f"fer-edge {command} needs Python >= 3.10" in line and "Python 3.8" in line
    assert "workstation" in line
    assert not any(tmp_path.iterdir()), "a refused command writes nothing"


def test_host_python_check_passes_310_and_later() -> None:
    require_host_python("train", (3, 10))
    require_host_python("train", (3, 12, 1))
    with pytest.raises(FerEdgeError, match="Python 3.9"):
        require_host_python("export", (3, 9, 18))


def test_device_commands_are_not_refused_on_38(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "version_info", (3, 8, 18, "final", 0))
    result = CliRunner().invoke(app, ["check-onnx", str(SHIPPED_ONNX)])
    assert result.exit_code == 0, result.output


def test_every_command_signature_is_evaluated_for_typer() -> None:
    """Typer < 3.10 does not evaluate string annotations; unevaluated, Annotated options vanish."""
    for name, func in COMMANDS.items():
        for param in inspect.signature(func).parameters.values():
            assert not isinstance(param.annotation, str), f"{name}: {param.name} is still {param.annotation!r}"


def test_options_stay_options(tmp_path: Path) -> None:
    """On Python 3.8 with unevaluated annotations, build-engine's --out became a positional argument."""
    out = tmp_path / "m.engine"
    args = ["build-engine", str(SHIPPED_ONNX), "--out", str(out), "--precision", "fp16", "--print-trtexec",
            "--trt-version", "10.3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"--saveEngine={out}" in result.output


def _hide_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails


def test_missing_onnxruntime_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide_onnxruntime(monkeypatch)
    with pytest.raises(FerEdgeError) as exc:
        import_onnxruntime()
    assert str(exc.value) == MISSING
    assert "fer-edge[cpu]" in MISSING and "fer-edge[gpu]" in MISSING and "jetson_setup.sh" in MISSING


def test_missing_onnxruntime_is_one_line_from_a_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from fer_edge.runtime.classifier import load_backend

    _hide_onnxruntime(monkeypatch)
    with pytest.raises(FerEdgeError, match=r"fer-edge\[cpu\]"):
        load_backend(SHIPPED_ONNX)
    csv = tmp_path / "fer.csv"
    csv.write_text("emotion,pixels,Usage\n0," + " ".join(["0"] * 2304) + ",PrivateTest\n")
    line = one_line(CliRunner().invoke(app, ["evaluate", str(SHIPPED_ONNX), "--data", str(csv)]))
    assert "ONNX Runtime is not installed" in line and "fer-edge[cpu]" in line


def test_a_broken_onnxruntime_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def failing_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "onnxruntime":
            raise ImportError("libcudart.so.12: cannot open shared object file", name="onnxruntime.capi._pybind_state")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", failing_import)
    with pytest.raises(FerEdgeError, match=r"installed but does not import \(libcudart\.so\.12"):
        import_onnxruntime()

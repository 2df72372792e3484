"""quantize and its temporary folder: a full one is said to be full, and a SIGKILLed run's folder is
removed by the next run (never the folder of a run that is still going)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from fs_faults import fill, tmpfs
from test_quantize import faces_csv, fp32_model  # noqa: F401  (module-scoped fixtures)
from typer.testing import CliRunner

from fer_edge.build.quantize.workspace import PREFIX, remove_stale_workspaces
from fer_edge.cli import app

pytest.importorskip("torch")
QUICK = ("--method", "minmax", "--calib-size", "100", "--no-latency")


@pytest.mark.parametrize("state", ["too small", "filled"])
def test_a_full_temporary_folder_is_said_to_be_full(fp32_model: Path, faces_csv: Path, tmp_path: Path,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch, state: str) -> None:
    out = tmp_path / "q.onnx"
    with tmpfs(tmp_path / "tmp", size="256k") as small:
        if state == "filled":
            fill(small)
        monkeypatch.setattr(tempfile, "tempdir", str(small))
        result = CliRunner().invoke(app, ["quantize", str(fp32_model), "--data", str(faces_csv), "--out", str(out),
                                          *QUICK])
        left = sorted(p.name for p in small.iterdir() if p.name != "filler")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith(f"error: {small}: the temporary folder is full"), result.output
    assert "cannot pre-process this model" not in result.output and "Error" not in result.output
    assert not out.exists() and left == []  # nothing written, the workspace removed


def test_a_sigkilled_quantize_leaves_its_folder_and_the_next_run_removes_it(
    fp32_model: Path, faces_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fer_edge", "quantize", str(fp32_model), "--data", str(faces_csv), "--out",
         str(tmp_path / "killed.onnx"), "--calib-size", "200", "--method", "entropy", "--no-latency"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(temp.glob(f"{PREFIX}{proc.pid}-*")):
            assert proc.poll() is None, "quantize ended before making its folder"
            assert time.monotonic() < deadline, "no quantize folder appeared"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    (left,) = temp.glob(f"{PREFIX}{proc.pid}-*")
    # A folder of a process that is alive (this one) stays; so does one not named by a process.
    live = temp / f"{PREFIX}{os.getpid()}-busy"
    live.mkdir()
    foreign = temp / "fer-edge-quant-abcdef"
    foreign.mkdir()

    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    result = CliRunner().invoke(app, ["quantize", str(fp32_model), "--data", str(faces_csv), "--out",
                                      str(tmp_path / "next.onnx"), *QUICK])
    assert result.exit_code == 0, result.output
    assert not left.exists()
    assert live.is_dir() and foreign.is_dir()
    assert remove_stale_workspaces(temp) == []


def test_a_library_error_on_a_full_workspace_is_said_to_be_full(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the check before the work (another process fills the disk): ONNX Runtime reports its short
    write as its own error about the model; fer-edge says the folder is full."""
    from fer_edge.build.quantize.workspace import quantize_workspace
    from fer_edge.core.errors import FerEdgeError

    with tmpfs(tmp_path / "tmp", size="256k") as small:
        monkeypatch.setattr(tempfile, "tempdir", str(small))
        with pytest.raises(FerEdgeError) as exc, quantize_workspace() as work:
            try:
                (work / "prepared.onnx").write_bytes(b"\0" * 1_000_000)
            except OSError:
                raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : Load model failed: protobuf parsing") from None
        assert str(exc.value).startswith(f"{small}: the temporary folder is full")
        assert list(small.iterdir()) == []
    with pytest.raises(RuntimeError, match="not about space"), quantize_workspace():
        raise RuntimeError("not about space")  # other errors pass through unchanged

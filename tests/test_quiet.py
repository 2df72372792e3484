"""Only fer-edge speaks unless asked: a failing command prints its one-line error and nothing from OpenCV,
FFmpeg or PyTorch; ``--verbose`` lets them speak. Real subprocesses, so the C libraries' output is seen."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from conftest import REPO

from fer_edge.core import quiet

QUIET_VARS = tuple(quiet.QUIET_ENV)


def fer_edge(*args: str | Path, cwd: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (*QUIET_VARS, "FER_EDGE_VERBOSE")}  # a user's shell
    env.update(PYTHONPATH=str(REPO), **extra_env)
    return subprocess.run(
        [sys.executable, "-m", "fer_edge", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def truncated_mp4(path: Path) -> Path:
    """A real MP4 cut before its moov atom, as a copy interrupted mid-way leaves it."""
    cv2 = pytest.importorskip("cv2")
    import numpy as np

    whole = path.with_name("whole.mp4")
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write MP4")
    for i in range(10):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    data = whole.read_bytes()
    path.write_bytes(data[: data.index(b"moov") - 4])
    return path


def source(case: str, tmp_path: Path) -> str:
    if case == "truncated.mp4":
        return str(truncated_mp4(tmp_path / case))
    if case.startswith("/dev/") and Path(case).exists():
        pytest.skip(f"{case} exists on this machine")
    return case


CASES = ["9", "/dev/video9", "rtsp://127.0.0.1:9/x", "truncated.mp4"]


@pytest.mark.parametrize("case", CASES)
def test_a_source_that_cannot_open_prints_only_our_error(case: str, tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    src = source(case, tmp_path)
    # --fail-fast: without it a live camera that is not there yet is waited for (a service at boot)
    result = fer_edge("run", "--source", src, "--log", tmp_path / "mood.db", "--fail-fast", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {src}: cannot open video source"]
    assert result.stdout == ""


def test_verbose_lets_opencv_and_ffmpeg_speak(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    # FFmpeg's own lines, which the default hides; asked for by the option, or by the variable (a service unit)
    for case, how, ffmpeg_says in (
        ("rtsp://127.0.0.1:9/x", ["--verbose"], "Connection refused"),
        ("truncated.mp4", [], "moov atom not found"),
    ):
        src = source(case, tmp_path)
        env = {} if how else {"FER_EDGE_VERBOSE": "1"}
        result = fer_edge(
            *how, "run", "--source", src, "--log", tmp_path / "m.db", "--fail-fast", cwd=tmp_path, **env
        )
        lines = result.stderr.splitlines()
        assert result.returncode == 2 and lines[-1] == f"error: {src}: cannot open video source"
        assert any(ffmpeg_says in line for line in lines[:-1]), lines


def test_a_users_own_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENCV_LOG_LEVEL", "INFO")
    monkeypatch.delenv("OPENCV_FFMPEG_LOGLEVEL", raising=False)
    monkeypatch.setattr(quiet, "_set_by_us", {})
    monkeypatch.setattr(quiet, "_state", {"verbose": False})
    with warnings.catch_warnings():
        quiet.configure(verbose=False)
        assert os.environ["OPENCV_LOG_LEVEL"] == "INFO" and os.environ["OPENCV_FFMPEG_LOGLEVEL"] == "-8"
        assert quiet.ort_log_severity() == quiet.ORT_QUIET
        quiet.configure(verbose=True)  # undoes what it set, keeps what the user set
        assert os.environ["OPENCV_LOG_LEVEL"] == "INFO" and "OPENCV_FFMPEG_LOGLEVEL" not in os.environ
        assert quiet.is_verbose() and quiet.ort_log_severity() == quiet.ORT_VERBOSE


def test_known_pytorch_warnings_about_our_model_are_filtered() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet.configure(verbose=False)
        # PyTorch's wording (torch/nn/modules/conv.py); it warns once per process, so it is replayed here
        torch_says = "Using padding='same' with even kernel lengths and odd dilation may require a zero-padded copy"
        warnings.warn(torch_says, UserWarning, stacklevel=1)
        warnings.warn("something else", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["something else"]

"""--save-video on a disk that fills: the earlier video is kept, the run says so in one line and exits
non-zero; temporary names are per process, and a killed run's partial file is removed later."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fs_faults import tmpfs
from typer.testing import CliRunner

from fer_edge.core.errors import FerEdgeError

cv2 = pytest.importorskip("cv2")

from fer_edge.camera.sinks import VideoSink, partial_path  # noqa: E402


def noise_frames(n: int, width: int = 320, height: int = 240) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(n)]  # incompressible


def play(sink: VideoSink, frames: list[np.ndarray]) -> None:
    for frame in frames:
        assert sink.show(frame, [], ("happy",))  # a failing video never stops the camera


def test_a_video_that_fits_replaces_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "out.avi"
    target.write_bytes(b"an older video")
    sink = VideoSink(target, fps=10)
    assert sink.partial.name == f".out.{os.getpid()}.partial.avi"
    play(sink, noise_frames(12))
    sink.close()
    capture = cv2.VideoCapture(str(target))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    capture.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.avi"]


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_a_disk_that_fills_keeps_the_old_video_and_says_so(tmp_path: Path, suffix: str) -> None:
    with tmpfs(tmp_path / "disk", size="3m") as disk:
        target = disk / f"out{suffix}"
        target.write_bytes(b"an older, good video")
        sink = VideoSink(target, fps=10)
        play(sink, noise_frames(200))  # ~20 MB of noise into 3 MB
        with pytest.raises(FerEdgeError) as exc:
            sink.close()
        message = str(exc.value)
        assert len(message.splitlines()) == 1
        assert message.startswith(f"{target}: --save-video: ") and "the previous video is unchanged" in message
        assert "disk" in message
        assert target.read_bytes() == b"an older, good video"
        assert sorted(p.name for p in disk.iterdir()) == [target.name]  # the partial file is gone


def test_a_killed_runs_partial_video_is_removed_not_a_live_ones(tmp_path: Path) -> None:
    target = tmp_path / "out.avi"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    stale = partial_path(target, int(dead.stdout))
    stale.write_bytes(b"a killed run's partial video")
    live_proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = partial_path(target, live_proc.pid)
        live.write_bytes(b"another run, still writing")
        sink = VideoSink(target, fps=10)
        assert not stale.exists() and live.exists()
        assert sink.partial != live
    finally:
        live_proc.kill()
        live_proc.wait()


def test_run_with_a_video_on_a_full_disk_exits_non_zero_in_one_line(tmp_path: Path, shared_data: Path) -> None:
    from test_camera_helpers import YUNET_NAME, face_video, tiny_fer_model

    from fer_edge.cli import app

    yunet = shared_data / YUNET_NAME
    if not yunet.exists():
        pytest.skip(f"{YUNET_NAME} not present")
    faces = np.full((1, 100, 100), 128, np.uint8)
    video = face_video(tmp_path / "in.avi", faces, n_frames=60, width=320, height=240, side=100)
    with tmpfs(tmp_path / "disk", size="1m") as disk:
        target = disk / "out.avi"
        target.write_bytes(b"an older, good video")
        result = CliRunner().invoke(app, ["run", "--source", str(video), "--model",
                                          str(tiny_fer_model(tmp_path / "t.onnx")), "--detector-model", str(yunet),
                                          "--log", str(tmp_path / "m.db"), "--save-video", str(target)])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and "--save-video" in errors[0] and "the previous video is unchanged" in errors[0]
        # ... after the run's own end: its windows are in the log, and it says so first
        lines = result.output.splitlines()
        stopped = [i for i, line in enumerate(lines) if line.startswith("stopped (end of source): ")]
        assert stopped and stopped[0] < lines.index(errors[0]) and "written to" in lines[stopped[0]]
        assert target.read_bytes() == b"an older, good video"
        assert sorted(p.name for p in disk.iterdir()) == ["out.avi"]

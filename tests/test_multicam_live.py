"""Several cameras through the real command: a live MJPEG stream on 127.0.0.1 that drops and comes
back while a video file played as a live camera (--realtime) keeps its windows; two and three
cameras from generated videos (one with a gap, one that ends early) with per-camera windows."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from stream_server import MjpegCamera
from test_camera_helpers import tiny_fer_model
from typer.testing import CliRunner

from fer_edge.cli import app

pytest.importorskip("cv2")


def per_camera(db: Path) -> dict[str, list[tuple[int, float]]]:
    """(frames, outage_s) of each window, per camera (its run's source)."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT r.source, w.frames, w.outage_s FROM windows w JOIN runs r ON r.id = w.run_id ORDER BY w.id"
        ).fetchall()
    finally:
        conn.close()
    out: dict[str, list[tuple[int, float]]] = {}
    for source, frames, outage in rows:
        out.setdefault(source, []).append((frames, outage))
    return out


@pytest.mark.slow
def test_a_live_camera_that_drops_does_not_cost_the_others_their_windows(tmp_path: Path) -> None:
    from fer_edge.camera.scenes import write_video

    clip = write_video(tmp_path / "aisle.avi", [np.full((120, 160, 3), 90, np.uint8)] * 60, fps=10.0)
    camera = MjpegCamera(fps=10, size=(120, 160)).start()
    url = camera.url()

    def drop_and_return() -> None:
        deadline = time.monotonic() + 60
        while camera.served < 15 and time.monotonic() < deadline:  # the run has it, 1.5 s of frames
            time.sleep(0.01)
        camera.stop()
        time.sleep(2.0)
        camera.start()

    thread = threading.Thread(target=drop_and_return)
    thread.start()
    try:
        result = CliRunner().invoke(app, [
            "run", "--source", f"door={url}", "--source", f"aisle={clip}", "--realtime",
            "--model", str(tiny_fer_model(tmp_path / "tiny.onnx")), "--log", str(tmp_path / "mood.db"),
            "--window", "1", "--max-frames", "60", "--stats-every", "1",
        ])
    finally:
        thread.join()
        camera.stop()
    assert result.exit_code == 0, result.output
    windows = per_camera(tmp_path / "mood.db")
    aisle, door = windows[str(clip)], windows[url]
    # The file camera: every frame in its own windows, on time, none marked as an outage.
    assert sum(f for f, _ in aisle) == 60 and len(aisle) == 6 and all(o == 0 for _, o in aisle)
    # The live camera: the gap is its own, in its windows.
    assert sum(o for _, o in door) >= 1.0 and sum(f for f, _ in door) == 60
    lines = result.output.splitlines()
    assert any(line.startswith("door: source ") and "dropped" in line for line in lines)
    assert any(line.startswith("door: ") and "reconnected" in line for line in lines)
    assert any(line.startswith("aisle: stopped (") for line in lines)
    # The journal's lines, a line per camera: fps as served (a 10-fps camera, not the pipeline's capacity).
    fps = [float(line.split()[1]) for line in lines if line.startswith("aisle: ") and " fps | " in line]
    assert fps and all(5 < f < 15 for f in fps[1:]), fps

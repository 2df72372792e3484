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
    from scenes import write_video

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


def still_faces_video(path: Path, faces: np.ndarray, n_frames: int, empty: range = range(0), fps: float = 10.0,
                      width: int = 320, height: int = 240) -> Path:
    """Faces (one per column, 100 px) holding still; no faces on the frames in ``empty`` (a gap)."""
    from scenes import background, paste_face, write_video

    bg = background(width, height, np.random.default_rng(0))
    slot = width // len(faces)
    frames = []
    for i in range(n_frames):
        frame = bg.copy()
        if i not in empty:
            for k, face in enumerate(faces):
                paste_face(frame, face, k * slot + 5, 60, 100)
        frames.append(frame)
    return write_video(path, frames, fps=fps)


def windows_by_camera(db: Path) -> dict[str, list[int]]:
    conn = sqlite3.connect(db)
    try:
        out: dict[str, list[int]] = {}
        for camera, faces in conn.execute("SELECT camera, faces FROM windows ORDER BY camera, start_ts"):
            out.setdefault(camera, []).append(faces)
        return out
    finally:
        conn.close()


@pytest.mark.parametrize("how", ["sources", "file"])
def test_two_and_three_cameras_from_videos_keep_their_own_windows(
    tmp_path: Path, real_slice_csv: Path, shared_data: Path, how: str
) -> None:
    from test_camera_helpers import YUNET_NAME, detectable_faces

    yunet = shared_data / YUNET_NAME
    if not yunet.exists():
        pytest.skip(f"{YUNET_NAME} not present in {shared_data}")
    faces = detectable_faces(real_slice_csv, 2, yunet, side=100)
    two = still_faces_video(tmp_path / "two.avi", faces, 30)  # 3 s, two faces throughout
    # a face, a 1-s gap (a face that left is not counted in the next window), the face again
    gap = still_faces_video(tmp_path / "gap.avi", faces[:1], 30, empty=range(10, 20))
    short = still_faces_video(tmp_path / "short.avi", faces[1:], 15)  # ends after 1.5 s
    common = ["--model", str(tiny_fer_model(tmp_path / "tiny.onnx")), "--detector-model", str(yunet),
              "--log", str(tmp_path / "mood.db"), "--window", "1", "--min-hits", "2"]
    if how == "sources":
        result = CliRunner().invoke(app, ["run", "--source", f"door={two}", "--source", f"till={gap}", *common])
        expected = {"door": [2, 2, 2], "till": [1, 0, 1]}
    else:
        cameras = tmp_path / "cameras.toml"
        cameras.write_text(
            f'[[camera]]\nname = "door"\nsource = "{two}"\n'
            # the right face of the door's twin is in a staff area on this camera
            f'[[camera]]\nname = "twin"\nsource = "{two}"\nzones = [{{rect = [160, 0, 320, 240]}}]\n'
            f'[[camera]]\nname = "till"\nsource = "{gap}"\n'
            f'[[camera]]\nname = "aisle"\nsource = "{short}"\nwindow = 0.5\n'
        )
        result = CliRunner().invoke(app, ["run", "--cameras", str(cameras), *common])
        expected = {"door": [2, 2, 2], "twin": [1, 1, 1], "till": [1, 0, 1], "aisle": [1, 1, 1]}
    assert result.exit_code == 0, result.output
    assert windows_by_camera(tmp_path / "mood.db") == expected
    conn = sqlite3.connect(tmp_path / "mood.db")
    frames = dict(conn.execute("SELECT camera, sum(frames) FROM windows GROUP BY camera").fetchall())
    assert frames == {"door": 30, "till": 30, **({"twin": 30, "aisle": 15} if how == "file" else {})}


@pytest.mark.slow
def test_a_camera_not_there_at_the_start_does_not_hold_back_the_others(tmp_path: Path) -> None:
    import os
    import signal

    from scenes import write_video
    from stream_server import free_port

    clip = write_video(tmp_path / "aisle.avi", [np.full((120, 160, 3), 90, np.uint8)] * 20, fps=10.0)
    absent = f"http://127.0.0.1:{free_port()}/video.mjpg"  # nobody listens: refused at once
    model = str(tiny_fer_model(tmp_path / "tiny.onnx"))
    args = ["run", "--source", f"door={absent}", "--source", f"aisle={clip}", "--model", model,
            "--log", str(tmp_path / "mood.db"), "--window", "1"]
    result = CliRunner().invoke(app, [*args, "--fail-fast"])
    assert result.exit_code != 0 and "cannot open video source" in result.output.splitlines()[-1]

    def stop_later() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.1)
            windows = per_camera(tmp_path / "mood.db") if (tmp_path / "mood.db").exists() else {}
            if sum(f for f, _ in windows.get(str(clip), [])) == 20:  # the file's last window, as it ended
                break
        time.sleep(1.5)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=stop_later)
    thread.start()
    t0 = time.monotonic()
    result = CliRunner().invoke(app, [*args, "--realtime"])
    thread.join()
    assert result.exit_code == 0, result.output
    windows = per_camera(tmp_path / "mood.db")
    assert sum(f for f, _ in windows[str(clip)]) == 20 and len(windows[str(clip)]) == 2  # the file camera ran
    assert sum(f for f, _ in windows[absent]) == 0 and sum(o for _, o in windows[absent]) > 1.0  # an outage
    assert time.monotonic() - t0 < 20
    lines = result.output.splitlines()
    assert any(line.startswith("door: ") and "retrying until it is there" in line for line in lines)

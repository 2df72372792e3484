"""``fer-edge run`` end to end: a real-face video through YuNet, a SIGKILLed run, and bad input."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_camera_helpers import YUNET_NAME, detectable_faces, face_video, tiny_fer_model
from typer.testing import CliRunner

from fer_edge.cli import app

REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("cv2")


@pytest.fixture
def yunet(shared_data: Path) -> Path:
    path = shared_data / YUNET_NAME
    if not path.exists():
        pytest.skip(f"{YUNET_NAME} not present in {shared_data}")
    return path


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_run_finds_faces_keeps_ids_and_writes_only_the_log(
    tmp_path: Path, real_slice_csv: Path, yunet: Path
) -> None:
    faces = detectable_faces(real_slice_csv, 3, yunet)
    media = tmp_path / "media"
    media.mkdir()
    video = face_video(media / "store.avi", faces, n_frames=40, fps=10.0)
    model = tiny_fer_model(media / "tiny.onnx")
    out = tmp_path / "out"
    out.mkdir()
    before = files_under(tmp_path)
    code, output = cli(
        "run",
        "--source",
        str(video),
        "--model",
        str(model),
        "--detector-model",
        str(yunet),
        "--log",
        str(out / "mood.db"),
        "--window",
        "1",
        "--stats-every",
        "0.5",
    )
    assert code == 0, output
    assert "fps" in output and "detect" in output and "classify" in output
    # Nothing visual written: the only new files are the database (and its WAL side files).
    new = files_under(tmp_path) - before
    assert new <= {"out/mood.db", "out/mood.db-wal", "out/mood.db-shm"}, new
    assert not [p for p in tmp_path.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".mp4")]

    db = sqlite3.connect(out / "mood.db")
    windows = db.execute(
        "SELECT id, frames, faces, positive, neutral, negative, partial FROM windows ORDER BY id"
    ).fetchall()
    assert [w[1] for w in windows] == [10, 10, 10, 10]  # 40 frames at 10 fps, 1 s windows
    for wid, _, faces_n, pos, neu, neg, _ in windows:
        counted = db.execute("SELECT SUM(count) FROM window_counts WHERE window_id=?", (wid,)).fetchone()[0]
        assert counted == faces_n == pos + neu + neg
        assert faces_n == 3  # three faces, each counted once per window
    tracks = db.execute("SELECT track_id, frames FROM tracks").fetchall()
    assert sorted(t[0] for t in tracks) == [1, 2, 3]  # stable ids: no track was lost and restarted
    assert all(t[1] >= 38 for t in tracks)


def test_sigkill_keeps_every_completed_window(tmp_path: Path, real_slice_csv: Path, yunet: Path) -> None:
    faces = detectable_faces(real_slice_csv, 2, yunet, side=100)
    video = face_video(tmp_path / "long.avi", faces, n_frames=1000, width=320, height=240, side=100, fps=10.0)
    model = tiny_fer_model(tmp_path / "tiny.onnx")
    db_path = tmp_path / "mood.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fer_edge",
            "run",
            "--source",
            str(video),
            "--model",
            str(model),
            "--detector-model",
            str(yunet),
            "--log",
            str(db_path),
            "--window",
            "1",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    completed = 0
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("window "):
            completed += 1
            if completed == 3:
                break
        assert time.monotonic() < deadline
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert completed == 3

    db = sqlite3.connect(db_path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    windows = db.execute("SELECT id, frames, faces FROM windows ORDER BY id").fetchall()
    assert len(windows) >= completed  # every window announced before the kill is there
    assert len(windows) < 40  # and the kill happened mid-video
    for wid, frames, faces_n in windows[:completed]:
        assert frames == 10
        assert (
            db.execute("SELECT SUM(count) FROM window_counts WHERE window_id=?", (wid,)).fetchone()[0]
            == faces_n
        )
    assert db.execute("SELECT ended_at FROM runs").fetchone()[0] is None  # the run never closed


def test_sigterm_flushes_the_window_and_closes_the_log(
    tmp_path: Path, real_slice_csv: Path, yunet: Path
) -> None:
    faces = detectable_faces(real_slice_csv, 1, yunet, side=100)
    video = face_video(tmp_path / "long.avi", faces, n_frames=1000, width=320, height=240, side=100, fps=10.0)
    db_path = tmp_path / "mood.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fer_edge",
            "run",
            "--source",
            str(video),
            "--model",
            str(tiny_fer_model(tmp_path / "tiny.onnx")),
            "--detector-model",
            str(yunet),
            "--log",
            str(db_path),
            "--window",
            "100",
            "--stats-every",
            "0.2",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if " fps " in line:  # the loop is running
            break
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, rest
    db = sqlite3.connect(db_path)
    row = db.execute("SELECT partial, faces, frames FROM windows").fetchone()
    assert row[0] == 1 and row[1] == 1 and 0 < row[2] < 1000
    assert db.execute("SELECT ended_at FROM runs").fetchone()[0] is not None
    assert not Path(str(db_path) + "-wal").exists() or Path(str(db_path) + "-wal").stat().st_size == 0


# --- bad input: one line, non-zero exit ---------------------------------------------------------


def assert_one_line_error(code: int, output: str, *needles: str) -> None:
    assert code == 2, output
    lines = [line for line in output.strip().splitlines() if "WARN" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    for needle in needles:
        assert needle in lines[0], output


def test_unopenable_source(tmp_path: Path, yunet: Path) -> None:
    fake = tmp_path / "cam.avi"
    fake.write_text("not a video")
    model = tiny_fer_model(tmp_path / "tiny.onnx")
    code, out = cli(
        "run",
        "--source",
        str(fake),
        "--model",
        str(model),
        "--log",
        str(tmp_path / "m.db"),
        "--detector-model",
        str(yunet),
    )
    assert_one_line_error(code, out, "cannot open video source", "cam.avi")
    code, out = cli("run", "--source", str(tmp_path / "nope.mp4"), "--model", str(model))
    assert_one_line_error(code, out, "not found")
    assert not (tmp_path / "m.db").exists()


def test_model_that_is_not_a_fer_edge_model(tmp_path: Path, yunet: Path) -> None:
    video = tmp_path / "v.avi"
    video.write_text("x")
    code, out = cli("run", "--source", str(video), "--model", str(yunet), "--log", str(tmp_path / "m.db"))
    assert_one_line_error(code, out, "not a fer-edge model")


def test_detector_that_is_not_yunet(tmp_path: Path) -> None:
    video = tmp_path / "v.avi"
    video.write_text("x")
    model = tiny_fer_model(tmp_path / "tiny.onnx")
    code, out = cli("run", "--source", str(video), "--model", str(model), "--detector-model", str(model))
    assert_one_line_error(code, out, "not a YuNet face detector")


def test_unwritable_log_path(tmp_path: Path, real_slice_csv: Path, yunet: Path) -> None:
    faces = detectable_faces(real_slice_csv, 1, yunet, side=100)
    video = face_video(tmp_path / "v.avi", faces, n_frames=3, width=320, height=240, side=100)
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    code, out = cli(
        "run",
        "--source",
        str(video),
        "--model",
        str(tiny_fer_model(tmp_path / "t.onnx")),
        "--detector-model",
        str(yunet),
        "--log",
        str(blocker / "mood.db"),
    )
    # refused by the output check before the camera opens
    assert_one_line_error(code, out, "blocker/mood.db", "--log", "is a file, not a folder")


def test_save_video_only_when_asked(tmp_path: Path, real_slice_csv: Path, yunet: Path) -> None:
    import cv2

    faces = detectable_faces(real_slice_csv, 1, yunet, side=100)
    video = face_video(tmp_path / "in.avi", faces, n_frames=8, width=320, height=240, side=100)
    target = tmp_path / "saved" / "annotated.avi"
    code, out = cli(
        "run",
        "--source",
        str(video),
        "--model",
        str(tiny_fer_model(tmp_path / "t.onnx")),
        "--detector-model",
        str(yunet),
        "--log",
        str(tmp_path / "m.db"),
        "--save-video",
        str(target),
    )
    assert code == 0, out
    cap = cv2.VideoCapture(str(target))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    cap.release()
    assert sorted(p.name for p in target.parent.iterdir()) == ["annotated.avi"]  # no partial file left

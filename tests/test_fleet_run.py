"""``fer-edge run --sync``: the camera never waits on the server and never loses a window to it."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from fleet_helpers import acked, assert_exactly_once, popen
from pg_fixture import PASSWORD, PgServer
from test_camera_helpers import tiny_fer_model
from typer.testing import CliRunner

from fer_edge.cli import app

pytest.importorskip("cv2")


def noise_video(path: Path, n_frames: int, fps: float = 10.0) -> Path:
    """Frames without faces: every window is logged (0 faces), which is all syncing needs."""
    from scenes import write_video

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, size=(120, 160, 3), dtype=np.uint8) for _ in range(n_frames)]
    return write_video(path, frames, fps=fps)


@pytest.fixture
def media(tmp_path: Path) -> tuple[Path, Path]:
    return noise_video(tmp_path / "store.avi", 60), tiny_fer_model(tmp_path / "tiny.onnx")


def run_args(media: tuple[Path, Path], log: Path, *extra: str) -> list[str]:
    video, model = media
    return ["run", "--source", str(video), "--model", str(model), "--log", str(log), "--window", "1", *extra]


def windows_in(log: Path) -> int:
    db = sqlite3.connect(log)
    try:
        return int(db.execute("SELECT count(*) FROM windows").fetchone()[0])
    finally:
        db.close()


def test_run_sync_sends_every_window(tmp_path: Path, media: tuple[Path, Path], pg: PgServer, pg_db: str) -> None:
    log, url = tmp_path / "mood.db", pg.url(pg_db)
    result = CliRunner().invoke(app, run_args(media, log, "--sync", url, "--store", "berlin-01"))
    assert result.exit_code == 0, result.output
    assert windows_in(log) == 6
    assert "every window is on the server" in result.output
    assert PASSWORD not in result.output and "fer:***@" in result.output
    assert_exactly_once(url, log)


def test_wrong_password_keeps_the_camera_running_and_its_windows(
    tmp_path: Path, media: tuple[Path, Path], pg: PgServer, pg_db: str
) -> None:
    log = tmp_path / "mood.db"
    bad = pg.url(pg_db, password="wrong-pw")
    result = CliRunner().invoke(app, run_args(media, log, "--sync", bad, "--store", "s1"))
    assert result.exit_code == 0, result.output
    assert windows_in(log) == 6  # the camera ran to the end and logged everything
    sync_lines = [line for line in result.output.splitlines() if "password authentication failed" in line]
    assert len(sync_lines) == 1, result.output  # said once, not once per retry
    assert "wrong-pw" not in result.output and b"wrong-pw" not in log.read_bytes()
    assert "6 windows wait" in result.output


def test_a_run_while_the_server_is_down_then_up(
    tmp_path: Path, media: tuple[Path, Path], pg: PgServer, pg_db: str
) -> None:
    log, url = tmp_path / "mood.db", pg.url(pg_db)
    pg.stop()
    try:
        result = CliRunner().invoke(app, run_args(media, log, "--sync", url, "--store", "s1"))
    finally:
        pg.start()
    assert result.exit_code == 0, result.output
    assert "cannot connect" in result.output and "6 windows wait" in result.output
    # The next run (same log, same device) sends the waiting windows with its own.
    result = CliRunner().invoke(app, run_args(media, log, "--sync", url))
    assert result.exit_code == 0, result.output
    assert windows_in(log) == 12
    assert_exactly_once(url, log)


def test_sigkill_of_run_mid_sync(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    video = noise_video(tmp_path / "long.avi", 3000, fps=100.0)
    model = tiny_fer_model(tmp_path / "tiny.onnx")
    log, url = tmp_path / "mood.db", pg.url(pg_db)
    # --realtime: 30 s at the file's 100 fps, however fast the machine, so the kill lands mid-run
    # (played as fast as it goes, a quick machine could finish before the first acknowledgement)
    args = ["run", "--source", str(video), "--model", str(model), "--log", str(log), "--window", "0.1", "--realtime"]
    proc = popen(*args, "--sync", url, "--store", "s1")
    deadline = time.monotonic() + 90
    while acked(log) == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    written = windows_in(log)
    assert acked(log) > 0 and written < 300  # killed mid-run, with some windows acknowledged
    result = CliRunner().invoke(app, ["sync", str(log), "--to", url])
    assert result.exit_code == 0, result.output
    assert_exactly_once(url, log)


def test_sync_without_a_store_label_is_refused_before_the_camera_starts(
    tmp_path: Path, media: tuple[Path, Path]
) -> None:
    pytest.importorskip("psycopg", reason="the fleet extra (psycopg) is not installed")
    log = tmp_path / "mood.db"
    result = CliRunner().invoke(app, run_args(media, log, "--sync", "postgresql://fer:pw@127.0.0.1:1/x"))
    assert result.exit_code == 2 and "--store" in result.output, result.output
    assert not log.exists()
    result = CliRunner().invoke(app, run_args(media, log, "--sync", "mysql://fer:pw@x/y", "--store", "s1"))
    assert result.exit_code == 2 and "not a PostgreSQL URL" in result.output and "pw@" not in result.output


def test_without_psycopg_sync_says_what_to_install(
    tmp_path: Path, media: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the fleet extra were not installed
    log = tmp_path / "mood.db"
    result = CliRunner().invoke(app, run_args(media, log, "--sync", "postgresql://x/y", "--store", "s1"))
    assert result.exit_code == 2 and "fer-edge[fleet]" in result.output, result.output
    result = CliRunner().invoke(app, run_args(media, log))  # and without --sync, a run as before
    assert result.exit_code == 0, result.output
    assert windows_in(log) == 6

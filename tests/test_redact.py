"""Secrets never shown or stored: one redaction function for camera URLs and database URLs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fer_edge.redact import redact


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("rtsp://admin:hunter2@cam.local/stream", "rtsp://admin:***@cam.local/stream"),
        ("rtsp://cam/live?user=a&password=hunter2&ch=1", "rtsp://cam/live?user=a&password=***&ch=1"),
        ("http://cam/s?passwd=hunter2", "http://cam/s?passwd=***"),
        ("http://cam/s?PWD=hunter2;channel=2", "http://cam/s?PWD=***;channel=2"),
        ("https://cam/s?token=hunter2&api_key=hunter2&auth=hunter2", "https://cam/s?token=***&api_key=***&auth=***"),
        ("rtsp://cam/s?key=hunter2#sig=hunter2", "rtsp://cam/s?key=***#sig=***"),
        # a password holding unencoded '@' and '/' is still masked up to the host
        ("rtsp://admin:p@ss/w@rd@cam:554/s", "rtsp://admin:***@cam:554/s"),
        ("rtsp://hunter2@cam/s", "rtsp://***@cam/s"),
        (
            "postgresql://crm:hunter2@db:5432/stores?sslmode=require&sslpassword=hunter2",
            "postgresql://crm:***@db:5432/stores?sslmode=require&sslpassword=***",
        ),
        ("host=db user=crm password='hunter 2' dbname=x", "host=db user=crm password=*** dbname=x"),
        ("rtsp://cam.local:554/stream?channel=1&subtype=0", "rtsp://cam.local:554/stream?channel=1&subtype=0"),
        ("/dev/video0", "/dev/video0"),
        ("csi://0", "csi://0"),
    ],
)
def test_redact(given: str, shown: str) -> None:
    assert redact(given) == shown
    assert "hunter" not in redact(given)


def test_secrets_in_a_camera_url_are_neither_printed_nor_stored(tmp_path: Path) -> None:
    """Through the real command: a stream on 127.0.0.1 that refuses, so the run ends early with an error
    that shows the source, and a run that never starts must not have stored it either."""
    pytest.importorskip("cv2")
    from test_camera_helpers import tiny_fer_model
    from typer.testing import CliRunner

    from fer_edge.cli import app

    url = "http://admin:hunter2@127.0.0.1:9/live.mjpg?password=hunter3&token=hunter4&channel=1"
    db = tmp_path / "mood.db"
    result = CliRunner().invoke(
        app,
        ["run", "--source", url, "--model", str(tiny_fer_model(tmp_path / "t.onnx")), "--log", str(db),
         "--fail-fast"],
    )
    assert result.exit_code == 2, result.output
    assert "hunter" not in result.output
    assert "http://admin:***@127.0.0.1:9/live.mjpg?password=***&token=***&channel=1" in result.output
    if db.exists():
        rows = sqlite3.connect(db).execute("SELECT source FROM runs").fetchall()
        assert all("hunter" not in (r[0] or "") for r in rows)


def test_the_source_can_come_from_the_environment_and_is_masked_there_too(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    from test_camera_helpers import tiny_fer_model
    from typer.testing import CliRunner

    from fer_edge.cli import app

    url = "rtsp://admin:hunter2@127.0.0.1:9/live?token=hunter3"
    result = CliRunner().invoke(
        app,
        ["run", "--model", str(tiny_fer_model(tmp_path / "t.onnx")), "--log", str(tmp_path / "m.db"), "--fail-fast"],
        env={"FER_EDGE_SOURCE": url},
    )
    assert result.exit_code == 2, result.output
    assert "rtsp://admin:***@127.0.0.1:9/live?token=***: cannot open video source" in result.output
    assert "hunter" not in result.output

"""Secrets never shown or stored: one redaction function for camera URLs and database URLs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fer_edge.core.redact import redact


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
        ("host=db pw=hunter2 dbname=x", "host=db pw=*** dbname=x"),
        ("rtsp://cam.local:554/stream?channel=1&subtype=0", "rtsp://cam.local:554/stream?channel=1&subtype=0"),
        ("/dev/video0", "/dev/video0"),
        ("csi://0", "csi://0"),
        # any scheme, even one fer-edge does not know
        ("rtmps://user:hunter2@live.example.com/app", "rtmps://user:***@live.example.com/app"),
        ("srt://cam:9000?passphrase=hunter2&latency=200", "srt://cam:9000?passphrase=***&latency=200"),
        ("foo+bar://hunter2@cam/s", "foo+bar://***@cam/s"),
        # RTMP's stream key is the last path segment
        ("rtmp://live.example.com/app/hunter2", "rtmp://live.example.com/app/***"),
        # passwords holding an unencoded '#' or '?'
        ("rtsp://admin:hun#ter2@cam/s", "rtsp://admin:***@cam/s"),
        ("rtsp://admin:hun?ter2@cam/s?ch=1", "rtsp://admin:***@cam/s?ch=1"),
        ("rtsp://admin:a#b?hunter2@cam:554/s#x", "rtsp://admin:***@cam:554/s#x"),
        ("rtsp://u:hunter2@[fe80::1]:554/s", "rtsp://u:***@[fe80::1]:554/s"),
        # short and vendor-specific parameter names
        ("http://cam/s?usr=admin&pw=hunter2", "http://cam/s?usr=admin&pw=***"),
        ("http://cam/s?psw=hunter2&pin=hunter2", "http://cam/s?psw=***&pin=***"),
        ("http://cam/s?sig=hunter2&X-Amz-Signature=hunter2", "http://cam/s?sig=***&X-Amz-Signature=***"),
        ("http://cam/s?k=1&passphrase=hunter2", "http://cam/s?k=1&passphrase=***"),
        ("http://cam/s?pass%77ord=hunter2", "http://cam/s?pass%77ord=***"),
        # a second '?' in the query
        ("rtsp://cam/s?ch=1?password=hunter2", "rtsp://cam/s?ch=1?password=***"),
        ("rtsp://cam/s??token=hunter2", "rtsp://cam/s??token=***"),
        # an address in the query, or an '@' in the path after a user, is not a password
        ("rtsp://hunter2@cam:554/live@main", "rtsp://***@cam:554/live@main"),
        ("http://cam/s?mail=a@b.example", "http://cam/s?mail=a@b.example"),
        # unparsable: masked whole
        ("rt sp://admin:hunter2@cam/s", "***"),
        ("://admin:hunter2@cam", "***"),
        ("rtsp://admin:hunter2@cam/s\x1b[2J", "***"),
        ("admin:hunter2@cam", "***@cam"),
        ("/videos/me@home.mp4", "/videos/me@home.mp4"),
    ],
)
def test_redact(given: str, shown: str) -> None:
    assert redact(given) == shown
    assert "hunter" not in redact(given)


def test_printable_escapes_control_characters_and_ansi() -> None:
    from fer_edge.core.redact import printable

    hostile = "happy\x1b[2J\x1b]0;owned\x07\r\x9b"
    shown = printable(hostile)
    assert shown == "happy\\x1b[2J\\x1b]0;owned\\x07\\r\\x9b"
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert printable("neutral, happiness") == "neutral, happiness"


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

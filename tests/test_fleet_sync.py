"""``fer-edge sync`` against a real PostgreSQL: exactly once through kills, restarts and outages."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from fleet_helpers import (
    acked,
    assert_exactly_once,
    central_windows,
    device_id,
    make_log,
    popen,
)
from pg_fixture import PASSWORD, ROLE, PgServer
from typer.testing import CliRunner

from fer_edge.cli import app
from fer_edge.fleet.forward import sync_log
from fer_edge.fleet.schema import SCHEMA_VERSION
from fer_edge.model.labels import FERPLUS_LABELS


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def assert_one_line_error(code: int, output: str, *needles: str) -> str:
    assert code == 2, output
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    for needle in needles:
        assert needle in lines[0], output
    return lines[0]


def test_every_window_once_and_a_second_sync_sends_nothing(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    log = make_log(tmp_path / "mood.db", 25, runs=2)
    url = pg.url(pg_db)
    code, out = cli("sync", str(log), "--to", url, "--store", "berlin-01", "--batch", "7")
    assert code == 0, out
    assert "50 windows sent (50 new" in out and "0 waiting" in out
    assert PASSWORD not in out and "fer:***@" in out
    assert_exactly_once(url, log)
    code, out = cli("sync", str(log), "--to", url)
    assert code == 0 and "0 windows sent" in out, out
    assert len(central_windows(url)) == 50
    # The device forgets what was acknowledged (a restored backup): everything is resent, nothing doubles.
    db = sqlite3.connect(log)
    with db:
        db.execute("DELETE FROM fleet_acked")
    db.close()
    code, out = cli("sync", str(log), "--to", url, "--batch", "7")
    assert code == 0 and "50 windows sent (0 new to the server, 50 already there)" in out, out
    assert_exactly_once(url, log)


def test_a_new_batch_then_a_resent_one_in_one_session(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    """The first batch goes the direct COPY way, the second (already on the server) the fallback way."""
    log = make_log(tmp_path / "mood.db", 10)
    url = pg.url(pg_db)
    assert cli("sync", str(log), "--to", url, "--store", "s1")[0] == 0
    pg.admin("DELETE FROM fer_edge.windows WHERE window_id <= 5", db=pg_db)
    db = sqlite3.connect(log)
    with db:
        db.execute("DELETE FROM fleet_acked")
    db.close()
    code, out = cli("sync", str(log), "--to", url, "--batch", "5")
    assert code == 0 and "10 windows sent (5 new to the server, 5 already there)" in out, out
    assert_exactly_once(url, log)


def test_emotion_columns_keep_both_label_sets_apart(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    import psycopg

    fer = make_log(tmp_path / "fer.db", 3)
    plus = make_log(tmp_path / "plus.db", 3, labels=FERPLUS_LABELS, seed=1)
    url = pg.url(pg_db)
    for log in (fer, plus):
        assert cli("sync", str(log), "--to", url, "--store", "s1")[0] == 0
    db = sqlite3.connect(fer)
    happy = [r[0] for r in db.execute("SELECT count FROM window_counts WHERE emotion='happy' ORDER BY window_id")]
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT device_id::text, happiness, contempt, other_counts, faces, "
            "anger + coalesce(contempt, 0) + disgust + fear + happiness + neutral + sadness + surprise "
            "FROM fer_edge.windows ORDER BY device_id, window_id"
        ).fetchall()
    fer_rows = [r for r in rows if r[0] == device_id(fer)]
    plus_rows = [r for r in rows if r[0] == device_id(plus)]
    assert [r[1] for r in fer_rows] == happy  # FER2013's "happy" lands in happiness
    assert all(r[2] is None for r in fer_rows)  # FER2013 has no contempt class: NULL, not 0
    assert all(r[2] is not None for r in plus_rows)
    assert all(r[3] is None for r in rows)  # every class of both label sets has its column
    assert all(r[4] == r[5] for r in rows)  # the columns add up to the faces


def test_a_model_with_other_classes_keeps_them(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    import psycopg

    log = make_log(tmp_path / "custom.db", 4, labels=("happy", "bored", "neutral"))
    url = pg.url(pg_db)
    assert cli("sync", str(log), "--to", url, "--store", "s1")[0] == 0
    db = sqlite3.connect(log)
    bored = [r[0] for r in db.execute("SELECT count FROM window_counts WHERE emotion='bored' ORDER BY window_id")]
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT other_counts, anger, happiness FROM fer_edge.windows ORDER BY window_id").fetchall()
    assert [r[0] for r in rows] == [{"bored": n} for n in bored]
    assert all(r[1] is None and r[2] is not None for r in rows)


def test_server_down_then_up(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    log = make_log(tmp_path / "mood.db", 40)
    url = pg.url(pg_db)
    pg.stop()
    try:
        code, out = cli("sync", str(log), "--to", url, "--store", "s1", "--retry-for", "0")
        line = assert_one_line_error(code, out, "cannot connect", "40 windows wait")
        assert PASSWORD not in line
        # A sync that starts while the server is down finishes once it is back.
        results: list[object] = []
        worker = threading.Thread(target=lambda: results.append(sync_log(log, url, retry_for=60, batch_size=9)))
        worker.start()
        time.sleep(2.0)
    finally:
        pg.start()
    worker.join(90)
    assert results and results[0].waiting == 0  # type: ignore[attr-defined]
    assert_exactly_once(url, log)


def test_sigkill_of_sync_mid_batch_loses_and_doubles_nothing(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    log = make_log(tmp_path / "mood.db", 6000)
    url = pg.url(pg_db)
    marks_after_kills = []
    for _ in range(3):
        before = acked(log)
        proc = popen("sync", str(log), "--to", url, "--store", "s1", "--batch", "100")
        deadline = time.monotonic() + 60
        while acked(log) <= before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.03)  # land somewhere inside a later batch
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
            marks_after_kills.append(acked(log))
        else:
            proc.communicate(timeout=30)
    # Killed mid-way at least once: some windows acknowledged, some not.
    assert any(0 < mark < 6000 for mark in marks_after_kills), marks_after_kills
    code, out = cli("sync", str(log), "--to", url)
    assert code == 0, out
    assert_exactly_once(url, log)


def test_sigterm_stops_sync_after_the_batch_in_flight(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    log = make_log(tmp_path / "mood.db", 6000)
    url = pg.url(pg_db)
    proc = popen("sync", str(log), "--to", url, "--store", "s1", "--batch", "200")
    deadline = time.monotonic() + 60
    while acked(log) == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, (out, err)
    assert "stopped by a signal" in err and "Traceback" not in err
    mark = acked(log)
    assert 0 < mark < 6000
    # Everything acknowledged is on the server; nothing beyond what was sent.
    on_server = {r[2] for r in central_windows(url)}
    assert set(range(1, mark + 1)) <= on_server
    code, out = cli("sync", str(log), "--to", url)
    assert code == 0, out
    assert_exactly_once(url, log)


def test_two_syncs_at_once(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    log = make_log(tmp_path / "mood.db", 3000)
    url = pg.url(pg_db)
    procs = [popen("sync", str(log), "--to", url, "--store", "s1", "--batch", "100") for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert_exactly_once(url, log)


def test_server_restarted_during_a_sync(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    log = make_log(tmp_path / "mood.db", 6000)
    url = pg.url(pg_db)
    proc = popen("sync", str(log), "--to", url, "--store", "s1", "--batch", "100", "--retry-for", "60")
    deadline = time.monotonic() + 60
    while acked(log) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    pg.stop("fast")  # drops the connection in the middle of the sync
    time.sleep(1.0)
    pg.start()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "retrying" in err and "0 waiting" in out
    assert_exactly_once(url, log)


def test_two_devices_into_one_database(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    url = pg.url(pg_db)
    a = make_log(tmp_path / "a.db", 20)
    b = make_log(tmp_path / "b.db", 30, seed=2)  # same run and window ids as a: only the device differs
    assert cli("sync", str(a), "--to", url, "--store", "berlin-01")[0] == 0
    assert cli("sync", str(b), "--to", url, "--store", "paris-02")[0] == 0
    assert device_id(a) != device_id(b)
    assert_exactly_once(url, a)
    assert_exactly_once(url, b)
    assert len(central_windows(url)) == 50


def test_a_copied_log_is_refused_in_one_line(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    url = pg.url(pg_db)
    a = make_log(tmp_path / "a.db", 5)
    assert cli("sync", str(a), "--to", url, "--store", "berlin-01")[0] == 0
    b = tmp_path / "b.db"
    shutil.copy(a, b)
    make_log(a, 5, start=2_000_000_000.0)  # both copies go on recording, each its own run 2
    make_log(b, 5, start=2_000_000_100.0)
    assert cli("sync", str(a), "--to", url)[0] == 0
    code, out = cli("sync", str(b), "--to", url)
    assert_one_line_error(code, out, "already", "copied")
    assert_exactly_once(url, a)  # and a's windows are untouched


def test_wrong_password_is_one_line_without_the_password(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    log = make_log(tmp_path / "mood.db", 3)
    code, out = cli("sync", str(log), "--to", pg.url(pg_db, password="not-it"), "--store", "s1")
    line = assert_one_line_error(code, out, "password authentication failed")
    assert "not-it" not in line and "***" in line
    assert b"not-it" not in log.read_bytes()
    assert acked(log) == 0


def test_tls_settings_reach_libpq(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    """The test server has no TLS: sslmode=require must be refused by libpq, proving the option got there."""
    log = make_log(tmp_path / "mood.db", 2)
    code, out = cli("sync", str(log), "--to", pg.url(pg_db) + "&sslmode=require", "--store", "s1")
    assert_one_line_error(code, out, "SSL")
    code, out = cli("sync", str(log), "--to", pg.url(pg_db) + "&sslmode=disable", "--store", "s1")
    assert code == 0, out


def test_password_from_pgpassword_and_never_in_the_log(
    tmp_path: Path, pg: PgServer, pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = make_log(tmp_path / "mood.db", 3)
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    code, out = cli("sync", str(log), "--to", pg.url(pg_db, password=None), "--store", "s1")
    assert code == 0, out
    for f in tmp_path.iterdir():
        assert PASSWORD.encode() not in f.read_bytes(), f
    assert len(central_windows(pg.url(pg_db))) == 3


def test_unreachable_and_malformed_targets(tmp_path: Path) -> None:
    pytest.importorskip("psycopg", reason="the fleet extra (psycopg) is not installed")
    log = make_log(tmp_path / "mood.db", 2)
    code, out = cli("sync", str(log), "--to", "postgresql://fer:pw@127.0.0.1:1/x", "--retry-for", "0")
    assert_one_line_error(code, out, "cannot connect", "127.0.0.1")
    code, out = cli("sync", str(log), "--to", "mysql://x/y")
    assert_one_line_error(code, out, "not a PostgreSQL URL")
    code, out = cli("sync", str(tmp_path / "missing.db"), "--to", "postgresql://x/y")
    assert_one_line_error(code, out, "missing.db")
    code, out = cli("sync", str(log), "--to", "postgresql://x/y?bogus=1")
    assert_one_line_error(code, out, "bogus")
    code, out = cli("sync", str(log))
    assert_one_line_error(code, out, "--to")


def test_a_foreign_fer_edge_schema_is_refused(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    pg.admin(f"CREATE SCHEMA fer_edge AUTHORIZATION {ROLE}; CREATE TABLE fer_edge.orders (id int)", db=pg_db)
    log = make_log(tmp_path / "mood.db", 2)
    code, out = cli("sync", str(log), "--to", pg.url(pg_db), "--store", "s1")
    assert_one_line_error(code, out, "did not create", "orders")
    code, out = cli("sync", "--migrate-only", "--to", pg.url(pg_db))
    assert_one_line_error(code, out, "did not create")


def test_a_newer_schema_is_refused(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    url = pg.url(pg_db)
    assert cli("sync", "--migrate-only", "--to", url)[0] == 0
    pg.admin(
        "INSERT INTO fer_edge.schema_version (version, application, fer_edge_version) VALUES (99, 'fer-edge', '9')",
        db=pg_db,
    )
    log = make_log(tmp_path / "mood.db", 2)
    code, out = cli("sync", str(log), "--to", url, "--store", "s1")
    assert_one_line_error(code, out, "version 99", "upgrade fer-edge")
    assert acked(log) == 0


def test_least_privilege_role(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    """The grants of docs/fleet.md are enough to sync, and not enough to create the schema."""
    pg.admin("DROP ROLE IF EXISTS cam; CREATE ROLE cam LOGIN PASSWORD 'cam-pw'")
    cam = pg.url(pg_db, user="cam", password="cam-pw")
    log = make_log(tmp_path / "mood.db", 12)
    code, out = cli("sync", str(log), "--to", cam, "--store", "s1")
    assert_one_line_error(code, out, "--migrate-only")
    code, out = cli("sync", "--migrate-only", "--to", pg.url(pg_db))
    assert code == 0 and f"version {SCHEMA_VERSION}" in out, out
    docs = (Path(__file__).resolve().parents[1] / "docs" / "fleet.md").read_text()
    grants = docs.split("<!-- grants -->")[1].split("```sql")[1].split("```")[0]
    pg.admin(grants.replace("fer_camera", "cam"), db=pg_db)
    code, out = cli("sync", str(log), "--to", cam, "--batch", "5")
    assert code == 0, out
    assert_exactly_once(pg.url(pg_db), log)
    import psycopg

    with psycopg.connect(cam) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM fer_edge.windows")

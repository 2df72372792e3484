"""Against a real PostgreSQL: a damaged window never blocks the chain, and "N windows wait" counts what waits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fleet_helpers import acked, central_windows, device_id, make_log
from pg_fixture import PgServer
from test_camera_helpers import tiny_fer_model
from test_fleet_run import noise_video, run_args
from typer.testing import CliRunner

from fer_edge.cli import app
from fer_edge.fleet.forward import sync_log


def tamper(log: Path, *statements: str) -> None:
    conn = sqlite3.connect(log)
    with conn:
        for sql in statements:
            conn.execute(sql)
    conn.close()


POISON = (
    "UPDATE windows SET faces = 1099511627776 WHERE id = 3",  # beyond the server's integer
    "UPDATE windows SET start_ts = 1e20 WHERE id = 5",  # no date: NULL on the server
    "UPDATE window_counts SET count = 'x' WHERE window_id = 7 AND emotion = 'happy'",  # not a number
    "UPDATE windows SET satisfaction = 7.5 WHERE id = 8",  # outside [-1, 1]
)


def test_poison_windows_are_set_aside_by_id_and_the_rest_is_sent(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    log, url = make_log(tmp_path / "mood.db", 12), pg.url(pg_db)
    tamper(log, *POISON)
    result = CliRunner().invoke(app, ["sync", str(log), "--to", url, "--store", "s1", "--batch", "4"])
    assert result.exit_code == 0, result.output
    assert "8 windows sent" in result.output and "0 waiting" in result.output, result.output
    lines = [line for line in result.output.splitlines() if "set aside" in line]
    assert len(lines) == 1 and "4 damaged windows" in lines[0], result.output
    for wid in ("3 (faces", "5 (its start", "7 (the count of happiness", "8 (satisfaction"):
        assert wid in lines[0], lines[0]
    central = sorted(r[2] for r in central_windows(url, device_id(log)))
    assert central == [1, 2, 4, 6, 9, 10, 11, 12]
    assert acked(log) == 12
    # The windows stay in the log; later windows are not blocked behind them.
    assert sqlite3.connect(log).execute("SELECT count(*) FROM windows").fetchone() == (12,)
    make_log(log, 3, start=1_800_000_000.0)
    again = sync_log(log, url)
    assert again.sent == 3 and again.waiting == 0 and not again.set_aside


def test_run_sync_counts_only_the_windows_that_wait(tmp_path: Path, pg: PgServer, pg_db: str) -> None:
    pytest.importorskip("cv2")
    media = noise_video(tmp_path / "store.avi", 60), tiny_fer_model(tmp_path / "tiny.onnx")
    log, url = make_log(tmp_path / "mood.db", 10), pg.url(pg_db)
    assert sync_log(log, url, store="s1").waiting == 0
    # A run while the server refuses: only its own 6 windows wait, not the 10 sent before; and the
    # count is taken after the run's last window, not before it.
    bad = pg.url(pg_db, password="wrong-pw")
    result = CliRunner().invoke(app, run_args(media, log, "--sync", bad))
    assert result.exit_code == 0, result.output
    assert "sync: 6 windows wait in the log" in result.output, result.output


def test_a_window_the_checks_miss_is_found_by_the_servers_refusal_and_set_aside(
    tmp_path: Path, pg: PgServer, pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fer_edge.fleet import outbox

    monkeypatch.setattr(outbox, "window_problem", lambda w: None)  # as if a check were missing
    log, url = make_log(tmp_path / "mood.db", 12), pg.url(pg_db)
    tamper(log, *POISON)
    result = sync_log(log, url, store="s1", batch_size=5)
    refused = dict(result.set_aside)
    assert sorted(refused) == [3, 5, 7], result.set_aside  # 8's satisfaction 7.5 the server takes
    assert "out of range for type integer" in refused[3] and "null value" in refused[5]
    assert result.sent == 9 and result.waiting == 0
    central = sorted(r[2] for r in central_windows(url, device_id(log)))
    assert central == [1, 2, 4, 6, 8, 9, 10, 11, 12]

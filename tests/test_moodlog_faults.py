"""The mood log under real faults: a full disk, a lock held by another process, odd file names,
a copy on read-only media, an older log. Nothing lost, nothing written twice, never corrupted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from fault_helpers import LockHolder, fill_disk, remount_read_only, tmpfs

from fer_edge.camera.tracking import IouTracker
from fer_edge.core.errors import FerEdgeError
from fer_edge.model.labels import FER2013_LABELS
from fer_edge.moodlog.buffered import BufferedLog
from fer_edge.moodlog.reader import load_windows
from fer_edge.moodlog.windows import summarize_window
from fer_edge.moodlog.writer import MoodLog

T0 = 1_780_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def closed_window(i: int, track_id_base: int = 0) -> tuple:
    """Window ``i`` (60 s from T0 + 60 i) in which one happy track was seen."""
    tracker = IouTracker(min_hits=1)
    tracker._next_id = track_id_base + i + 1  # type: ignore[attr-defined]
    tracker.update(np.array([[0.0, 0, 50, 50]]), np.eye(7)[3:4], T0 + 60 * i + 1)
    counted = tracker.close_window()
    return summarize_window(FER2013_LABELS, counted, T0 + 60 * i, T0 + 60 * (i + 1), frames=10), counted


def windows_in(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return conn.execute("SELECT run_id, start_ts, faces FROM windows ORDER BY id").fetchall()
    finally:
        conn.close()


def test_full_disk_holds_windows_and_writes_each_once_when_space_returns(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "2m") as disk:
        db, lines, clock = disk / "mood.db", [], Clock()
        log = BufferedLog(MoodLog(db, FER2013_LABELS), echo=lines.append, backoff_s=1.0, clock=clock)
        assert log.write_window(*closed_window(0))
        filler = fill_disk(disk)
        held = 0
        for i in range(1, 40):  # each window carries a new track: the log grows until the disk is full
            clock.now += 0.5
            if not log.write_window(*closed_window(i)):
                held += 1
            log.poll()
        assert held > 0 and log.waiting > 0
        problems = [line for line in lines if "cannot write" in line]
        assert len(problems) == 1 and "disk is full" in problems[0], lines  # one line, not one per window
        filler.unlink()
        clock.now += 120  # past the backoff
        log.poll()
        assert log.waiting == 0 and any("writable again" in line for line in lines), lines
        log.close()
        rows = windows_in(db)
        assert [r[1] for r in rows] == [T0 + 60 * i for i in range(40)]  # every window, in order, once
        assert all(r[2] == 1 for r in rows)


def test_a_lock_held_elsewhere_delays_windows_without_stopping_or_losing_them(tmp_path: Path) -> None:
    db, lines, clock = tmp_path / "mood.db", [], Clock()
    log = BufferedLog(MoodLog(db, FER2013_LABELS, busy_timeout_s=0.2), echo=lines.append, clock=clock)
    log.write_window(*closed_window(0))
    holder = LockHolder(db)
    try:
        for i in range(1, 6):
            clock.now += 5
            log.write_window(*closed_window(i))
            log.poll()
        assert log.waiting == 5 and log.windows_written == 1
        assert [line for line in lines if "cannot write" in line] == [lines[0]]
        assert "another process holds the database lock" in lines[0]
    finally:
        holder.release()
    clock.now += 120
    log.poll()
    assert log.waiting == 0 and log.windows_written == 6
    log.close()
    assert [r[1] for r in windows_in(db)] == [T0 + 60 * i for i in range(6)]


def test_the_memory_limit_drops_the_oldest_and_says_how_many(tmp_path: Path) -> None:
    db, lines, clock = tmp_path / "mood.db", [], Clock()
    log = BufferedLog(MoodLog(db, FER2013_LABELS, busy_timeout_s=0.1), echo=lines.append, limit=3, clock=clock)
    holder = LockHolder(db)
    try:
        for i in range(5):
            clock.now += 100
            log.write_window(*closed_window(i))
        assert log.waiting == 3 and log.dropped == 2
        assert sum("dropping the oldest" in line for line in lines) == 1
    finally:
        holder.release()
    clock.now += 1000
    log.poll()
    assert any("2 older windows were dropped" in line for line in lines), lines
    log.close()
    assert [r[1] for r in windows_in(db)] == [T0 + 60 * i for i in (2, 3, 4)]


def test_a_run_that_starts_while_the_log_is_locked_writes_its_row_later(tmp_path: Path) -> None:
    db = tmp_path / "mood.db"
    MoodLog(db, FER2013_LABELS).close()
    holder = LockHolder(db)
    try:
        lines: list[str] = []
        log = BufferedLog(MoodLog(db, FER2013_LABELS, busy_timeout_s=0.1), echo=lines.append)
        assert log.run_id is None and "lock" in lines[0]
    finally:
        holder.release()
    log.write_window(*closed_window(0))
    log.close()
    assert log.run_id == 2 and windows_in(db) == [(2, T0, 1)]


def test_a_retried_window_is_never_written_twice(tmp_path: Path) -> None:
    db = tmp_path / "mood.db"
    log = MoodLog(db, FER2013_LABELS)
    summary, tracks = closed_window(0)
    first = log.write_window(summary, tracks)
    assert first > 0 and log.write_window(summary, tracks) == 0  # the same window again: ignored
    log.close()
    assert len(windows_in(db)) == 1
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM window_counts").fetchone()[0] == len(FER2013_LABELS)


@pytest.mark.parametrize("name", ["mood#1.db", "mood?x=1.db", "mood%20.db", "file:mood.db"])
def test_log_names_with_uri_characters_are_the_files_they_say(tmp_path: Path, name: str) -> None:
    (tmp_path / "sub").mkdir()
    db = tmp_path / "sub" / name
    log = MoodLog(db, FER2013_LABELS)
    log.write_window(*closed_window(0))
    log.close()
    assert sorted(p.name for p in db.parent.iterdir()) == [name]
    assert [r.start_ts for r in load_windows(db)] == [T0]


def test_report_reads_a_log_on_read_only_media(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    log = MoodLog(src / "mood#?.db", FER2013_LABELS)
    for i in range(3):
        log.write_window(*closed_window(i))
    log.close()
    with tmpfs(tmp_path / "usb", "1m") as usb:
        (usb / "mood#?.db").write_bytes((src / "mood#?.db").read_bytes())
        remount_read_only(usb)
        assert len(load_windows(usb / "mood#?.db")) == 3
        with pytest.raises(FerEdgeError, match="cannot open the mood log for writing"):
            MoodLog(usb / "mood#?.db", FER2013_LABELS)  # and run says so in one line


def test_report_refuses_a_read_only_copy_whose_wal_holds_windows(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    log = MoodLog(src / "mood.db", FER2013_LABELS)
    log.write_window(*closed_window(0))  # committed to the WAL, not yet folded into mood.db
    with tmpfs(tmp_path / "usb", "1m") as usb:
        for name in ("mood.db", "mood.db-wal"):
            (usb / name).write_bytes((src / name).read_bytes())
        remount_read_only(usb)
        with pytest.raises(FerEdgeError, match="copy mood.db and mood.db-wal together"):
            load_windows(usb / "mood.db")
    log.close()


OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE runs (
    id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, started_ts REAL NOT NULL, ended_at TEXT, ended_ts REAL,
    source TEXT, model TEXT, dataset TEXT, labels TEXT NOT NULL, detector TEXT, crop_rule TEXT,
    window_s REAL, fer_edge_version TEXT
);
CREATE TABLE windows (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id),
    start TEXT NOT NULL, end TEXT NOT NULL, start_ts REAL NOT NULL, end_ts REAL NOT NULL,
    frames INTEGER NOT NULL, faces INTEGER NOT NULL,
    positive INTEGER NOT NULL, neutral INTEGER NOT NULL, negative INTEGER NOT NULL,
    satisfaction REAL, partial INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE window_counts (window_id INTEGER, emotion TEXT, count INTEGER, PRIMARY KEY (window_id, emotion));
INSERT INTO runs(id, started_at, started_ts, labels) VALUES (1, 'x', 0, '[]');
INSERT INTO windows VALUES (1, 1, 'a', 'b', 5, 65, 3, 0, 0, 0, 0, NULL, 0);
"""


def test_a_log_from_before_outages_is_read_and_upgraded(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(OLD_SCHEMA)
    conn.close()
    assert [r.outage_s for r in load_windows(db)] == [0.0]  # read as it is
    log = MoodLog(db, FER2013_LABELS)
    log.write(
        [summarize_window(FER2013_LABELS, [], T0, T0 + 60, frames=0, outage_s=60.0)], []
    )
    log.close()
    assert [(r.start_ts, r.outage_s) for r in load_windows(db)] == [(5.0, 0.0), (T0, 60.0)]
    assert sqlite3.connect(db).execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("3",)

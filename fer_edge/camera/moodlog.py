"""The mood log: a SQLite database (WAL mode) the CRM reads. No images, no embeddings.

One row per time window (``windows``: start, end, distinct faces, positive/neutral/negative,
satisfaction index, seconds without a camera) with its emotion counts (``window_counts``), and one
row per face track (``tracks``: first/last seen, smoothed emotion distribution). Each window is
committed when it closes, so a crash or SIGKILL loses at most the window in progress; when the log
cannot be written (full disk, a lock held elsewhere) windows wait in memory (``logbuffer``).

Satisfaction index of a window = (positive - negative) / faces, in [-1, 1]; NULL with no faces.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Tuple

import numpy as np

from fer_edge.camera.tracking import Track
from fer_edge.errors import FerEdgeError

SCHEMA_VERSION = "2"  # 2: windows.outage_s, one window per (run_id, start_ts)
SQLITE_MAGIC = b"SQLite format 3\x00"

# Valence of each class name of both datasets. Surprise is counted as neutral: its valence is
# ambiguous (a pleasant or an unpleasant surprise), so it neither raises nor lowers satisfaction.
POLARITY: dict[str, str] = {
    "happy": "positive",
    "happiness": "positive",
    "neutral": "neutral",
    "surprise": "neutral",
    "angry": "negative",
    "anger": "negative",
    "disgust": "negative",
    "fear": "negative",
    "sad": "negative",
    "sadness": "negative",
    "contempt": "negative",
}
POLARITIES: tuple[str, ...] = ("positive", "neutral", "negative")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, started_ts REAL NOT NULL, ended_at TEXT, ended_ts REAL,
    source TEXT, model TEXT, dataset TEXT, labels TEXT NOT NULL, detector TEXT, crop_rule TEXT,
    window_s REAL, fer_edge_version TEXT
);
CREATE TABLE IF NOT EXISTS windows (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id),
    start TEXT NOT NULL, end TEXT NOT NULL, start_ts REAL NOT NULL, end_ts REAL NOT NULL,
    frames INTEGER NOT NULL, faces INTEGER NOT NULL,
    positive INTEGER NOT NULL, neutral INTEGER NOT NULL, negative INTEGER NOT NULL,
    satisfaction REAL, partial INTEGER NOT NULL DEFAULT 0, outage_s REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS windows_start ON windows(start_ts);
CREATE TABLE IF NOT EXISTS window_counts (
    window_id INTEGER NOT NULL REFERENCES windows(id), emotion TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (window_id, emotion)
);
CREATE TABLE IF NOT EXISTS tracks (
    run_id INTEGER NOT NULL REFERENCES runs(id), track_id INTEGER NOT NULL,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
    first_seen_ts REAL NOT NULL, last_seen_ts REAL NOT NULL,
    frames INTEGER NOT NULL, emotion TEXT NOT NULL, distribution TEXT NOT NULL,
    PRIMARY KEY (run_id, track_id)
);
"""


def polarity(label: str) -> str:
    return POLARITY.get(label.lower(), "neutral")


def satisfaction_index(positive: int, negative: int, faces: int) -> float | None:
    """(positive - negative) / faces in [-1, 1]; None when no face was seen."""
    return (positive - negative) / faces if faces else None


def iso(ts: float) -> str:
    """Local time with its UTC offset, e.g. 2026-01-01T10:00:00+01:00 (unambiguous for a CRM import)."""
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


@dataclass(frozen=True)
class WindowSummary:
    start_ts: float
    end_ts: float
    frames: int
    counts: dict[str, int]
    positive: int
    neutral: int
    negative: int
    partial: bool
    outage_s: float = 0.0  # seconds of the window without a camera (a live source that dropped)

    @property
    def faces(self) -> int:
        return sum(self.counts.values())

    @property
    def satisfaction(self) -> float | None:
        return satisfaction_index(self.positive, self.negative, self.faces)


def summarize_window(
    labels: Sequence[str],
    tracks: Sequence[Track],
    start_ts: float,
    end_ts: float,
    frames: int,
    partial: bool = False,
    outage_s: float = 0.0,
) -> WindowSummary:
    """Each track counts once: for the emotion its smoothed distribution averaged over the window."""
    counts = dict.fromkeys(labels, 0)
    for track in tracks:
        counts[labels[int(np.argmax(track.window_sum))]] += 1
    by_polarity = dict.fromkeys(POLARITIES, 0)
    for label, n in counts.items():
        by_polarity[polarity(label)] += n
    return WindowSummary(
        start_ts,
        end_ts,
        frames,
        counts,
        by_polarity["positive"],
        by_polarity["neutral"],
        by_polarity["negative"],
        partial,
        round(max(0.0, min(outage_s, end_ts - start_ts)), 3),
    )


# (track id, first seen, last seen, frames, emotion, distribution as JSON): a track as it was when
# its window closed, so a window held in memory is written with the values it closed with.
TrackRow = Tuple[int, float, float, int, str, str]


def track_rows(labels: Sequence[str], tracks: Sequence[Track]) -> list[TrackRow]:
    return [
        (
            t.id,
            t.first_seen,
            t.last_seen,
            t.hits,
            labels[t.emotion],
            json.dumps({k: round(float(p), 4) for k, p in zip(labels, t.probs)}),
        )
        for t in tracks
    ]


TRANSIENT = ("locked", "busy", "full", "i/o error", "no space", "disk quota")


def is_transient(exc: BaseException) -> bool:
    """A write failure worth retrying: a lock held elsewhere, a full disk, an I/O error."""
    return isinstance(exc, (sqlite3.OperationalError, OSError)) and any(
        word in str(exc).lower() for word in TRANSIENT
    )


def connect(path: str | Path, busy_timeout_s: float = 10.0) -> sqlite3.Connection:
    """Open (or create) a mood log; an unwritable place or a foreign file is a one-line user error.

    Opened by absolute path, never as a URI: a name with ``#``, ``?`` or ``%`` (or one starting with
    ``file:``) is the file it says. Nothing is written to an existing, current log here, so a log
    whose lock another process holds still opens (the writes wait in memory).
    """
    path = Path(path)
    # SQLite would silently turn a tiny foreign file into a database: refuse anything not SQLite.
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as f:
            if f.read(16) != SQLITE_MAGIC:
                raise FerEdgeError("exists and is not a SQLite database; choose another --log", path=path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(os.path.abspath(path), timeout=busy_timeout_s)
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed window survives power loss too, not only a killed process.
        conn.execute("PRAGMA synchronous=FULL")
        _create_or_upgrade(conn)
    except (sqlite3.Error, OSError) as exc:
        raise FerEdgeError(f"cannot open the mood log for writing ({exc})", path=path) from None
    return conn


def _create_or_upgrade(conn: sqlite3.Connection) -> None:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    if {"meta", "runs", "windows", "window_counts", "tracks", "windows_run_start"} <= tables:
        version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if version is not None and version[0] == SCHEMA_VERSION:
            return
    with conn:
        conn.executescript("BEGIN;" + SCHEMA)
        columns = {r[1] for r in conn.execute("PRAGMA table_info(windows)")}
        if "outage_s" not in columns:  # a version-1 log: windows with a camera throughout
            conn.execute("ALTER TABLE windows ADD COLUMN outage_s REAL NOT NULL DEFAULT 0")
        # The natural key of a window: a retried write can never insert it twice.
        conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS windows_run_start ON windows(run_id, start_ts)")
        conn.execute(
            "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (SCHEMA_VERSION,),
        )


class MoodLog:
    """Appends one run's windows and tracks to a mood log.

    ``write`` raises the raw ``sqlite3``/``OSError`` on failure, after rolling back: nothing of a
    failed call is in the log, so the caller may retry it (see ``logbuffer.BufferedLog``). If the
    run's own row cannot be written at the start, it is written with the first windows.
    """

    def __init__(
        self,
        path: str | Path,
        labels: Sequence[str],
        *,
        dataset: str = "",
        source: str = "",
        model: str = "",
        detector: str = "",
        crop_rule: str = "",
        window_s: float = 60.0,
        started_ts: float | None = None,
        busy_timeout_s: float = 10.0,
    ) -> None:
        from fer_edge import __version__

        self.path = Path(path)
        self.labels = tuple(labels)
        self._conn = connect(self.path, busy_timeout_s)
        ts = time.time() if started_ts is None else started_ts
        self._run_values = (
            iso(ts),
            ts,
            source,
            model,
            dataset,
            json.dumps(list(self.labels)),
            detector,
            crop_rule,
            window_s,
            __version__,
        )
        self.run_id: int | None = None
        self.windows_written = 0
        self.start_error: BaseException | None = None
        try:
            with self._conn:
                self._insert_run()
        except (sqlite3.Error, OSError) as exc:
            if not is_transient(exc):
                raise FerEdgeError(f"cannot write to the mood log ({exc})", path=self.path) from None
            self.run_id, self.start_error = None, exc

    @property
    def waiting(self) -> int:
        """Windows not yet written (always 0 here: ``write`` either writes or raises)."""
        return 0

    def poll(self) -> None:
        """Nothing to retry: this log writes synchronously (the loop calls it every frame)."""

    def _insert_run(self) -> None:
        cur = self._conn.execute(
            "INSERT INTO runs(started_at, started_ts, source, model, dataset, labels, detector, crop_rule, "
            "window_s, fer_edge_version) VALUES (?,?,?,?,?,?,?,?,?,?)",
            self._run_values,
        )
        self.run_id = int(cur.lastrowid or 0)

    def write(self, windows: Sequence[WindowSummary], tracks: Sequence[TrackRow]) -> list[int]:
        """Insert closed windows and upsert tracks in one transaction; the new window ids, in order."""
        had_run = self.run_id is not None
        ids: list[int] = []
        try:
            with self._conn:  # commits on success, rolls back on error
                if self.run_id is None:
                    self._insert_run()
                for summary in windows:
                    ids.append(self._insert_window(summary))
                self._conn.executemany(
                    "INSERT INTO tracks(run_id, track_id, first_seen, last_seen, first_seen_ts, last_seen_ts, "
                    "frames, emotion, distribution) VALUES (?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(run_id, track_id) DO UPDATE SET "
                    "last_seen=excluded.last_seen, last_seen_ts=excluded.last_seen_ts, frames=excluded.frames, "
                    "emotion=excluded.emotion, distribution=excluded.distribution",
                    [
                        (self.run_id, tid, iso(first), iso(last), first, last, hits, emotion, dist)
                        for tid, first, last, hits, emotion, dist in tracks
                    ],
                )
        except BaseException:
            if not had_run:
                self.run_id = None  # its row was rolled back with the rest
            self._rollback()
            raise
        self.windows_written += sum(1 for i in ids if i)
        return ids

    def _insert_window(self, summary: WindowSummary) -> int:
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO windows(run_id, start, end, start_ts, end_ts, frames, faces, positive, "
            "neutral, negative, satisfaction, partial, outage_s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                self.run_id,
                iso(summary.start_ts),
                iso(summary.end_ts),
                summary.start_ts,
                summary.end_ts,
                summary.frames,
                summary.faces,
                summary.positive,
                summary.neutral,
                summary.negative,
                summary.satisfaction,
                int(summary.partial),
                summary.outage_s,
            ),
        )
        if cur.rowcount == 0:
            return 0  # already in the log (a write that committed but reported an error)
        window_id = int(cur.lastrowid or 0)
        self._conn.executemany(
            "INSERT INTO window_counts(window_id, emotion, count) VALUES (?,?,?)",
            [(window_id, k, v) for k, v in summary.counts.items()],
        )
        return window_id

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back itself (a full disk)
            self._conn.rollback()

    def write_window(self, summary: WindowSummary, tracks: Sequence[Track]) -> int:
        """Insert one closed window and upsert its tracks, in one transaction; returns the window id."""
        return self.write([summary], track_rows(self.labels, tracks))[0]

    def close(self, ended_ts: float | None = None) -> None:
        """Record the run's end and fold the WAL back into the database file (so a copied mood.db is
        complete on its own); the connection is closed even when that fails."""
        ts = time.time() if ended_ts is None else ended_ts
        try:
            if self.run_id is not None:
                with self._conn:
                    self._conn.execute(
                        "UPDATE runs SET ended_at=?, ended_ts=? WHERE id=?", (iso(ts), ts, self.run_id)
                    )
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._conn.close()

"""The mood log: a SQLite database (WAL mode) the CRM reads. No images, no embeddings.

One row per time window (``windows``: start, end, distinct faces, positive/neutral/negative,
satisfaction index) with its emotion counts (``window_counts``), and one row per face track
(``tracks``: first/last seen, smoothed emotion distribution). Each window is committed when it
closes, so a crash or SIGKILL loses at most the window in progress.

Satisfaction index of a window = (positive - negative) / faces, in [-1, 1]; NULL with no faces.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from fer_edge.camera.tracking import Track
from fer_edge.errors import FerEdgeError

SCHEMA_VERSION = "1"
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
    satisfaction REAL, partial INTEGER NOT NULL DEFAULT 0
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
    )


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (or create) a mood log; an unwritable place or a foreign file is a one-line user error."""
    path = Path(path)
    # SQLite would silently turn a tiny foreign file into a database: refuse anything not SQLite.
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as f:
            if f.read(16) != SQLITE_MAGIC:
                raise FerEdgeError("exists and is not a SQLite database; choose another --log", path=path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=10.0)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed window survives power loss too, not only a killed process.
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(SCHEMA)
        conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        conn.commit()
    except (sqlite3.Error, OSError) as exc:
        raise FerEdgeError(f"cannot open the mood log for writing ({exc})", path=path) from None
    return conn


class MoodLog:
    """Appends one run's windows and tracks to a mood log."""

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
    ) -> None:
        from fer_edge import __version__

        self.path = Path(path)
        self.labels = tuple(labels)
        self._conn = connect(self.path)
        ts = time.time() if started_ts is None else started_ts
        cur = self._conn.execute(
            "INSERT INTO runs(started_at, started_ts, source, model, dataset, labels, detector, crop_rule, "
            "window_s, fer_edge_version) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
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
            ),
        )
        self._conn.commit()
        self.run_id = int(cur.lastrowid or 0)
        self.windows_written = 0

    def write_window(self, summary: WindowSummary, tracks: Sequence[Track]) -> int:
        """Insert one closed window and upsert its tracks, in one transaction; returns the window id."""
        with self._conn:  # commits on success, rolls back on error
            cur = self._conn.execute(
                "INSERT INTO windows(run_id, start, end, start_ts, end_ts, frames, faces, positive, neutral, "
                "negative, satisfaction, partial) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
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
                ),
            )
            window_id = int(cur.lastrowid or 0)
            self._conn.executemany(
                "INSERT INTO window_counts(window_id, emotion, count) VALUES (?,?,?)",
                [(window_id, k, v) for k, v in summary.counts.items()],
            )
            self._conn.executemany(
                "INSERT INTO tracks(run_id, track_id, first_seen, last_seen, first_seen_ts, last_seen_ts, "
                "frames, emotion, distribution) VALUES (?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(run_id, track_id) DO UPDATE SET "
                "last_seen=excluded.last_seen, last_seen_ts=excluded.last_seen_ts, frames=excluded.frames, "
                "emotion=excluded.emotion, distribution=excluded.distribution",
                [
                    (
                        self.run_id,
                        t.id,
                        iso(t.first_seen),
                        iso(t.last_seen),
                        t.first_seen,
                        t.last_seen,
                        t.hits,
                        self.labels[t.emotion],
                        json.dumps(
                            {k: round(float(p), 4) for k, p in zip(self.labels, t.probs)}
                        ),
                    )
                    for t in tracks
                ],
            )
        self.windows_written += 1
        return window_id

    def close(self, ended_ts: float | None = None) -> None:
        ts = time.time() if ended_ts is None else ended_ts
        try:
            with self._conn:
                self._conn.execute(
                    "UPDATE runs SET ended_at=?, ended_ts=? WHERE id=?", (iso(ts), ts, self.run_id)
                )
            # Fold the WAL back into the database file, so a copied mood.db is complete on its own.
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._conn.close()

"""Appending one run's windows and tracks to the mood log (SQLite, WAL).

Each window is committed when it closes, so a crash or SIGKILL loses at most the window in
progress. ``write`` raises the raw ``sqlite3``/``OSError`` on a failure, after rolling back:
nothing of a failed call is in the log, so the caller may retry it (``buffered.BufferedLog``).

The log may be missing when the run starts (a full disk) or vanish under it (its folder removed):
the run's row is then written with the first windows that can be, in a log made anew.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Tuple

from fer_edge.core.errors import FerEdgeError
from fer_edge.moodlog.connection import BUSY_TIMEOUT_S, connect, is_transient
from fer_edge.moodlog.schema import DEFAULT_CAMERA
from fer_edge.moodlog.windows import TrackLike, TrackRow, WindowSummary, iso, track_rows


class LogFileGone(OSError):
    """The log file was deleted or replaced (its folder removed) while the run wrote to it."""


class MoodLog:
    """Appends one run's windows and tracks to a mood log. If the run's own row cannot be written
    at the start (a lock held elsewhere, a full disk), it is written with the first windows."""

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
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        camera: str = DEFAULT_CAMERA,
    ) -> None:
        from fer_edge import __version__

        self.path = Path(path)
        self.camera = camera  # every window of this run is this camera's (windows.camera)
        self.labels = tuple(labels)
        self._timeout = busy_timeout_s
        ts = time.time() if started_ts is None else started_ts
        self._run_values = (
            iso(ts), ts, source, model, dataset, json.dumps(list(self.labels)), detector, crop_rule,
            window_s, __version__,
        )  # fmt: skip
        self.run_id: int | None = None
        self.windows_written = 0  # by this run, in any file the log had
        self.recreated = 0  # times the file vanished and was made anew
        self.start_error: BaseException | None = None
        self._conn: Optional[sqlite3.Connection] = None
        self._identity: Optional[Tuple[int, int]] = None
        self._in_log_at_close: Optional[int] = None
        try:
            self._open()
            with self._live():
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

    def _open(self) -> None:
        """Connect (raises a transient failure as it is); remembers which file it opened."""
        self._conn = connect(self.path, "write", self._timeout)
        st = os.stat(self.path)
        self._identity = (st.st_dev, st.st_ino)

    @property
    def file_gone(self) -> bool:
        """True when the file this log opened is no longer at its path (deleted, folder removed)."""
        return self._identity is not None and not self._file_is_ours()

    def _file_is_ours(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._identity

    def _live(self) -> sqlite3.Connection:
        """The connection to the file at ``path``: reopened (made anew) after the file vanished; a file
        that vanished since the last write raises LogFileGone (SQLite would write on into the unlinked
        file, and those windows would be lost with it)."""
        if self._conn is not None and not self._file_is_ours():
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn, self.run_id = None, None
            raise LogFileGone(
                f"the log file is gone from its path (deleted, moved, or its folder removed) with the "
                f"{self.windows_written} windows this run wrote to it; a new log is made there at the next try"
            )
        if self._conn is None:
            had_file = self._identity is not None
            self._open()
            if had_file:
                self.recreated += 1
        assert self._conn is not None
        return self._conn

    def _insert_run(self) -> None:
        assert self._conn is not None
        cur = self._conn.execute(
            "INSERT INTO runs(started_at, started_ts, source, model, dataset, labels, detector, crop_rule, "
            "window_s, fer_edge_version) VALUES (?,?,?,?,?,?,?,?,?,?)",
            self._run_values,
        )
        self.run_id = int(cur.lastrowid or 0)

    def write(self, windows: Sequence[WindowSummary], tracks: Sequence[TrackRow]) -> list[int]:
        """Insert closed windows and upsert tracks in one transaction; the new window ids, in order."""
        conn = self._live()
        had_run = self.run_id is not None
        ids: list[int] = []
        try:
            with conn:  # commits on success, rolls back on error
                if self.run_id is None:
                    self._insert_run()
                for summary in windows:
                    ids.append(self._insert_window(conn, summary))
                conn.executemany(
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
            with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back itself (a full disk)
                conn.rollback()
            raise
        self.windows_written += sum(1 for i in ids if i)
        return ids

    def _insert_window(self, conn: sqlite3.Connection, summary: WindowSummary) -> int:
        cur = conn.execute(
            "INSERT OR IGNORE INTO windows(run_id, start, end, start_ts, end_ts, frames, faces, positive, "
            "neutral, negative, satisfaction, partial, outage_s, camera) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                self.run_id, iso(summary.start_ts), iso(summary.end_ts), summary.start_ts, summary.end_ts,
                summary.frames, summary.faces, summary.positive, summary.neutral, summary.negative,
                summary.satisfaction, int(summary.partial), summary.outage_s, self.camera,
            ),
        )  # fmt: skip
        if cur.rowcount == 0:
            return 0  # already in the log (a write that committed but reported an error)
        window_id = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT INTO window_counts(window_id, emotion, count) VALUES (?,?,?)",
            [(window_id, k, v) for k, v in summary.counts.items()],
        )
        return window_id

    def write_window(self, summary: WindowSummary, tracks: Sequence[TrackLike]) -> int:
        """Insert one closed window and upsert its tracks, in one transaction; returns the window id."""
        return self.write([summary], track_rows(self.labels, tracks))[0]

    @property
    def in_log(self) -> int:
        """This run's windows that the log file at ``path`` holds, read back from it (0 when the file
        is gone); after ``close`` the count taken as it closed."""
        if self._in_log_at_close is not None:
            return self._in_log_at_close
        if self._conn is None or self.run_id is None or not self._file_is_ours():
            return 0
        try:
            row = self._conn.execute("SELECT count(*) FROM windows WHERE run_id = ?", (self.run_id,)).fetchone()
        except sqlite3.Error:
            return self.windows_written
        return int(row[0])

    def close(self, ended_ts: float | None = None) -> None:
        """Record the run's end and fold the WAL back into the database file (so a copied mood.db is
        complete on its own); the connection is closed even when that fails."""
        ts = time.time() if ended_ts is None else ended_ts
        conn = self._conn
        self._in_log_at_close = self.in_log
        if conn is None:
            return
        try:
            if self.run_id is not None and self._file_is_ours():
                with conn:
                    conn.execute("UPDATE runs SET ended_at=?, ended_ts=? WHERE id=?", (iso(ts), ts, self.run_id))
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
            self._conn = None

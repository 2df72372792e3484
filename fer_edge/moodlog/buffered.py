"""The camera never stops for its log: windows that cannot be written wait in memory.

A store camera runs unattended for months; its mood log will meet a full disk (also at the start),
another process holding the database lock (a backup, a sync job, someone's SQLite browser), or its
folder removed under it. Then the camera keeps running, holds the closed windows in memory (at
most ``limit``; beyond that the oldest are dropped and counted), retries with exponential backoff
and writes them, in order, when it can (in a log made anew when the file vanished). It says one
line when a problem starts or changes, one when it is over: not one per frame or per retry.

Each retry writes every held window in one transaction (``MoodLog.write``), so a failed try leaves
nothing behind and a window is never written twice (``windows`` is also unique on its run and start).
"""

from __future__ import annotations

import sqlite3
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Deque, Dict, Optional

from fer_edge.core.errors import FerEdgeError
from fer_edge.core.retry import Backoff
from fer_edge.moodlog.connection import is_transient
from fer_edge.moodlog.windows import TrackLike, TrackRow, WindowSummary, track_rows
from fer_edge.moodlog.writer import LogFileGone, MoodLog

DEFAULT_LIMIT = 10_000  # a week of 60-s windows; 5 MB (docs/camera.md)


def describe_failure(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lowered = text.lower()
    if isinstance(exc, LogFileGone):
        return text
    if "locked" in lowered or "busy" in lowered:
        return f"another process holds the database lock ({text})"
    if "full" in lowered or "no space" in lowered:
        return f"the disk is full ({text})"
    return text


class BufferedLog:
    """A :class:`MoodLog` that holds what it cannot write. Same ``write_window`` as the log it wraps;
    ``poll()`` (every frame) retries when the backoff is due; ``close()`` makes a last try."""

    def __init__(
        self,
        log: MoodLog,
        echo: Callable[[str], None] = print,
        limit: int = DEFAULT_LIMIT,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.limit = limit
        self._echo = echo
        self._clock = clock
        self._backoff = Backoff(first=backoff_s, cap=max_backoff_s)
        self._pending: Deque[WindowSummary] = deque()
        # One row per track, the newest: a track seen in many held windows is written once.
        self._tracks: Dict[int, TrackRow] = OrderedDict()
        self._next_try = 0.0
        self._problem: Optional[str] = None
        self._problem_since = 0.0
        self._recreated = log.recreated
        self.dropped = 0
        self._dropped_reported = 0
        self.last_error: Optional[BaseException] = None
        if log.run_id is None and log.start_error is not None:
            self._failed(log.start_error)

    @property
    def path(self) -> object:
        return self.log.path

    @property
    def windows_written(self) -> int:
        return self.log.windows_written

    @property
    def in_log(self) -> int:
        """This run's windows the log holds, read back (see ``MoodLog.in_log``)."""
        return self.log.in_log

    @property
    def waiting(self) -> int:
        """Closed windows held in memory, not yet in the log."""
        return len(self._pending)

    @property
    def run_id(self) -> Optional[int]:
        return self.log.run_id

    def write_window(self, summary: WindowSummary, tracks: Sequence[TrackLike]) -> bool:
        """Log a closed window now if possible, else hold it; True when it is in the log."""
        self._pending.append(summary)
        for row in track_rows(self.log.labels, tracks):
            self._tracks.pop(row[0], None)
            self._tracks[row[0]] = row
        while len(self._pending) > self.limit:
            self._pending.popleft()
            self.dropped += 1
        while len(self._tracks) > self.limit * 10:
            self._tracks.pop(next(iter(self._tracks)))
        if self.dropped > self._dropped_reported and self._dropped_reported == 0:
            self._echo(
                f"mood log {self.path}: {self.limit} windows held in memory, the limit; "
                "dropping the oldest until the log can be written"
            )
            self._dropped_reported = self.dropped
        if self._problem is not None and self._clock() < self._next_try:
            return False
        return self.flush()

    def poll(self) -> None:
        if self._pending and self._clock() >= self._next_try:
            self.flush()

    def flush(self) -> bool:
        """Try to write everything held, now; True when nothing is left waiting."""
        if not self._pending and not self._tracks and self.log.run_id is not None:
            return True
        try:
            self.log.write(list(self._pending), list(self._tracks.values()))
        except (sqlite3.Error, OSError, FerEdgeError) as exc:
            self._failed(exc)
            return False
        written = len(self._pending)
        self._pending.clear()
        self._tracks.clear()
        if self._problem is not None:
            lost = f"; {self.dropped} older windows were dropped (memory limit {self.limit})" if self.dropped else ""
            anew = " in a log made anew (the file had vanished)" if self.log.recreated > self._recreated else ""
            self._echo(
                f"mood log {self.path}: writable again after {self._clock() - self._problem_since:.0f} s; "
                f"wrote {written} held windows{anew}{lost}"
            )
        self._recreated = self.log.recreated
        self._problem, self.last_error = None, None
        self._backoff.reset()
        self._dropped_reported = self.dropped
        return True

    def _failed(self, exc: BaseException) -> None:
        self.last_error = exc
        problem = describe_failure(exc)
        now = self._clock()
        delay = self._backoff.next()
        if problem != self._problem:
            if self._problem is None:
                self._problem_since = now
            kind = "" if is_transient(exc) or isinstance(exc, LogFileGone) else " (unexpected; still retrying)"
            self._echo(
                f"mood log {self.path}: cannot write: {problem}{kind}; holding {len(self._pending)} windows "
                f"in memory (limit {self.limit}) and retrying, first in {delay:g} s"
            )
            self._problem = problem
        self._next_try = now + delay

    def close(self, ended_ts: Optional[float] = None, give_up_after_s: float = 5.0) -> None:
        """Last tries to write what is held (for up to ``give_up_after_s``), then close the log."""
        deadline = self._clock() + give_up_after_s
        while not self.flush() and self._clock() < deadline:
            time.sleep(min(0.5, max(0.0, deadline - self._clock())))
        if not self._pending and self.log.file_gone:
            self._echo(
                f"mood log {self.path}: the log file is gone from its path (deleted, moved, or its folder "
                f"removed) since the last window, with the {self.log.windows_written} windows this run wrote to it"
            )
        if self._pending:
            self._echo(
                f"mood log {self.path}: {len(self._pending)} windows could not be written "
                f"({self._problem}) and are lost; they were printed above as they closed"
            )
        try:
            self.log.close(ended_ts)
        except (sqlite3.Error, OSError) as exc:
            self._echo(f"mood log {self.path}: could not record the end of the run ({describe_failure(exc)})")

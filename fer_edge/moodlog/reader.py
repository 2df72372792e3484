"""Reading the mood log back, read-only: its windows with their emotion counts.

A tampered or damaged log may hold a window whose value has the wrong type (SQLite stores what it
is given) or a timestamp outside the calendar: such a window is skipped and reported by id, never
a traceback halfway through a report.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from fer_edge.core.errors import FerEdgeError
from fer_edge.moodlog.connection import connect
from fer_edge.moodlog.schema import DEFAULT_CAMERA

# Timestamps a report can turn into dates on any machine: 1970 up to (not including) the year 10000.
MAX_TS = 253_402_300_799.0


@dataclass(frozen=True)
class WindowRow:
    id: int
    run_id: int
    start: str
    end: str
    start_ts: float
    end_ts: float
    frames: int
    faces: int
    positive: int
    neutral: int
    negative: int
    satisfaction: float | None
    partial: bool
    counts: dict[str, int]
    outage_s: float = 0.0  # seconds of the window without a camera
    camera: str = DEFAULT_CAMERA  # the camera whose window it is (logs before version 3: cam0)


# (window id, what is wrong with it)
Skipped = Tuple[Any, str]


def parse_when(text: str) -> float:
    """``2026-01-01`` (local midnight) or an ISO date-time (local time unless it has an offset) -> epoch s."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FerEdgeError(f"bad date {text!r}; use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM]") from None
    try:
        return when.astimezone().timestamp() if when.tzinfo is None else when.timestamp()
    except (ValueError, OverflowError, OSError):
        raise FerEdgeError(f"date {text!r} is outside the calendar this machine can count (years 2..9998)") from None


def open_log(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to a mood log (one-line errors: missing, foreign, unreadable)."""
    return connect(path, "read")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_ts(v: object) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and 0.0 <= float(v) <= MAX_TS


def problem_of(r: Sequence[Any]) -> Optional[str]:
    """What is wrong with a window row in WindowRow order (without counts), or None."""
    for name, i in (("start_ts", 4), ("end_ts", 5)):
        if not _is_ts(r[i]):
            return f"{name} {r[i]!r} is not a time between 1970 and 9999"
    for name, i in (("run_id", 1), ("frames", 6), ("faces", 7), ("positive", 8), ("neutral", 9), ("negative", 10)):
        if not _is_int(r[i]) or r[i] < 0:
            return f"{name} {r[i]!r} is not a count"
    if not isinstance(r[2], str) or not isinstance(r[3], str):
        return "start/end is not text"
    sat = r[11]
    if sat is not None and not (isinstance(sat, (int, float)) and -1.0 <= sat <= 1.0):
        return f"satisfaction {sat!r} is not in [-1, 1]"
    if r[12] not in (0, 1):
        return f"partial {r[12]!r} is not 0 or 1"
    if not isinstance(r[13], (int, float)) or not 0.0 <= r[13] <= float(r[5]) - float(r[4]) + 1.0:
        return f"outage_s {r[13]!r} is not a duration within the window"
    return None


def read_windows(
    path: str | Path, since: float | None = None, until: float | None = None
) -> Tuple[List[WindowRow], List[Skipped]]:
    """Windows that start in [since, until), oldest first, each with its emotion counts; and the
    windows skipped as damaged, (id, problem)."""
    conn = open_log(path)
    try:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(windows)")}
        outage = "outage_s" if "outage_s" in columns else "0"  # a log from before outages were logged
        camera = "camera" if "camera" in columns else f"'{DEFAULT_CAMERA}'"  # before several cameras
        lo = since if since is not None else float("-inf")
        hi = until if until is not None else float("inf")
        # Rows whose start_ts is not a number match no range in SQLite: fetched too, to be reported.
        rows = conn.execute(
            "SELECT id, run_id, start, end, start_ts, end_ts, frames, faces, positive, neutral, negative, "
            f"satisfaction, partial, {outage}, {camera} FROM windows "
            "WHERE (start_ts >= ? AND start_ts < ?) OR typeof(start_ts) NOT IN ('real', 'integer') "
            "ORDER BY start_ts, id",
            (lo, hi),
        ).fetchall()
        counts: dict[Any, dict[str, int]] = {r[0]: {} for r in rows}
        bad_counts: dict[Any, str] = {}
        for window_id, emotion, count in conn.execute("SELECT window_id, emotion, count FROM window_counts"):
            if window_id in counts:
                if not _is_int(count) or count < 0 or not isinstance(emotion, str):
                    bad_counts.setdefault(window_id, f"count of {emotion!r} is {count!r}, not a count")
                else:
                    counts[window_id][emotion] = int(count)
    except sqlite3.Error as exc:
        raise FerEdgeError(f"not a readable mood log ({exc})", path=path) from None
    finally:
        conn.close()
    good: List[WindowRow] = []
    skipped: List[Skipped] = []
    for r in rows:
        problem = problem_of(r) or bad_counts.get(r[0])
        if problem is not None:
            skipped.append((r[0], problem))
            continue
        good.append(
            WindowRow(
                id=r[0], run_id=r[1], start=r[2], end=r[3], start_ts=float(r[4]), end_ts=float(r[5]),
                frames=r[6], faces=r[7], positive=r[8], neutral=r[9], negative=r[10],
                satisfaction=None if r[11] is None else float(r[11]), partial=bool(r[12]),
                counts=counts[r[0]], outage_s=float(r[13]), camera=str(r[14]),
            )
        )  # fmt: skip
    return good, skipped


def load_windows(path: str | Path, since: float | None = None, until: float | None = None) -> list[WindowRow]:
    """Windows that start in [since, until), oldest first (damaged ones left out: see ``read_windows``)."""
    return read_windows(path, since, until)[0]


def describe_skipped(skipped: Sequence[Skipped], path: str | Path, shown: int = 5) -> str:
    """One line naming the skipped windows by id, with what is wrong with the first few."""
    parts = [f"{wid!r} ({why})" for wid, why in skipped[:shown]]
    more = f" and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return f"{path}: skipped {len(skipped)} damaged windows: " + "; ".join(parts) + more

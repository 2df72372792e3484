"""Reading the mood log back: summary numbers, a CSV for CRM import, a PNG chart of mood over time."""

from __future__ import annotations

import csv
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from fer_edge.atomic import atomic_path
from fer_edge.camera.moodlog import POLARITIES, polarity, satisfaction_index
from fer_edge.errors import FerEdgeError


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


@dataclass(frozen=True)
class MoodSummary:
    windows: int
    first_start: str | None
    last_end: str | None
    faces: int
    counts: dict[str, int]  # emotion -> faces, over all windows
    polarity: dict[str, int]

    @property
    def satisfaction(self) -> float | None:
        """Face-weighted over the period: (positive - negative) / faces, as in each window."""
        return satisfaction_index(self.polarity["positive"], self.polarity["negative"], self.faces)


def parse_when(text: str) -> float:
    """``2026-01-01`` (local midnight) or an ISO date-time (local time unless it has an offset) -> epoch s."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FerEdgeError(f"bad date {text!r}; use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM]") from None
    return when.astimezone().timestamp() if when.tzinfo is None else when.timestamp()


def sqlite_uri(path: str | Path, **params: str) -> str:
    """A ``file:`` URI for ``path``, quoted, so ``#``, ``?`` and ``%`` in a name stay part of it."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"file:{quote(os.path.abspath(path))}" + (f"?{query}" if query else "")


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """Read-only, also from read-only media: a WAL log there cannot get its ``-shm`` file, so it is
    opened ``immutable`` (nothing else can be writing it), unless its ``-wal`` file holds windows
    that are not yet in the database file, which ``immutable`` would silently skip."""
    try:
        conn = sqlite3.connect(sqlite_uri(path, mode="ro"), uri=True)
        conn.execute("SELECT name FROM sqlite_master").fetchall()
        return conn
    except sqlite3.OperationalError:
        if os.access(path.parent, os.W_OK):
            raise
    wal = Path(f"{path}-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        raise FerEdgeError(
            f"on read-only media with a non-empty {wal.name} beside it (windows not yet folded into the "
            f"database); copy {path.name} and {wal.name} together to a writable folder and report there",
            path=path,
        )
    return sqlite3.connect(sqlite_uri(path, immutable="1"), uri=True)


def open_log(path: str | Path) -> sqlite3.Connection:
    path = Path(path)
    if not path.is_file():
        raise FerEdgeError("mood log not found", path=path)
    try:
        conn = _connect_read_only(path)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as exc:
        raise FerEdgeError(f"not a readable mood log ({exc})", path=path) from None
    if not {"windows", "window_counts"} <= tables:
        conn.close()
        raise FerEdgeError("not a fer-edge mood log (no windows table)", path=path)
    return conn


def load_windows(path: str | Path, since: float | None = None, until: float | None = None) -> list[WindowRow]:
    """Windows that start in [since, until), oldest first, each with its emotion counts."""
    conn = open_log(path)
    try:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(windows)")}
        outage = "outage_s" if "outage_s" in columns else "0"  # a log from before outages were logged
        query = (
            "SELECT id, run_id, start, end, start_ts, end_ts, frames, faces, positive, neutral, negative, "
            f"satisfaction, partial, {outage} FROM windows WHERE start_ts >= ? AND start_ts < ? "
            "ORDER BY start_ts, id"
        )
        lo = since if since is not None else float("-inf")
        hi = until if until is not None else float("inf")
        rows = conn.execute(query, (lo, hi)).fetchall()
        counts: dict[int, dict[str, int]] = {r[0]: {} for r in rows}
        for window_id, emotion, count in conn.execute("SELECT window_id, emotion, count FROM window_counts"):
            if window_id in counts:
                counts[window_id][emotion] = int(count)
    except sqlite3.Error as exc:
        raise FerEdgeError(f"not a readable mood log ({exc})", path=path) from None
    finally:
        conn.close()
    return [
        WindowRow(
            id=r[0],
            run_id=r[1],
            start=r[2],
            end=r[3],
            start_ts=r[4],
            end_ts=r[5],
            frames=r[6],
            faces=r[7],
            positive=r[8],
            neutral=r[9],
            negative=r[10],
            satisfaction=r[11],
            partial=bool(r[12]),
            counts=counts[r[0]],
            outage_s=float(r[13]),
        )
        for r in rows
    ]


def emotions_in(rows: list[WindowRow]) -> list[str]:
    """Emotion names in first-seen order (a log may mix FER2013 and FERPlus runs)."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row.counts))
    return list(names)


def summarize(rows: list[WindowRow]) -> MoodSummary:
    totals = dict.fromkeys(emotions_in(rows), 0)
    for row in rows:
        for k, v in row.counts.items():
            totals[k] += v
    by_polarity = dict.fromkeys(POLARITIES, 0)
    for k, v in totals.items():
        by_polarity[polarity(k)] += v
    return MoodSummary(
        windows=len(rows),
        first_start=rows[0].start if rows else None,
        last_end=rows[-1].end if rows else None,
        faces=sum(r.faces for r in rows),
        counts=totals,
        polarity=by_polarity,
    )


CSV_FIXED = [
    "window_start",
    "window_end",
    "run_id",
    "frames",
    "faces",
    "valence_positive",
    "valence_neutral",
    "valence_negative",
    "satisfaction_index",
    "partial",
    "outage_s",
]


def write_csv(rows: list[WindowRow], target: str | Path) -> Path:
    """One line per window: times (ISO 8601 with offset), faces, valence counts, index, then each emotion."""
    emotions = emotions_in(rows)
    with atomic_path(target) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIXED + emotions)
        for r in rows:
            sat = "" if r.satisfaction is None else f"{r.satisfaction:.4f}"
            writer.writerow(
                [
                    r.start,
                    r.end,
                    r.run_id,
                    r.frames,
                    r.faces,
                    r.positive,
                    r.neutral,
                    r.negative,
                    sat,
                    int(r.partial),
                    f"{r.outage_s:g}",
                ]
                + [r.counts.get(e, 0) for e in emotions]
            )
    return Path(target)


def write_plot(rows: list[WindowRow], target: str | Path) -> Path:
    """Two panels over time: the satisfaction index per window, and faces per window by emotion."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        raise FerEdgeError("no windows to plot in the chosen period")
    times = [datetime.fromtimestamp(r.start_ts) for r in rows]
    emotions = emotions_in(rows)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, height_ratios=[1, 1.3])
    sat_t = [t for t, r in zip(times, rows) if r.satisfaction is not None]
    sat_v = [r.satisfaction for r in rows if r.satisfaction is not None]
    ax1.axhline(0, color="0.7", lw=0.8)
    ax1.plot(sat_t, sat_v, marker="o", ms=3, lw=1.2, color="tab:blue")
    ax1.set_ylim(-1.05, 1.05)
    ax1.set_ylabel("satisfaction index")
    ax1.set_title("Mood over time: (positive - negative) / faces per window")
    series = [[r.counts.get(e, 0) for r in rows] for e in emotions]
    ax2.stackplot(times, series, labels=emotions, step="post")
    ax2.set_ylabel("faces per window")
    ax2.legend(loc="upper left", fontsize=8, ncol=min(len(emotions), 4))
    fig.autofmt_xdate()
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(target)

"""``fer-edge report URL``: the chain's windows summed per store, hour or day, on the server.

The satisfaction index is the local report's: (positive - negative) / faces, face-weighted over
the group (``moodlog.satisfaction_index``). Time groups plot with the local report's chart; the
per-store view gets a bar chart. Hours and days are this machine's local time, as in the local
report.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from fer_edge.core.atomic import atomic_path
from fer_edge.core.errors import FerEdgeError
from fer_edge.fleet.schema import EMOTION_COLUMNS, SCHEMA, current_version
from fer_edge.moodlog.windows import satisfaction_index

GROUPINGS = ("store", "camera", "store,camera", "hour", "day")
# The group key of each grouping, as SQL over fer_edge.windows.
GROUP_KEYS = {"store": "store", "camera": "camera", "store,camera": "store || ' / ' || camera",
              "hour": "date_trunc('hour', start_at)", "day": "date_trunc('day', start_at)"}


@dataclass(frozen=True)
class GroupRow:
    key: str  # the store label, camera, "store / camera", or the local start of the hour/day (ISO 8601)
    start_ts: Optional[float]  # the hour/day's start (epoch s); None for a store
    stores: int
    windows: int
    frames: int
    faces: int
    positive: int
    neutral: int
    negative: int
    counts: Dict[str, int]  # emotion -> faces, only the emotions some run measured

    @property
    def satisfaction(self) -> Optional[float]:
        return satisfaction_index(self.positive, self.negative, self.faces)


def local_zone() -> str:
    """This machine's time zone for the server session: an IANA name where known, else its UTC offset."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        try:
            name = Path("/etc/timezone").read_text().strip()
        except OSError:
            link = os.path.realpath("/etc/localtime")
            name = link.split("zoneinfo/", 1)[1] if "zoneinfo/" in link else ""
    if name:
        return name
    offset = datetime.now().astimezone().utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    return f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def query_groups(
    conn: Any,
    by: str,
    stores: Sequence[str] = (),
    since: Optional[float] = None,
    until: Optional[float] = None,
    cameras: Sequence[str] = (),
) -> List[GroupRow]:
    """One row per store/camera/store and camera/hour/day over windows starting in [since, until),
    in key order."""
    by = by.replace(" ", "")
    if by not in GROUPINGS:
        raise FerEdgeError(f"--by must be one of {', '.join(GROUPINGS)}, got {by!r}")
    version = current_version(conn)
    if version == 0:
        raise FerEdgeError(f"the database has no '{SCHEMA}' schema yet: nothing was synced to it")
    if version < 2 and ("camera" in by or cameras):
        raise FerEdgeError(f"the database's '{SCHEMA}' schema has no cameras yet (version {version}); the next "
                           "fer-edge sync adds them")
    key = GROUP_KEYS[by]
    where = ["start_at >= %s", "start_at < %s"]
    params: List[Any] = [_utc(since, -1), _utc(until, +1)]
    if stores:
        where.append("store = ANY(%s)")
        params.append(list(stores))
    if cameras:
        where.append("camera = ANY(%s)")
        params.append(list(cameras))
    emotion_sums = ", ".join(f"sum({e})" for e in EMOTION_COLUMNS)
    # A store is one store: counting distinct stores there would only force a sort of every row.
    stores_sql = "1" if by in ("store", "store,camera") else "count(DISTINCT store)"
    sql = (
        f"SELECT {key} AS k, {stores_sql}, count(*), sum(frames), sum(faces), sum(valence_positive), "
        f"sum(valence_neutral), sum(valence_negative), {emotion_sums} FROM {SCHEMA}.windows "
        f"WHERE {' AND '.join(where)} GROUP BY k ORDER BY k"
    )
    with conn.transaction():
        conn.execute("SELECT set_config('TimeZone', %s, true)", (local_zone(),))
        rows = conn.execute(sql, params).fetchall()
    measured = [e for i, e in enumerate(EMOTION_COLUMNS) if any(r[8 + i] is not None for r in rows)]
    out = []
    for r in rows:
        counts = {e: int(r[8 + EMOTION_COLUMNS.index(e)] or 0) for e in measured}
        if by not in ("hour", "day"):
            key_text, start = str(r[0]), None
        else:
            start = r[0].timestamp()
            key_text = datetime.fromtimestamp(start).astimezone().isoformat(timespec="minutes")
        out.append(GroupRow(key_text, start, int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]),
                            int(r[7]), counts))  # fmt: skip
    return out


def _utc(ts: Optional[float], side: int) -> datetime:
    if ts is None:
        return datetime.min.replace(tzinfo=timezone.utc) if side < 0 else datetime.max.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(ts, timezone.utc)


def total(rows: Sequence[GroupRow]) -> GroupRow:
    """All groups together (``stores`` left 0: a store counts in several hours, so it does not add up)."""
    counts: Dict[str, int] = {}
    for r in rows:
        for k, v in r.counts.items():
            counts[k] = counts.get(k, 0) + v
    return GroupRow(
        "all", None, 0,
        sum(r.windows for r in rows), sum(r.frames for r in rows), sum(r.faces for r in rows),
        sum(r.positive for r in rows), sum(r.neutral for r in rows), sum(r.negative for r in rows), counts,
    )  # fmt: skip


CSV_FIXED = [
    "stores", "windows", "frames", "faces", "valence_positive", "valence_neutral", "valence_negative",
    "satisfaction_index",
]  # fmt: skip


def write_csv(rows: Sequence[GroupRow], by: str, target: str | Path) -> Path:
    """One line per group: the key, counts, the index (4 decimals, empty without faces), each emotion."""
    emotions = list(rows[0].counts) if rows else []
    with atomic_path(target) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        keys = by.split(",")  # store,camera: a column each
        writer.writerow([*keys, *CSV_FIXED, *emotions])
        for r in rows:
            sat = "" if r.satisfaction is None else f"{r.satisfaction:.4f}"
            key = r.key.split(" / ", len(keys) - 1)
            writer.writerow([*key, r.stores, r.windows, r.frames, r.faces, r.positive, r.neutral, r.negative, sat,
                             *(r.counts[e] for e in emotions)])  # fmt: skip
    return Path(target)


def write_plot(rows: Sequence[GroupRow], by: str, target: str | Path) -> Path:
    """Per hour/day: the local report's chart (index over time, faces by emotion). Per store: bars."""
    if not rows:
        raise FerEdgeError("no windows to plot in the chosen period")
    if by in ("hour", "day"):
        from fer_edge.moodlog.reader import WindowRow
        from fer_edge.moodlog.summary import write_plot as plot_windows

        as_windows = [
            WindowRow(0, 0, r.key, r.key, r.start_ts or 0.0, r.start_ts or 0.0, r.frames, r.faces, r.positive,
                            r.neutral, r.negative, r.satisfaction, False, r.counts)
            for r in rows
        ]  # fmt: skip
        return plot_windows(as_windows, target)
    from fer_edge.core.plots import pyplot, save_figure

    ranked = sorted((r for r in rows if r.satisfaction is not None), key=lambda r: r.satisfaction or 0.0)
    fig, ax = pyplot().subplots(figsize=(max(6.0, min(0.25 * len(ranked), 40.0)), 5))
    ax.bar(range(len(ranked)), [r.satisfaction or 0.0 for r in ranked], color="tab:blue")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("satisfaction index")
    ax.set_title(f"Satisfaction per {by}, {len(ranked)} groups: (positive - negative) / faces")
    if len(ranked) <= 80:  # beyond that the labels are unreadable; the CSV has them
        ax.set_xticks(range(len(ranked)), [r.key for r in ranked], rotation=90, fontsize=7)
    else:
        ax.set_xlabel("stores, lowest to highest")
    fig.tight_layout()
    return save_figure(fig, target)

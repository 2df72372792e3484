"""The window summary: totals over a period, a CSV for CRM import and a PNG chart of mood over time."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fer_edge.core.atomic import atomic_path
from fer_edge.core.errors import FerEdgeError
from fer_edge.moodlog.reader import WindowRow
from fer_edge.moodlog.windows import POLARITIES, polarity, satisfaction_index


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
        # camera last: the columns before it stay where a CRM import made before several cameras finds them
        writer.writerow(CSV_FIXED + emotions + ["camera"])
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
                + [r.camera]
            )
    return Path(target)


def write_plot(rows: list[WindowRow], target: str | Path) -> Path:
    """Two panels over time: the satisfaction index per window, and faces per window by emotion."""
    from fer_edge.core.plots import pyplot, save_figure

    if not rows:
        raise FerEdgeError("no windows to plot in the chosen period")
    times = [datetime.fromtimestamp(r.start_ts) for r in rows]
    emotions = emotions_in(rows)
    fig, (ax1, ax2) = pyplot().subplots(2, 1, figsize=(10, 6), sharex=True, height_ratios=[1, 1.3])
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
    return save_figure(fig, target)

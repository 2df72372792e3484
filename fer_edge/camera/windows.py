"""The open mood-log window of one camera: when it started, its frames, the seconds it had no
camera; windows close on time (several at once after a camera was down), each with its counts per
emotion (each confirmed track once, for the emotion it showed over the window).

This module is the camera's one door to the mood log's window summary (``summarize_window``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Optional

from fer_edge.camera.tracking import Track
from fer_edge.moodlog.windows import WindowSummary, iso, summarize_window


class OpenWindow:
    """Bookkeeping of the window in progress; ``start`` and times are seconds since the epoch."""

    def __init__(self, start: float, length_s: float) -> None:
        self.start = start
        self.length_s = length_s
        self.frames = 0
        self.outage_s = 0.0  # seconds of this window without a camera, up to the last change
        self.down_since: Optional[float] = None  # when the live source dropped, while it is down

    @property
    def end(self) -> float:
        return self.start + self.length_s

    @property
    def has_content(self) -> bool:
        """Frames, or a gap the log must show (a window the camera was down for is logged too)."""
        return bool(self.frames or self.outage_s or self.down_since is not None)

    def camera_down(self, now: float) -> bool:
        """The source dropped at ``now``; True when it was up until now."""
        if self.down_since is not None:
            return False
        self.down_since = now
        return True

    def camera_back(self, now: float) -> None:
        if self.down_since is not None:
            self.outage_s += now - max(self.down_since, self.start)
            self.down_since = None

    def due(self, now: float) -> Iterator[float]:
        """The end of every window that ended before ``now``, oldest first; the caller closes each
        (:meth:`close`) before the next is yielded."""
        while now >= self.end:
            yield self.end
            self.start += self.length_s

    def close(
        self, labels: Sequence[str], counted: Sequence[Track], end_ts: float, partial: bool
    ) -> WindowSummary:
        """The summary of the window ending at ``end_ts``; the counters start again at zero."""
        outage = self.outage_s
        if self.down_since is not None:
            outage += end_ts - max(self.down_since, self.start)
        summary = summarize_window(labels, counted, self.start, end_ts, self.frames, partial, outage)
        self.frames, self.outage_s = 0, 0.0
        return summary


def describe_window(w: WindowSummary) -> str:
    """The line printed as a window closes (also what a service's journal keeps)."""
    sat = "n/a" if w.satisfaction is None else f"{w.satisfaction:+.2f}"
    counts = ", ".join(f"{k} {v}" for k, v in w.counts.items() if v)
    tail = " (partial)" if w.partial else ""
    if w.outage_s:
        tail += f" (no camera for {w.outage_s:.1f} s)"
    return (
        f"window {iso(w.start_ts)} .. {iso(w.end_ts)}: {w.faces} faces, satisfaction {sat}"
        + (f" [{counts}]" if counts else "")
        + tail
    )

"""What a camera left running shows: on a terminal, one status line kept up to date in place; in a
service or a log file, a line per interval. Lines that matter (a window closed, a problem) are
printed above the status line and stay.

The text comes from the loop's metrics object (``metrics.CameraMetrics``), which a metrics
endpoint can read too: the loop says when (every frame, every stats interval), this module says
what. ``to_sync`` is a hook for :meth:`StatusLine.windows` when text is built without metrics.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Optional, TextIO

from fer_edge.camera.metrics import CameraMetrics, MetricsSnapshot
from fer_edge.camera.windows import iso

CLEAR_LINE = "\r\x1b[2K"


def windows_text(written: int, held: int, to_sync: Optional[int]) -> str:
    """``windows 12 written, 3 held, 40 to sync``: held (log not writable) and to sync when any."""
    text = f"windows {written} written" + (f", {held} held" if held else "")
    return text if to_sync is None else f"{text}, {to_sync} to sync"


def status_text(snap: MetricsSnapshot) -> str:
    """The status line: figures since the last periodic line; a camera that is down says since when."""
    windows = windows_text(snap.windows_written, snap.windows_held, snap.to_sync)
    if not snap.camera_up:
        return f"no camera since {iso(snap.down_since or 0.0)} | {windows}"
    # What matters first comes first: a narrow terminal cuts the line at its width.
    recent = snap.interval
    means = recent.mean_ms()
    stages = " | ".join(f"{k} {means[k]:.1f} ms" for k in means)
    detector = f"detector on {recent.detector_runs}/{recent.frames} frames"
    dropped = f" | {snap.dropped_frames} frames dropped" if snap.dropped_frames else ""
    return f"{recent.fps:.1f} fps | faces now {snap.faces_now}{dropped} | {windows} | {stages} | {detector}"


def camera_text(snap: MetricsSnapshot) -> str:
    """One camera in a line of several: ``entrance 29.8 fps, 2 faces, 0 dropped``."""
    if not snap.camera_up:
        return f"{snap.camera} down since {iso(snap.down_since or 0.0)}"
    return f"{snap.camera} {snap.interval.fps:.1f} fps, {snap.faces_now} faces, {snap.dropped_frames} dropped"


def cameras_text(snaps: Sequence[MetricsSnapshot], named: bool = True) -> str:
    """The status line of a run with several cameras: each camera's fps, faces and drops, then the
    log; one camera's line is today's (``named``: with its name, in a run of several)."""
    if len(snaps) == 1:
        return f"{snaps[0].camera}: {status_text(snaps[0])}" if named else status_text(snaps[0])
    written = sum(s.windows_written for s in snaps)
    held = sum(s.windows_held for s in snaps)
    return " | ".join([camera_text(s) for s in snaps] + [windows_text(written, held, snaps[0].to_sync)])


class StatusLine:
    def __init__(
        self,
        stream: Optional[TextIO] = None,
        is_tty: Optional[bool] = None,
        refresh_s: float = 0.5,
        to_sync: Callable[[], Optional[int]] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.is_tty = self.stream.isatty() if is_tty is None else is_tty
        self.refresh_s = refresh_s
        self.to_sync = to_sync
        self._clock = clock
        self._shown = ""  # the status line now on the terminal
        self._next_refresh = 0.0

    def windows(self, written: int, held: int) -> str:
        """:func:`windows_text` with this line's ``to_sync`` hook."""
        return windows_text(written, held, self.to_sync())

    def update(self, metrics: CameraMetrics) -> None:
        """Every frame: the status line from the metrics (built only when it is redrawn)."""
        self.live(lambda: status_text(metrics.snapshot()))

    def report(self, metrics: CameraMetrics) -> None:
        """Every stats interval: the status line, or a line in a log."""
        self.periodic(status_text(metrics.snapshot()))

    def update_cameras(self, metrics: Mapping[str, CameraMetrics], named: bool = True) -> None:
        """Every step of a loop serving several cameras: one line for all of them."""
        self.live(lambda: cameras_text([m.snapshot() for m in metrics.values()], named))

    def report_cameras(self, metrics: Mapping[str, CameraMetrics], named: bool = True) -> None:
        """Every stats interval: on a terminal the line for all cameras; in a journal a line per camera
        (``named``: the run has several cameras)."""
        snaps = [m.snapshot() for m in metrics.values()]
        if self.is_tty or len(snaps) == 1:
            self.periodic(cameras_text(snaps, named))
            return
        for snap in snaps:
            self.message(f"{snap.camera}: {status_text(snap)}")

    def _fit(self, text: str) -> str:
        # A status line that wraps cannot be redrawn in place: cut it to the terminal's width.
        width = shutil.get_terminal_size((100, 24)).columns
        return text if len(text) < width else text[: max(width - 4, 1)] + "..."

    def _draw(self, text: str) -> None:
        self._shown = self._fit(text)
        self.stream.write(CLEAR_LINE + self._shown)
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line that stays (a closed window, a problem): above the status line on a terminal."""
        if self.is_tty and self._shown:
            self.stream.write(CLEAR_LINE + text + "\n" + self._shown)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def live(self, text: Callable[[], str]) -> None:
        """Called every frame: redraws the terminal's status line at most every ``refresh_s``; nothing
        without a terminal (``text`` is only built when it is shown)."""
        if not self.is_tty:
            return
        now = self._clock()
        if now >= self._next_refresh:
            self._next_refresh = now + self.refresh_s
            self._draw(text())

    def periodic(self, text: str) -> None:
        """Once per stats interval: a line in a log, the status line on a terminal."""
        if self.is_tty:
            self._draw(text)
        else:
            self.message(text)

    def close(self) -> None:
        """Clears the terminal's status line: what follows (the run's summary) is plain lines."""
        if self.is_tty and self._shown:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
            self._shown = ""

"""One camera's running figures: the loop updates one :class:`CameraMetrics`; the status line (and
later a metrics endpoint) reads it through :meth:`CameraMetrics.snapshot`.

Counters only grow (frames, detector passes, milliseconds per stage, windows written, outages,
reconnects, dropped frames, faces counted per emotion), so a reader in another thread can turn
them into rates; the gauges (faces now, windows held, camera up, windows to sync) are the state
at the last update. The ``interval`` figures (fps and mean milliseconds since the last periodic
line) are what the status line shows. Every read and write holds one lock: a snapshot is
consistent with itself.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from fer_edge.camera.stages import STAGES, StageTimes

# Upper bounds (seconds) of the per-stage latency histograms: fixed, so that every device's
# histograms aggregate across the chain (1 ms for a tracker step up to a multi-second stall).
STAGE_BUCKETS_S: Tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class MetricsSnapshot:
    """The figures of one camera at one moment (a copy: safe to keep and read in any thread)."""

    camera: str
    frames: int
    detector_runs: int
    faces_now: int
    stage_ms_total: Dict[str, float]  # milliseconds spent per stage since the start
    interval: StageTimes  # since the last periodic line: fps, mean ms per stage, detector passes
    windows_written: int
    windows_held: int  # closed, waiting in memory for the log to become writable
    windows_closed: int
    camera_up: bool
    down_since: Optional[float]  # when the source dropped, while it is down
    outages: int  # times the source dropped
    outage_s: float  # seconds without a camera in closed windows
    reconnects: int
    dropped_frames: int  # frames the pipeline could not take (a capture thread's count; 0 without)
    to_sync: Optional[int]  # windows waiting for the central database; None without sync
    emotions_total: Dict[str, int] = field(default_factory=dict)  # faces counted per emotion
    # Per stage: frames at or below each bound of STAGE_BUCKETS_S (cumulative), then all frames (+Inf).
    stage_buckets: Dict[str, Tuple[int, ...]] = field(default_factory=dict)


class CameraMetrics:
    """Thread-safe figures of one camera (``camera`` is its label: ``cam0`` for the single camera)."""

    def __init__(
        self,
        camera: str = "cam0",
        labels: Iterable[str] = (),
        to_sync: Callable[[], Optional[int]] = lambda: None,
    ) -> None:
        self.camera = camera
        # The forwarder to the central database plugs its "windows waiting" count in here.
        self.to_sync = to_sync
        self._lock = threading.Lock()
        self._total = StageTimes()
        self._interval = StageTimes()
        self._faces_now = 0
        self._windows_written = 0
        self._windows_held = 0
        self._windows_closed = 0
        self._down_since: Optional[float] = None
        self._outages = 0
        self._outage_s = 0.0
        self._reconnects = 0
        self._dropped = 0
        self._emotions: Dict[str, int] = dict.fromkeys(labels, 0)
        # One count per bucket (not cumulative) and a last one for beyond the largest bound.
        self._buckets: Dict[str, List[int]] = {k: [0] * (len(STAGE_BUCKETS_S) + 1) for k in STAGES}

    # -- updates from the loop --------------------------------------------------------------------

    def frame(self, stage_ms: Dict[str, float], faces: int, seconds: float, detected: bool) -> None:
        """One processed frame: its milliseconds per stage and the faces in view after it."""
        with self._lock:
            self._total.add(stage_ms, faces, seconds, detected)
            self._interval.add(stage_ms, faces, seconds, detected)
            self._faces_now = faces
            for stage, ms in stage_ms.items():
                counts = self._buckets.get(stage)
                if counts is not None:
                    counts[bisect.bisect_left(STAGE_BUCKETS_S, ms / 1000.0)] += 1

    def camera_down(self, since: float) -> None:
        with self._lock:
            if self._down_since is None:
                self._down_since = since
                self._outages += 1
            self._faces_now = 0

    def camera_back(self) -> None:
        with self._lock:
            self._down_since = None

    def window_closed(self, counts: Dict[str, int], outage_s: float) -> None:
        with self._lock:
            self._windows_closed += 1
            self._outage_s += outage_s
            for emotion, n in counts.items():
                self._emotions[emotion] = self._emotions.get(emotion, 0) + n

    def log_state(self, written: int, held: int) -> None:
        """The mood log's windows written and windows held in memory (it cannot be written now)."""
        with self._lock:
            self._windows_written, self._windows_held = written, held

    def source_state(self, reconnects: int, dropped_frames: int = 0) -> None:
        with self._lock:
            self._reconnects, self._dropped = reconnects, dropped_frames

    def next_interval(self) -> StageTimes:
        """Ends the interval the status line reports on; returns it and starts the next."""
        with self._lock:
            ended, self._interval = self._interval, StageTimes()
            return ended

    # -- reads --------------------------------------------------------------------------------------

    @property
    def total(self) -> StageTimes:
        with self._lock:
            return _copy(self._total)

    def snapshot(self) -> MetricsSnapshot:
        waiting = self.to_sync()  # outside the lock: the forwarder's count is its own
        with self._lock:
            return MetricsSnapshot(
                camera=self.camera,
                frames=self._total.frames,
                detector_runs=self._total.detector_runs,
                faces_now=self._faces_now,
                stage_ms_total={k: self._total.ms.get(k, 0.0) for k in STAGES},
                interval=_copy(self._interval),
                windows_written=self._windows_written,
                windows_held=self._windows_held,
                windows_closed=self._windows_closed,
                camera_up=self._down_since is None,
                down_since=self._down_since,
                outages=self._outages,
                outage_s=round(self._outage_s, 3),
                reconnects=self._reconnects,
                dropped_frames=self._dropped,
                to_sync=waiting,
                emotions_total=dict(self._emotions),
                stage_buckets={k: _cumulative(v) for k, v in self._buckets.items()},
            )


def _copy(times: StageTimes) -> StageTimes:
    return StageTimes(times.frames, times.faces, times.detector_runs, times.seconds, dict(times.ms))


def _cumulative(counts: List[int]) -> Tuple[int, ...]:
    out, running = [], 0
    for n in counts:
        running += n
        out.append(running)
    return tuple(out)

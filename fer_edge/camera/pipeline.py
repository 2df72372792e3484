"""The camera loop: frames -> faces (the detector every few frames, the tracker in between) ->
one batched classification of the faces due for it -> per-track smoothing -> mood log.

The loop is a plain object of its parts (source, detector, classifier, log), so tests can drive it
with fakes; ``camera.wiring`` builds the parts from options for ``run`` and ``bench --camera``.
Its state lives in three places: the open window (``windows.OpenWindow``), the figures a reader
may want (``metrics.CameraMetrics``: the status line, later a metrics endpoint) and the few
counters of the scheduler here. It stops when the source ends, at ``max_frames``, when a sink
(the display window) closes, or when ``stop`` (a ``threading.Event``, set by a signal handler)
is set; the open window is flushed however it ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

import numpy as np

from fer_edge.camera.crop import CropRule
from fer_edge.camera.detection import NO_DETECTIONS, Detections, FaceDetector
from fer_edge.camera.metrics import CameraMetrics
from fer_edge.camera.options import LoopOptions
from fer_edge.camera.schedule import Classifier, batch_probs, face_batch
from fer_edge.camera.settings import check_options, check_tracker
from fer_edge.camera.sources import Outage
from fer_edge.camera.stages import StageTimes, Stopwatch
from fer_edge.camera.tracking import IouTracker, Track, detection_due, needs_classification
from fer_edge.camera.windows import OpenWindow, WindowSummary, describe_window
from fer_edge.camera.zones import Zone, check_zones, drop_in_zones
from fer_edge.core.optional import import_cv2

__all__ = [
    "CameraLoop", "Classifier", "FrameReader", "FrameSink", "LoopOptions", "RunStats", "StatusSink", "WindowLog",
    "check_options", "check_tracker", "describe_window", "detection_due", "needs_classification", "run_loop",
]


class FrameReader(Protocol):
    def read(self) -> np.ndarray | Outage | None: ...


class WindowLog(Protocol):
    """Where closed windows go: a ``MoodLog``, or a ``BufferedLog`` that holds what it cannot write."""

    @property
    def windows_written(self) -> int: ...

    @property
    def waiting(self) -> int: ...

    def write_window(self, summary: WindowSummary, tracks: list[Track]) -> object: ...

    def poll(self) -> None: ...


class StatusSink(Protocol):
    """The --stats line (``status.StatusLine``): it builds its text from the metrics it is given."""

    def update(self, metrics: CameraMetrics) -> None: ...

    def report(self, metrics: CameraMetrics) -> None: ...


class FrameSink(Protocol):
    """Where annotated frames go: the --display window and/or the --save-video file."""

    def show(self, frame: np.ndarray, tracks: list[Track], labels: tuple[str, ...]) -> bool: ...


@dataclass
class FrameWork:
    """One frame between :meth:`CameraLoop.begin_frame` and :meth:`CameraLoop.finish_frame`."""

    frame: np.ndarray
    now: float  # the frame's time on the loop's clock
    t_frame: float  # perf_counter when its capture began
    watch: Stopwatch
    stage_ms: dict[str, float]
    # The frame's number on its camera's clock (frames the camera delivered, dropped ones too): the
    # scheduler's and the tracker's frame count, so a dropped frame is a frame that passed, and a
    # camera that drops frames under load schedules its passes and moves its tracks as without drops.
    index: int = 0
    detected: bool = False  # the detector is due on this frame
    detections: Detections = field(default_factory=lambda: NO_DETECTIONS)  # those of its pass, if any
    due: list[Track] = field(default_factory=list)  # tracks whose faces are in ``batch``
    batch: Optional[np.ndarray] = None  # the classifier's input for them; None: nothing to classify


@dataclass
class RunStats:
    total: StageTimes = field(default_factory=StageTimes)
    windows: list[WindowSummary] = field(default_factory=list)
    tracks_seen: int = 0
    stopped_by: str = "end of source"

    def to_dict(self) -> dict[str, Any]:
        return {
            "timing": self.total.to_dict(),
            "windows": len(self.windows),
            "tracks": self.tracks_seen,
            "stopped_by": self.stopped_by,
        }


class CameraLoop:
    """One camera's loop over its parts; :meth:`run` returns the run's :class:`RunStats`."""

    def __init__(
        self,
        source: FrameReader,
        detector: FaceDetector,
        classifier: Classifier,
        rule: CropRule,
        log: WindowLog,
        options: LoopOptions,
        *,
        tracker: Optional[IouTracker] = None,
        metrics: Optional[CameraMetrics] = None,
        stop: Optional[threading.Event] = None,
        should_stop: Callable[[], bool] = lambda: False,
        echo: Callable[[str], None] = print,
        sinks: Sequence[FrameSink] = (),
        status: Optional[StatusSink] = None,
        zones: Sequence[Zone] = (),
    ) -> None:
        check_options(options)
        self.tracker = tracker or IouTracker()
        check_tracker(self.tracker)
        self.source, self.detector, self.classifier, self.rule, self.log = source, detector, classifier, rule, log
        self.options = options
        self.labels = tuple(classifier.labels)
        self.metrics = metrics or CameraMetrics(labels=self.labels)
        self.stop = stop or threading.Event()
        self._should_stop = should_stop
        self._echo, self._sinks, self._status = echo, list(sinks), status
        self._cv2 = import_cv2()
        self.stats = RunStats()
        self._t0 = time.time()
        self.window = OpenWindow(self._t0, options.window_s)
        self._frame_index = 0  # frames processed
        self._last_index = -1  # the camera's number of the last frame processed (FrameWork.index)
        self._last_now = self._t0  # the clock of the last frame processed
        self._last_detect: Optional[int] = None
        self._classify_round = 0  # which view the rotating views are at
        self._max_track_id = 0
        self._last_print = time.perf_counter()
        self._ended_by: Optional[str] = None  # a reason to end other than a signal (the display closed)
        self.zones = tuple(zones)  # faces whose centre is inside one are never tracked or classified
        self.reporting = True  # the periodic line; a loop serving several cameras reports for all

    # -- the loop -----------------------------------------------------------------------------------

    def run(self) -> RunStats:
        """Run until the source ends, ``max_frames``, a closed display or a stop; always flushes the
        open window."""
        try:
            while self.may_continue() and self._step():
                pass
        finally:
            self.end()
        if self.stats.total.frames:
            self._echo("total: " + self.stats.total.line())
        return self.stats

    def end(self) -> RunStats:
        """The window in progress is flushed however the loop ended (end of file, signal, error),
        also one the camera was down for: the gap is in the log."""
        self._flush()
        self.stats.tracks_seen = self._max_track_id
        self.stats.total = self.metrics.total
        return self.stats

    def _stop_requested(self) -> bool:
        return self.stop.is_set() or self._should_stop()

    def may_continue(self) -> bool:
        if self._ended_by is not None:
            self.stats.stopped_by = self._ended_by
            return False
        if self._stop_requested():
            self.stats.stopped_by = "signal"
            return False
        if self.options.max_frames is not None and self._frame_index >= self.options.max_frames:
            self.stats.stopped_by = "max frames"
            return False
        return True

    def _clock(self) -> float:
        # A video file runs on its own clock (frame index / fps from the run's start), so it gives
        # the same windows however fast it is processed; a live source uses the wall clock.
        if self.options.media_fps:
            return self._t0 + self._frame_index / self.options.media_fps
        return time.time()

    def _step(self) -> bool:
        """One read from the source; False at its end."""
        t_frame = time.perf_counter()
        frame = self.source.read()
        capture_ms = (time.perf_counter() - t_frame) * 1000.0
        if frame is None:
            self.stats.stopped_by = "signal" if self._stop_requested() else "end of source"
            return False
        now = self._clock()
        self.metrics.source_state(getattr(self.source, "reconnects", 0))
        if isinstance(frame, Outage):
            self.outage(now)
            return True
        work = self.begin_frame(frame, now, t_frame, capture_ms)
        self.detect(work)
        self.track(work)
        probs = None
        t_infer = time.perf_counter()
        if work.batch is not None:
            probs = batch_probs(self.classifier.infer(work.batch), self.options)
        self.finish_frame(work, probs, (time.perf_counter() - t_infer) * 1000.0)
        return True

    def clock_at(self, position: int, ts: float) -> float:
        """The time of a captured frame: a file's own clock (its ``position`` / fps), else ``ts``."""
        if self.options.media_fps:
            return self._t0 + position / self.options.media_fps
        return ts

    def begin_frame(
        self, frame: np.ndarray, now: float, t_frame: float, capture_ms: float, position: Optional[int] = None
    ) -> FrameWork:
        """A frame's work before the detector: the windows due, and whether the detector runs on it
        (``work.detected``). Then :meth:`detect` (the one step that may run on a worker thread, beside
        other cameras' detector passes), :meth:`track` (the faces due for classification:
        ``work.batch``, None when none is due); the caller classifies the batch, alone or with other
        cameras' batches, and hands the probabilities to :meth:`finish_frame`. ``position``: the
        frame's number on the camera's clock (``capture.Captured.position``, dropped frames counted);
        None: the frames processed."""
        watch = Stopwatch()
        if self.zones and not self._frame_index:
            check_zones(self.zones, frame.shape[1], frame.shape[0], f"camera {self.metrics.camera!r}")
        if self.window.down_since is not None:
            self.window.camera_back(now)
            self.metrics.camera_back()
        self.close_due_windows(now)
        stage_ms = {"capture": capture_ms, "log": watch.lap()}
        index = self._frame_index if position is None else max(position, self._last_index + 1)
        work = FrameWork(frame, now, t_frame, watch, stage_ms, index=index)
        work.detected = detection_due(self.options, self.tracker, index, self._last_detect)
        return work

    def detect(self, work: FrameWork) -> None:
        """The detector on the frame when it is due, faces in the exclusion zones dropped. It reads
        only the frame and the detector, so several cameras' passes may run at once on worker threads."""
        started = time.perf_counter()
        if work.detected:
            work.detections = drop_in_zones(self.detector.detect(work.frame), self.zones)
        work.stage_ms["detect"] = (time.perf_counter() - started) * 1000.0

    def finish_frame(self, work: FrameWork, probs: Optional[np.ndarray], classify_ms: float = 0.0) -> None:
        """The rest of a frame's work once its faces are classified (``classify_ms``: the classifier
        call, shared with other cameras' faces in a loop serving several): smoothing, sinks, the log,
        figures."""
        work.watch.lap()  # what ran between track and now (other cameras' frames) is no stage of this one
        index = work.index
        if probs is not None:
            for track, p in zip(work.due, probs):
                self.tracker.set_probs(track, p, index)
        work.stage_ms["classify"] = work.stage_ms.get("classify", 0.0) + classify_ms + work.watch.lap()
        tracks = self.tracker.accumulate()
        self._max_track_id = max([self._max_track_id, *(t.id for t in tracks)])
        self._frame_index += 1
        self._last_index = index
        self._last_now = work.now
        self.window.frames += 1
        for sink in self._sinks:
            if not sink.show(work.frame, tracks, self.labels):
                self._ended_by = "display closed"
        self.log.poll()  # retries a log write that failed, when its backoff is due (counted in "other")
        self.metrics.log_state(self.log.windows_written, self.log.waiting)
        work.stage_ms["other"] = work.watch.lap()
        self.metrics.frame(work.stage_ms, len(tracks), time.perf_counter() - work.t_frame, work.detected)
        if self.reporting:
            self._report()

    def track(self, work: FrameWork) -> None:
        """Detect less, track more: a detector pass (:meth:`detect`) moves the tracks onto its faces;
        in between the tracker moves the boxes on. Tracks that are new (on each of their first
        frames), due again, or whose box changed a lot are due for classification
        (``tracking.needs_classification``): their crops are ``work.batch``, for one batched call
        (with other cameras' faces, in a loop serving several)."""
        index = work.index
        work.watch.lap()  # the wait for the detector (other cameras' passes) is no stage of this frame
        if work.detected:
            self._last_detect = index
            self.tracker.match(work.detections.boxes, work.now, index, work.detections.landmarks)
        else:
            self.tracker.predict(index)
        work.stage_ms["track"] = work.watch.lap()
        work.due = [
            t for t in self.tracker.tracks
            if t.missed == 0 and needs_classification(t, self.options, index, work.detected)
        ]
        if work.due:
            cv2 = self._cv2
            frame = work.frame
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
            work.batch = face_batch(gray, work.due, self.rule, self.options, self._classify_round)
            self._classify_round += 1
        work.stage_ms["classify"] = work.watch.lap()

    def outage(self, now: float) -> None:
        """A live source is down: windows still close on time, with the gap recorded."""
        if self.window.camera_down(now):
            self.metrics.camera_down(now)
        self.close_due_windows(now)
        self.log.poll()
        self.metrics.log_state(self.log.windows_written, self.log.waiting)
        if self._status is not None:
            self._status.update(self.metrics)

    def _report(self) -> None:
        """The status line every frame (redrawn at its own pace), a line per stats interval."""
        if self._status is not None:
            self._status.update(self.metrics)
        if time.perf_counter() - self._last_print < self.options.stats_every_s:
            return
        if self._status is not None:
            self._status.report(self.metrics)
            self.metrics.next_interval()
        else:
            self._echo(self.metrics.next_interval().line())
        self._last_print = time.perf_counter()

    # -- windows --------------------------------------------------------------------------------------

    def close_due_windows(self, now: float) -> None:
        # Every window that ended before ``now`` (several, if a camera was down), each on time.
        for end in self.window.due(now):
            self._close_window(end, partial=False)

    def _close_window(self, end_ts: float, partial: bool) -> None:
        counted = self.tracker.close_window()
        summary = self.window.close(self.labels, counted, end_ts, partial)
        self.log.write_window(summary, counted)
        self.stats.windows.append(summary)
        self.metrics.window_closed(summary.counts, summary.outage_s)
        self.metrics.log_state(self.log.windows_written, self.log.waiting)
        self._echo(describe_window(summary))

    def _flush(self) -> None:
        if not self.window.has_content:
            return
        end = self._last_now + (1.0 / self.options.media_fps if self.options.media_fps else 0.0)
        if self.window.down_since is not None:
            end = max(end, self._clock())
        window_end = self.window.end
        self._close_window(min(end, window_end), partial=end < window_end - 1e-6)


def run_loop(
    source: FrameReader,
    detector: FaceDetector,
    classifier: Classifier,
    rule: CropRule,
    log: WindowLog,
    options: LoopOptions,
    should_stop: Callable[[], bool] = lambda: False,
    echo: Callable[[str], None] = print,
    sinks: Optional[Sequence[FrameSink]] = None,
    tracker: Optional[IouTracker] = None,
    status: Optional[StatusSink] = None,
    metrics: Optional[CameraMetrics] = None,
    stop: Optional[threading.Event] = None,
) -> RunStats:
    """:class:`CameraLoop` in one call: run until the source ends, ``max_frames`` or a stop
    (``should_stop()`` or ``stop`` set); always flushes the open window."""
    return CameraLoop(
        source, detector, classifier, rule, log, options, tracker=tracker, metrics=metrics, stop=stop,
        should_stop=should_stop, echo=echo, sinks=sinks or (), status=status,
    ).run()

"""The camera loop: frames -> faces (the detector every few frames, the tracker in between) ->
one batched classification of the faces due for it -> per-track smoothing -> mood log.

The loop is a plain function of its parts (source, detector, backend, log), so tests can drive it
with fakes and the CLI only wires options to parts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from fer_edge.camera.align import aligned_views
from fer_edge.camera.crop import CropRule, average_views, face_views, one_view
from fer_edge.camera.detection import Detections, FaceDetector
from fer_edge.camera.moodlog import WindowSummary, iso, summarize_window
from fer_edge.camera.options import LoopOptions
from fer_edge.camera.sources import Outage, import_cv2
from fer_edge.camera.stages import StageTimes, Stopwatch
from fer_edge.camera.tracking import IouTracker, Track, detection_due, needs_classification
from fer_edge.errors import FerEdgeError
from fer_edge.metrics import softmax


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
    """The --stats line: on a terminal one line kept up to date in place, else a line per interval."""

    def windows(self, written: int, held: int) -> str: ...

    def live(self, text: Callable[[], str]) -> None: ...

    def periodic(self, text: str) -> None: ...


class Classifier(Protocol):
    labels: tuple[str, ...]

    def infer(self, batch: np.ndarray) -> np.ndarray: ...


class FrameSink(Protocol):
    """Where annotated frames go: the --display window and/or the --save-video file."""

    def show(self, frame: np.ndarray, tracks: list[Track], labels: tuple[str, ...]) -> bool: ...


def check_options(options: LoopOptions) -> None:
    """One-line errors for out-of-range loop options, named as the CLI names them."""
    if options.views not in (1, 2, 6):
        raise FerEdgeError(f"--views must be 1, 2 or 6, got {options.views}")
    for flag, value in (("--detect-every", options.detect_every), ("--reinfer-every", options.reinfer_every)):
        if not 1 <= value <= 1000:
            raise FerEdgeError(f"{flag} must be a whole number of frames from 1 to 1000, got {value}")
    if not 0.0 <= options.reinfer_iou <= 1.0:
        raise FerEdgeError(f"--reinfer-iou must be from 0 to 1 (0: never early), got {options.reinfer_iou:g}")


def check_tracker(tracker: IouTracker) -> None:
    if not 0.0 < tracker.iou_threshold <= 1.0:
        raise FerEdgeError(f"--track-iou must be above 0 and at most 1, got {tracker.iou_threshold:g}")
    if not 0.0 < tracker.alpha <= 1.0:
        raise FerEdgeError(f"--smoothing must be above 0 and at most 1, got {tracker.alpha:g}")
    if not 0 <= tracker.max_missed <= 10000:
        raise FerEdgeError(f"--max-missed must be from 0 to 10000 frames, got {tracker.max_missed}")
    if not 1 <= tracker.min_hits <= 1000:
        raise FerEdgeError(f"--min-hits must be from 1 to 1000 detections, got {tracker.min_hits}")


def classify_tracks(
    gray: np.ndarray, tracks: list[Track], classifier: Classifier, rule: CropRule, options: LoopOptions, k: int
) -> np.ndarray:
    """Class probabilities ``[len(tracks), C]`` for these tracks' faces: one batched call."""
    boxes = np.stack([t.box for t in tracks])
    if options.align:
        landmarks = np.stack([t.landmarks for t in tracks])
        batch = aligned_views(gray, boxes, landmarks, rule, options.views, k)
        return softmax(classifier.infer(batch))
    if options.rotate_views:
        return softmax(classifier.infer(one_view(gray, boxes, rule, options.views, k)))
    batch = face_views(gray, boxes, rule, options.views)
    return average_views(softmax(classifier.infer(batch)), options.views)


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


def describe_window(w: WindowSummary) -> str:
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


def run_loop(
    source: FrameReader,
    detector: FaceDetector,
    classifier: Classifier,
    rule: CropRule,
    log: WindowLog,
    options: LoopOptions,
    should_stop: Callable[[], bool] = lambda: False,
    echo: Callable[[str], None] = print,
    sinks: list[FrameSink] | None = None,
    tracker: IouTracker | None = None,
    status: StatusSink | None = None,
) -> RunStats:
    """Run until the source ends, ``max_frames`` or ``should_stop()``; always flushes the open window."""
    cv2 = import_cv2()
    check_options(options)
    tracker = tracker or IouTracker()
    check_tracker(tracker)
    labels = tuple(classifier.labels)
    stats, recent = RunStats(), StageTimes()
    wall0 = time.time()
    window_start = wall0
    window_frames = 0
    last_now = wall0
    last_print = time.perf_counter()
    frame_index = 0
    max_track_id = 0
    faces_now = 0
    window_outage = 0.0  # seconds of the open window without a camera
    down_since: float | None = None  # when the live source dropped, while it is down
    last_detect: int | None = None
    classify_round = 0  # which view the rotating views are at

    def clock() -> float:
        if options.media_fps:
            return wall0 + frame_index / options.media_fps
        return time.time()

    def close_window(end_ts: float, partial: bool) -> None:
        nonlocal window_frames, window_outage
        counted = tracker.close_window()
        if down_since is not None:
            window_outage += end_ts - max(down_since, window_start)
        summary = summarize_window(labels, counted, window_start, end_ts, window_frames, partial, window_outage)
        log.write_window(summary, counted)
        stats.windows.append(summary)
        window_frames, window_outage = 0, 0.0
        echo(describe_window(summary))

    def close_due_windows(now: float) -> None:
        # Every window that ended before ``now`` (several, if a camera was down), each on time.
        nonlocal window_start
        while now >= window_start + options.window_s:
            close_window(window_start + options.window_s, partial=False)
            window_start += options.window_s

    def status_text() -> str:
        # What matters first comes first: a narrow terminal cuts the line at its width.
        assert status is not None
        means = recent.mean_ms()
        stages = " | ".join(f"{k} {means[k]:.1f} ms" for k in means)
        windows = status.windows(log.windows_written, log.waiting)
        detector = f"detector on {recent.detector_runs}/{recent.frames} frames"
        return f"{recent.fps:.1f} fps | faces now {faces_now} | {windows} | {stages} | {detector}"

    def outage_text() -> str:
        assert status is not None
        windows = status.windows(log.windows_written, log.waiting)
        return f"no camera since {iso(down_since or last_now)} | {windows}"

    try:
        while True:
            if should_stop():
                stats.stopped_by = "signal"
                break
            if options.max_frames is not None and frame_index >= options.max_frames:
                stats.stopped_by = "max frames"
                break
            watch = Stopwatch()
            t_frame = time.perf_counter()
            frame = source.read()
            capture_ms = watch.lap()
            if frame is None:
                stats.stopped_by = "signal" if should_stop() else "end of source"
                break
            now = clock()
            if isinstance(frame, Outage):
                # A live source is down: windows still close on time, with the gap recorded.
                if down_since is None:
                    down_since, faces_now = now, 0
                close_due_windows(now)
                log.poll()
                if status is not None:
                    status.live(outage_text)
                continue
            if down_since is not None:
                window_outage += now - max(down_since, window_start)
                down_since = None
            close_due_windows(now)

            log_ms = watch.lap()

            # Detect less, track more: the detector runs when due; in between the tracker moves
            # the boxes on. Classification happens at detector passes (fresh boxes and landmarks),
            # only for tracks that are new, due again, or whose box changed a lot: one batch.
            detections = Detections()
            detected = detection_due(options, tracker, frame_index, last_detect)
            if detected:
                detections = detector.detect(frame)
                last_detect = frame_index
            detect_ms = watch.lap()
            if detected:
                tracker.match(detections.boxes, now, frame_index, detections.landmarks)
            else:
                tracker.predict(frame_index)
            track_ms = watch.lap()
            due = [
                t for t in tracker.tracks
                if t.missed == 0 and needs_classification(t, options, frame_index, detected)
            ]
            if due:
                gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
                probs = classify_tracks(gray, due, classifier, rule, options, classify_round)
                classify_round += 1
                for track, p in zip(due, probs):
                    tracker.set_probs(track, p, frame_index)
            classify_ms = watch.lap()
            tracks = tracker.accumulate()
            faces_now = len(tracks)
            max_track_id = max([max_track_id, *(t.id for t in tracks)])
            window_frames += 1
            frame_index += 1
            last_now = now
            for sink in sinks or []:
                if not sink.show(frame, tracks, labels):
                    stats.stopped_by = "display closed"
                    should_stop = lambda: True  # noqa: E731  (ends the loop at the top)
            log.poll()  # retries a log write that failed, when its backoff is due (counted in "other")
            other_ms = watch.lap()
            stage_ms = {
                "capture": capture_ms,
                "detect": detect_ms,
                "track": track_ms,
                "classify": classify_ms,
                "log": log_ms,
                "other": other_ms,
            }
            seconds = time.perf_counter() - t_frame
            stats.total.add(stage_ms, len(tracks), seconds, detected)
            recent.add(stage_ms, len(tracks), seconds, detected)
            if status is not None:
                status.live(status_text)
            if time.perf_counter() - last_print >= options.stats_every_s:
                if status is not None:
                    status.periodic(status_text())
                else:
                    echo(recent.line())
                recent, last_print = StageTimes(), time.perf_counter()
    finally:
        # The window in progress is flushed however the loop ended (end of file, signal, error),
        # also one the camera was down for: the gap is in the log.
        if window_frames or window_outage or down_since is not None:
            end = last_now + (1.0 / options.media_fps if options.media_fps else 0.0)
            if down_since is not None:
                end = max(end, clock())
            window_end = window_start + options.window_s
            close_window(min(end, window_end), partial=end < window_end - 1e-6)
        stats.tracks_seen = max_track_id
    if stats.total.frames:
        echo("total: " + stats.total.line())
    return stats

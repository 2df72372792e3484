"""What one camera pipeline is made of, as options: the classifier and the detector (files and
devices), the detector's limits, the scheduler (detect less, track more), the tracker and the
window. Built once from the command line (``fer-edge run`` and ``fer-edge bench --camera`` take the
same camera options) and turned into parts by ``camera.wiring.build_pipeline``.

No heavy imports: checking options costs nothing before a model loads or a camera opens.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Union

from fer_edge.camera.options import TRACKER, TUNED, LoopOptions, TrackerOptions
from fer_edge.camera.tracking import IouTracker
from fer_edge.core.errors import FerEdgeError


@dataclass(frozen=True)
class CameraSettings:
    model: Optional[Path] = None  # None: the shipped FER2013 INT8 model laid out for ``device``
    device: str = "auto"  # the classifier's: auto, cpu, cuda or tensorrt
    # CPU threads per inference call (--threads). One: a camera's calls are small and come 30 times
    # a second; ONNX Runtime's default (a thread per core, spinning between calls) kept a core busy
    # for one 30-fps camera and bought no speed on two cores (benchmarks/camera/streams.md). With
    # several cameras their detector passes run at once, a core each (multiloop.detect_workers).
    threads: int = 1
    detector_model: Optional[Path] = None  # None: YuNet from the cache dir, else OpenCV's Haar
    detector_device: str = "auto"  # a YuNet .onnx on ONNX Runtime's auto/cpu/cuda/tensorrt, or opencv
    min_face: int = 40  # smallest face classified, in frame pixels
    detect_width: Optional[int] = None  # frames shrunk to this width for detection only
    loop: LoopOptions = field(default_factory=lambda: replace(TUNED))
    tracker: TrackerOptions = field(default_factory=TrackerOptions)

    def check(self) -> CameraSettings:
        """One-line errors for out-of-range options, named as the CLI names them; returns self."""
        check_options(self.loop)
        check_tracker(self.tracker)
        return self

    def every_frame(self) -> CameraSettings:
        """The same pipeline with the detector and the classifier on every frame (no tracking shortcuts)."""
        loop = replace(self.loop, detect_every=1, adaptive=False, reinfer_every=1, reinfer_iou=0.0)
        return replace(self, loop=loop)

    def new_tracker(self) -> IouTracker:
        t = self.tracker
        return IouTracker(iou_threshold=t.iou_threshold, alpha=t.alpha, max_missed=t.max_missed,
                          min_hits=t.min_hits, keep_passes=t.keep_passes, count_detected=t.count_detected,
                          max_missed_unconfirmed=t.max_missed_unconfirmed)


def camera_settings(
    *,
    model: Optional[Path],
    device: str,
    threads: Optional[int],
    detector_model: Optional[Path],
    detector_device: str,
    min_face: int,
    detect_width: Optional[int],
    window: float,
    views: int,
    all_views: bool,
    detect_every: int,
    adaptive: bool,
    reinfer_every: int,
    reinfer_iou: float,
    align: bool,
    track_iou: float,
    max_missed: int,
    min_hits: int,
    settle: int = TUNED.settle,
    classify_between: bool = TUNED.classify_between,
    chase: bool = TUNED.chase,
    drift: float = TUNED.drift,
    small_face: int = TUNED.small_face,
    keep_passes: int = TRACKER.keep_passes,
    max_missed_new: Optional[int] = TRACKER.max_missed_unconfirmed,
) -> CameraSettings:
    """The settings from the camera options of ``run`` / ``bench --camera`` (checked). The scheduler's
    fields a command does not pass keep run's defaults (``TUNED``, ``TrackerOptions()``)."""
    loop = replace(
        TUNED, window_s=window, views=views, rotate_views=not all_views, detect_every=detect_every,
        adaptive=adaptive, reinfer_every=reinfer_every, reinfer_iou=reinfer_iou, align=align, settle=settle,
        classify_between=classify_between, chase=chase, drift=drift, small_face=small_face,
    )
    tracker = TrackerOptions(iou_threshold=track_iou, max_missed=max_missed, min_hits=min_hits,
                             keep_passes=keep_passes, max_missed_unconfirmed=max_missed_new)
    return CameraSettings(
        model=model, device=device, threads=CameraSettings.threads if threads is None else threads,
        detector_model=detector_model, detector_device=detector_device, min_face=min_face,
        detect_width=detect_width, loop=loop, tracker=tracker,
    ).check()


def check_options(options: LoopOptions) -> None:
    """One-line errors for out-of-range loop options, named as the CLI names them."""
    if options.views not in (1, 2, 6):
        raise FerEdgeError(f"--views must be 1, 2 or 6, got {options.views}")
    for flag, value in (("--detect-every", options.detect_every), ("--reinfer-every", options.reinfer_every)):
        if not 1 <= value <= 1000:
            raise FerEdgeError(f"{flag} must be a whole number of frames from 1 to 1000, got {value}")
    if not 0.0 <= options.reinfer_iou <= 1.0:
        raise FerEdgeError(f"--reinfer-iou must be from 0 to 1 (0: never early), got {options.reinfer_iou:g}")
    if not 0 <= options.settle <= 1000:
        raise FerEdgeError(f"--settle must be a whole number of frames from 0 to 1000, got {options.settle}")
    if not 0 <= options.small_face <= 4096:
        raise FerEdgeError(f"--small-face must be from 0 to 4096 pixels (0: never), got {options.small_face}")
    if not 0.0 < options.drift <= 10.0:
        raise FerEdgeError(f"--drift must be above 0 and at most 10 (face widths), got {options.drift:g}")


def check_tracker(tracker: Union[TrackerOptions, IouTracker]) -> None:
    if not 0.0 < tracker.iou_threshold <= 1.0:
        raise FerEdgeError(f"--track-iou must be above 0 and at most 1, got {tracker.iou_threshold:g}")
    if not 0.0 < tracker.alpha <= 1.0:
        raise FerEdgeError(f"--smoothing must be above 0 and at most 1, got {tracker.alpha:g}")
    if not 0 <= tracker.max_missed <= 10000:
        raise FerEdgeError(f"--max-missed must be from 0 to 10000 frames, got {tracker.max_missed}")
    if not 1 <= tracker.min_hits <= 1000:
        raise FerEdgeError(f"--min-hits must be from 1 to 1000 detections, got {tracker.min_hits}")
    if not 1 <= tracker.keep_passes <= 1000:
        raise FerEdgeError(f"--keep-passes must be from 1 to 1000 detector passes, got {tracker.keep_passes}")
    unconfirmed = tracker.max_missed_unconfirmed
    if unconfirmed is not None and not 0 <= unconfirmed <= 10000:
        raise FerEdgeError(f"--max-missed-new must be from 0 to 10000 frames, got {unconfirmed}")

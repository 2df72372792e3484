"""The camera loop's options (no heavy imports: the CLI reads the defaults at import time).

``LoopOptions()`` is the loop as it was before detect-less/track-more: the detector and the
classifier on every frame, six rotating views, no alignment. ``TUNED`` is the default of
``fer-edge run``, chosen by measurement (benchmarks/camera/, docs/camera.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LoopOptions:
    window_s: float = 60.0
    max_frames: int | None = None
    stats_every_s: float = 10.0
    # For a video file, time is the file's own clock (frame index / fps) from the run's start, so
    # a file gives the same windows however fast it is processed; a live source uses the wall clock.
    media_fps: float | None = None
    views: int = 6  # crops per face averaged (see crop.face_views)
    rotate_views: bool = True  # one view per face per classification, cycling (cost of a single crop)
    # Detect less, track more (DeepStream's interval and secondary re-inference, docs/camera.md):
    detect_every: int = 1  # run the detector every N frames; the tracker carries boxes in between
    adaptive: bool = False  # ... and on every frame while a track is new or moving fast
    reinfer_every: int = 1  # classify a track again after this many frames (at a detector pass)
    reinfer_iou: float = 0.0  # ... or sooner when its box overlaps the classified one less than this
    # A new track is classified on each of its first ``settle`` frames (one view each: a brief visit
    # is voted on as many looks as when every frame is classified), and (adaptive, settle_detect)
    # the detector runs on those frames too; else the tracker's box is classified in between.
    settle: int = 0
    settle_detect: bool = True
    align: bool = False  # turn faces upright on the landmarks before cropping


# Alignment is off by default: on this model it changed the faces counted right by -2 to +1 points
# (docs/camera.md, "Alignment"), so it stays an option (--align) rather than a cost on every face.
TUNED = LoopOptions(detect_every=5, adaptive=True, reinfer_every=10, reinfer_iou=0.5, align=False, views=6)


@dataclass(frozen=True)
class TrackerOptions:
    """The tracker's defaults (``IouTracker``'s keyword arguments; ``fer-edge run`` --track-iou,
    --smoothing, --max-missed, --min-hits)."""

    iou_threshold: float = 0.3
    alpha: float = 0.3
    max_missed: int = 10
    min_hits: int = 3
    keep_passes: int = 1
    count_detected: bool = True


TRACKER = TrackerOptions()

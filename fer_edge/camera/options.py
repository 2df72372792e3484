"""The camera loop's options (no heavy imports: the CLI reads the defaults at import time).

``LoopOptions()`` is the loop as it was before detect-less/track-more: the detector and the
classifier on every frame, six rotating views, no alignment (the scheduler's other fields change
nothing while both run on every frame). ``TUNED`` is the default of ``fer-edge run``, chosen by
measurement (benchmarks/camera/, docs/camera.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


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
    reinfer_every: int = 1  # classify a track again after this many frames
    reinfer_iou: float = 0.0  # ... or sooner when its box overlaps the classified one less than this
    # A new track is classified on each of its first ``settle`` frames (one view each: a brief visit
    # is voted on as many looks as when every frame is classified).
    settle: int = 6
    # Classify on the tracker's box between detector passes too (a crop costs a fraction of a
    # detector pass); else only at detector passes, and (adaptive) a settling track is detected
    # on every frame.
    classify_between: bool = True
    # (adaptive) Detect on every frame while a track is lost or not yet found in this window.
    chase: bool = True
    # (adaptive) Detect again once a track's predicted box may have slid this share of its width since
    # its last detection (a walker's box drifts off the face; small walking faces are also the ones the
    # detector finds only now and then, so looking more often while they move is what counts them).
    drift: float = 0.25
    # (adaptive) Detect on every frame while a face narrower than this (frame pixels) is in view; 0:
    # never. The detector finds a small face (a passer-by far from the camera) only on some frames,
    # and a track confirms on detections: each frame not looked at is a chance lost to count it.
    small_face: int = 0
    align: bool = False  # turn faces upright on the landmarks before cropping


# Chosen on videos of three kinds (brief visits, people walking and crossing, long stays) so that
# the per-window counts and emotions are as good as detecting and classifying every frame
# (benchmarks/camera/counts_by_video.md); the last round's detect-every-5 / reinfer-every-10 counted
# worse on brief visits and walkers. Small faces (YuNet boxes under 60 px: passers-by, 44-72 px
# faces) are looked for on every frame, as are unconfirmed tracks for 45 frames (tracker below): a
# face the detector finds only now and then is counted as when it looked at every frame. Alignment
# is off: on this model it changed the faces counted right by -2 to +1 points (docs/camera.md,
# "Alignment"), so it stays an option (--align).
TUNED = LoopOptions(detect_every=3, adaptive=True, reinfer_every=3, reinfer_iou=0.5, small_face=60, align=False,
                    views=6)


@dataclass(frozen=True)
class TrackerOptions:
    """The tracker's defaults (``IouTracker``'s keyword arguments; ``fer-edge run`` --track-iou,
    --smoothing, --max-missed, --min-hits, --keep-passes, --max-missed-new)."""

    iou_threshold: float = 0.3
    alpha: float = 0.3
    max_missed: int = 10
    min_hits: int = 3
    # A track ends after max_missed frames without a detection AND this many detector passes that
    # missed it (with the detector every few frames, one or two blinks no longer end a track).
    keep_passes: int = 3
    count_detected: bool = True  # a window counts only the tracks the detector found in it
    # An unconfirmed track (fewer than min_hits detections) survives this many frames without a
    # detection (None: max_missed). A hard face the detector finds once in a while keeps its track,
    # and (adaptive) the detector looking on every frame, until it is found again and confirmed.
    max_missed_unconfirmed: Optional[int] = 45


TRACKER = TrackerOptions()

"""Face tracks across frames (greedy IoU matching, constant-velocity prediction between detector
passes) with per-track smoothing of the emotion.

Smoothing is an exponential moving average of class probabilities, so one frame's flicker does
not change a track's emotion. Ids are stable while a face keeps overlapping its predicted box.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

from fer_edge.camera.options import TRACKER, LoopOptions


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every ``(x, y, w, h)`` box in ``a`` against every one in ``b``: ``[len(a), len(b)]``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, 0][:, None], b[:, 0][None]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, 1][:, None], b[:, 1][None]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


@dataclass
class Track:
    id: int
    box: np.ndarray  # where the face is now: the last detection, moved on by the velocity
    probs: np.ndarray  # smoothed distribution (empty until the track is first classified)
    first_seen: float
    last_seen: float
    hits: int = 1  # frames the track was in view (the mood log's ``frames``)
    missed: int = 0  # consecutive detection passes without a match
    # Sum of the smoothed distribution over this window's frames: the track's vote for the window.
    window_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    window_frames: int = 0
    window_detections: int = 0  # detector passes that found it in this window
    landmarks: np.ndarray = field(default_factory=lambda: np.full((5, 2), np.nan))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # box change per frame
    matched_box: np.ndarray = field(default_factory=lambda: np.zeros(4))  # the last detection's box
    matched_frame: int = 0
    classified_frame: int | None = None  # frame of the last classification
    classified_box: np.ndarray = field(default_factory=lambda: np.zeros(4))
    detections: int = 1  # detector passes that found it (a one-off false detection has 1)
    classifications: int = 0

    @property
    def emotion(self) -> int:
        return int(np.argmax(self.probs))


class IouTracker:
    """Constant-velocity IoU tracker with EMA smoothing.

    Between detector passes, :meth:`predict` moves each box on by its velocity, so a face that
    walks keeps overlapping its track when the detector runs again a few frames later.
    ``alpha``: weight of the newest classification in the EMA (0.3: roughly the last 5-6 count).
    ``max_missed``: frames a track survives without a matching detection (a detector blink does not
    end it; a face that left ends after this many frames).
    ``min_hits``: detections before a track counts in the mood log (one-off false detections don't).
    ``Track.hits`` counts the frames a track was in view, detected or carried by the tracker.
    """

    def __init__(
        self,
        iou_threshold: float = TRACKER.iou_threshold,
        alpha: float = TRACKER.alpha,
        max_missed: int = TRACKER.max_missed,
        min_hits: int = TRACKER.min_hits,
        keep_passes: int = TRACKER.keep_passes,
        count_detected: bool = TRACKER.count_detected,
        max_missed_unconfirmed: Optional[int] = TRACKER.max_missed_unconfirmed,
    ) -> None:
        self.iou_threshold = iou_threshold
        self.alpha = alpha
        self.max_missed = max_missed
        self.min_hits = min_hits
        self.keep_passes = keep_passes
        self.count_detected = count_detected
        self.max_missed_unconfirmed = max_missed_unconfirmed
        self.tracks: list[Track] = []
        self.ended: list[Track] = []  # tracks dropped since the caller last collected them
        self._next_id = 1
        self._frame = -1  # the frame the boxes are at

    def predict(self, frame: int) -> None:
        """Move every track's box to ``frame`` at its constant velocity (no detection needed)."""
        for track in self.tracks:
            ahead = min(frame - track.matched_frame, self.max_missed)
            track.box = track.matched_box + track.velocity * ahead
        self._frame = frame

    def match(
        self, boxes: np.ndarray, now: float, frame: int, landmarks: np.ndarray | None = None
    ) -> list[Track]:
        """Match one detector pass to the tracks (predicted to ``frame``); new faces start tracks.

        Returns each box's track, in box order. Tracks unmatched for more than ``max_missed``
        frames end (they go to :attr:`ended` for the window that is open).
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        marks = (
            np.full((len(boxes), 5, 2), np.nan)
            if landmarks is None
            else np.asarray(landmarks, np.float64).reshape(-1, 5, 2)
        )
        if frame != self._frame:
            self.predict(frame)
        assigned: list[Track | None] = [None] * len(boxes)
        if self.tracks and len(boxes):
            ious = iou_matrix(np.stack([t.box for t in self.tracks]), boxes)
            # Greedy: best pairs first; good enough for a handful of faces, and deterministic.
            taken: set[int] = set()
            for flat in np.argsort(-ious, axis=None):
                ti, bi = np.unravel_index(flat, ious.shape)
                if ious[ti, bi] < self.iou_threshold:
                    break
                if assigned[bi] is not None or int(ti) in taken:
                    continue
                assigned[bi] = self.tracks[ti]
                taken.add(int(ti))
        for bi, match in enumerate(assigned):
            if match is None:
                track = Track(self._next_id, boxes[bi], np.zeros(0), now, now, hits=0,
                              matched_box=boxes[bi], matched_frame=frame, window_detections=1)
                self._next_id += 1
                self.tracks.append(track)
                assigned[bi] = track
            else:
                track = match
                gap = max(frame - track.matched_frame, 1)
                measured = (boxes[bi] - track.matched_box) / gap
                # Half old, half new: one jittery detection does not fling the box.
                track.velocity = measured if track.detections == 1 else 0.5 * (track.velocity + measured)
                track.last_seen = now
                track.detections += 1
                track.window_detections += 1
                track.missed = 0
            track.box = track.matched_box = boxes[bi]
            track.matched_frame = frame
            track.landmarks = marks[bi]
        matched = {id(t) for t in assigned}
        survivors = []
        for track in self.tracks:
            if id(track) not in matched:
                track.missed += 1
            if frame - track.matched_frame > self.frames_kept(track) and track.missed >= self.keep_passes:
                self.ended.append(track)
            else:
                survivors.append(track)
        self.tracks = survivors
        return [t for t in assigned if t is not None]

    def frames_kept(self, track: Track) -> int:
        """Frames ``track`` survives without a detection (longer for an unconfirmed one, if set)."""
        if self.max_missed_unconfirmed is not None and track.detections < self.min_hits:
            return self.max_missed_unconfirmed
        return self.max_missed

    def set_probs(self, track: Track, probs: np.ndarray, frame: int) -> None:
        """Fold one classification into the track's smoothed distribution (the first one sets it)."""
        probs = np.asarray(probs, dtype=np.float64)
        if track.probs.size == 0:
            track.probs = probs.copy()
            track.window_sum = np.zeros_like(probs)
        else:
            track.probs = (1 - self.alpha) * track.probs + self.alpha * probs
        track.classified_frame = frame
        track.classified_box = track.box.copy()
        track.classifications += 1

    def visible(self) -> list[Track]:
        """Tracks matched at the latest detector pass and classified: the faces in view now."""
        return [t for t in self.tracks if t.missed == 0 and t.probs.size]

    def accumulate(self) -> list[Track]:
        """Add this frame to the window vote of every visible track; returns them."""
        shown = self.visible()
        for track in shown:
            track.hits += 1
            track.window_sum = track.window_sum + track.probs
            track.window_frames += 1
        return shown

    def update(self, boxes: np.ndarray, probs: np.ndarray, now: float) -> list[Track]:
        """One frame with a detection and a classification of every box (the detect-every-frame,
        classify-every-frame loop): match, smooth, count. Returns each box's track."""
        frame = self._frame + 1
        tracks = self.match(boxes, now, frame)
        for track, p in zip(tracks, np.asarray(probs)):
            self.set_probs(track, p, frame)
        self.accumulate()
        return tracks

    def close_window(self) -> list[Track]:
        """The confirmed tracks seen in the window that just closed (each once), then reset the sums.

        A track counts in a window only if the detector found it there: a face that left just
        before the window opened, carried on by the tracker until the next detector pass, does not.
        Tracks that ended during the window are included and then forgotten.
        """
        counted = [
            t for t in [*self.ended, *self.tracks]
            if t.window_frames > 0 and t.detections >= self.min_hits
            and (t.window_detections > 0 or not self.count_detected)
        ]
        snapshot = [
            replace(t, box=t.box.copy(), probs=t.probs.copy(), window_sum=t.window_sum.copy())
            for t in counted
        ]
        for t in self.tracks:
            t.window_sum = np.zeros_like(t.window_sum)
            t.window_frames = t.window_detections = 0
        self.ended = []
        return snapshot


# -- the scheduler: when the detector and the classifier run (docs/camera.md, "Detect less, track more")


def detection_due(options: LoopOptions, tracker: IouTracker, frame_index: int, last_detect: int | None) -> bool:
    """Whether the detector runs on this frame: every ``detect_every`` frames, and (adaptive) on
    every frame while a track is unconfirmed; (``chase``) lost or not yet found in this window;
    still settling (classified fewer than ``settle`` times, when classified only at detector
    passes); or seen and drifted a quarter of its width since its last detection."""
    if last_detect is None or frame_index - last_detect >= options.detect_every:
        return True
    if not options.adaptive:
        return False
    for track in tracker.tracks:
        # An unconfirmed face (one the detector found only now and then: a tilted or small face)
        # gets a look on every frame, so it reaches --min-hits as it would with detection on
        # every frame instead of being dropped as a one-off.
        if track.detections < tracker.min_hits:
            return True
        # A face the detector lost (hidden by another, or hard to see) or has not yet found in this
        # window gets a look on every frame: a window counts the faces the detector found in it.
        if options.chase and (track.missed or track.window_detections == 0):
            return True
        # A small face (one the detector finds only now and then) gets a look on every frame.
        if track.box[2] < options.small_face:
            return True
        if track.missed:
            continue
        # A face seen only briefly is classified on its first frames, a view each, as the loop
        # that classifies every frame would: its window vote is not one view's guess.
        if track.classifications < options.settle and not options.classify_between:
            return True
        # Predicted boxes that may have slid a quarter of their width need a fresh look.
        vx, vy = track.velocity[:2].tolist()  # Python floats: numpy's per-call cost, every frame and track
        drift = max(abs(vx), abs(vy)) * (frame_index - track.matched_frame)
        if drift > options.drift * max(track.box[2], 1.0):
            return True
    return False


def needs_classification(track: Track, options: LoopOptions, frame_index: int, detected: bool = True) -> bool:
    """Whether a track in view is classified on this frame (at a detector pass, or on the tracker's
    box in between with ``classify_between``): on each frame while it settles, then when its
    re-inference interval is up or (at a detector pass) its box moved off the classified one."""
    if not (detected or options.classify_between):
        return False
    if track.classifications < options.settle:
        return True
    if track.classified_frame is None or frame_index - track.classified_frame >= options.reinfer_every:
        return True
    if not detected:
        return False
    if options.reinfer_iou > 0:
        overlap = iou_matrix(track.box[None], track.classified_box[None])[0, 0]
        return bool(overlap < options.reinfer_iou)
    return False

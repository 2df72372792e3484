"""Face tracks across frames (greedy IoU matching) with per-track smoothing of the emotion.

Smoothing is an exponential moving average of class probabilities, so one frame's flicker does
not change a track's emotion. Ids are stable while a face keeps overlapping its last box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
    box: np.ndarray
    probs: np.ndarray  # smoothed distribution
    first_seen: float
    last_seen: float
    hits: int = 1
    missed: int = 0  # consecutive frames without a match
    # Sum of the smoothed distribution over this window's frames: the track's vote for the window.
    window_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    window_frames: int = 0

    @property
    def emotion(self) -> int:
        return int(np.argmax(self.probs))


class IouTracker:
    """Greedy IoU tracker with EMA smoothing.

    ``alpha``: weight of the newest frame in the EMA (0.3: roughly the last 5-6 frames matter).
    ``max_missed``: frames a track survives unseen (a blink of the detector does not end it).
    ``min_hits``: frames before a track counts in the mood log (one-frame false detections don't).
    """

    def __init__(
        self, iou_threshold: float = 0.3, alpha: float = 0.3, max_missed: int = 10, min_hits: int = 3
    ) -> None:
        self.iou_threshold = iou_threshold
        self.alpha = alpha
        self.max_missed = max_missed
        self.min_hits = min_hits
        self.tracks: list[Track] = []
        self.ended: list[Track] = []  # tracks dropped since the caller last collected them
        self._next_id = 1

    def update(self, boxes: np.ndarray, probs: np.ndarray, now: float) -> list[Track]:
        """Match this frame's boxes (and class probabilities) to tracks; return each box's track."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        assigned: list[Track | None] = [None] * len(boxes)
        if self.tracks and len(boxes):
            ious = iou_matrix(np.stack([t.box for t in self.tracks]), boxes)
            # Greedy: best pairs first; good enough for a handful of faces, and deterministic.
            for flat in np.argsort(-ious, axis=None):
                ti, bi = np.unravel_index(flat, ious.shape)
                if ious[ti, bi] < self.iou_threshold:
                    break
                track = self.tracks[ti]
                if assigned[bi] is not None or any(a is track for a in assigned):
                    continue
                assigned[bi] = track
        matched_ids = set()
        for bi, match in enumerate(assigned):
            if match is None:
                track = Track(
                    self._next_id,
                    boxes[bi],
                    probs[bi].astype(np.float64),
                    now,
                    now,
                    window_sum=np.zeros(probs.shape[1]),
                )
                self._next_id += 1
                self.tracks.append(track)
                assigned[bi] = track
            else:
                track = match
                track.box = boxes[bi]
                track.probs = (1 - self.alpha) * track.probs + self.alpha * probs[bi]
                track.last_seen = now
                track.hits += 1
                track.missed = 0
            track.window_sum = track.window_sum + track.probs
            track.window_frames += 1
            matched_ids.add(track.id)
        survivors = []
        for track in self.tracks:
            if track.id not in matched_ids:
                track.missed += 1
            if track.missed > self.max_missed:
                self.ended.append(track)
            else:
                survivors.append(track)
        self.tracks = survivors
        return [t for t in assigned if t is not None]

    def close_window(self) -> list[Track]:
        """The confirmed tracks seen in the window that just closed (each once), then reset the sums.

        Tracks that ended during the window are included and then forgotten.
        """
        counted = [t for t in [*self.ended, *self.tracks] if t.window_frames > 0 and t.hits >= self.min_hits]
        snapshot = [
            Track(
                t.id,
                t.box.copy(),
                t.probs.copy(),
                t.first_seen,
                t.last_seen,
                t.hits,
                t.missed,
                t.window_sum.copy(),
                t.window_frames,
            )
            for t in counted
        ]
        for t in self.tracks:
            t.window_sum = np.zeros_like(t.window_sum)
            t.window_frames = 0
        self.ended = []
        return snapshot

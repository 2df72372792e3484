"""What runs on a frame: whether the detector is due (every few frames, more often while tracks are
new or moving), which tracks are due for classification, and the one batched classification of
their faces (docs/camera.md, "Detect less, track more").
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from fer_edge.camera.align import aligned_views
from fer_edge.camera.crop import CropRule, average_views, face_views, one_view
from fer_edge.camera.options import LoopOptions
from fer_edge.camera.tracking import IouTracker, Track, iou_matrix
from fer_edge.metrics import softmax


class Classifier(Protocol):
    labels: tuple[str, ...]

    def infer(self, batch: np.ndarray) -> np.ndarray: ...


def detection_due(options: LoopOptions, tracker: IouTracker, frame_index: int, last_detect: int | None) -> bool:
    """Whether the detector runs on this frame: every ``detect_every`` frames, and (adaptive) on
    every frame while a track is unconfirmed, or seen and drifted a quarter of its width since its
    last detection."""
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
        if track.missed:
            continue
        # Predicted boxes that may have slid a quarter of their width need a fresh look.
        drift = np.abs(track.velocity[:2]).max() * (frame_index - track.matched_frame)
        if drift > 0.25 * max(track.box[2], 1.0):
            return True
    return False


def needs_classification(track: Track, options: LoopOptions, frame_index: int) -> bool:
    if track.classified_frame is None or frame_index - track.classified_frame >= options.reinfer_every:
        return True
    if options.reinfer_iou > 0:
        overlap = iou_matrix(track.box[None], track.classified_box[None])[0, 0]
        return bool(overlap < options.reinfer_iou)
    return False


def classify_tracks(
    gray: np.ndarray, tracks: list[Track], classifier: Classifier, rule: CropRule, options: LoopOptions, k: int
) -> np.ndarray:
    """Class probabilities ``[len(tracks), C]`` for these tracks' faces: one batched call."""
    return batch_probs(classifier.infer(face_batch(gray, tracks, rule, options, k)), options)


def face_batch(gray: np.ndarray, tracks: list[Track], rule: CropRule, options: LoopOptions, k: int) -> np.ndarray:
    """The classifier's input for these tracks' faces: ``views`` crops per face with ``--all-views``,
    else one (rotating view ``k``). Batches of several cameras concatenate (``batch_probs`` splits
    nothing: each face's rows stay together)."""
    boxes = np.stack([t.box for t in tracks])
    if options.align:
        landmarks = np.stack([t.landmarks for t in tracks])
        return aligned_views(gray, boxes, landmarks, rule, options.views, k)
    if options.rotate_views:
        return one_view(gray, boxes, rule, options.views, k)
    return face_views(gray, boxes, rule, options.views)


def batch_probs(logits: np.ndarray, options: LoopOptions) -> np.ndarray:
    """Per-face probabilities from the logits of :func:`face_batch`'s rows."""
    if options.align or options.rotate_views:
        return softmax(logits)
    return average_views(softmax(logits), options.views)

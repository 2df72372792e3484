"""The one batched classification of the faces due on a frame (docs/camera.md, "Detect less, track
more"); whether the detector is due and which tracks are due for classification are decided with
the tracks, in :mod:`fer_edge.camera.tracking`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from fer_edge.camera.align import aligned_views
from fer_edge.camera.crop import CropRule, average_views, face_views, one_view
from fer_edge.camera.options import LoopOptions
from fer_edge.camera.tracking import Track
from fer_edge.model.scoring import softmax


class Classifier(Protocol):
    labels: tuple[str, ...]

    def infer(self, batch: np.ndarray) -> np.ndarray: ...


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

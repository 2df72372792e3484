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
from fer_edge.metrics import softmax


class Classifier(Protocol):
    labels: tuple[str, ...]

    def infer(self, batch: np.ndarray) -> np.ndarray: ...


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

"""The crop rule: from a detector's face box to the region framed the way FER2013 frames faces.

FER2013's 48x48 crops are square and framed wider than a face detector's box, and the model
only knows that framing; a tight crop costs tens of accuracy points. Each detector boxes faces
differently, so each has its own rule, fitted by ``scripts/measure_crop_rule.py`` on real
FER2013 test faces pasted into frames at known places (numbers in docs/camera.md):

    centre = box centre + (dx * w, dy * h)
    side   = scale * w**width_weight * h**(1 - width_weight)     (a square)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fer_edge.core.optional import import_cv2

FACE_SIZE = 48


@dataclass(frozen=True)
class CropRule:
    scale: float
    dx: float = 0.0
    dy: float = 0.0
    width_weight: float = 0.5  # 1: the side follows the box width, 0: its height, 0.5: their geometric mean

    def regions(self, boxes: np.ndarray, tilts: np.ndarray | None = None) -> np.ndarray:
        """``[N, 3]`` (centre x, centre y, side) of the square crop for each ``(x, y, w, h)`` box.

        ``tilts`` (degrees, clockwise on screen): the centre offset is along the tilted face's
        axes, for crops that are then turned upright (``align.py``).
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        w, h = boxes[:, 2], boxes[:, 3]
        ox, oy = self.dx * w, self.dy * h
        if tilts is not None:
            a = np.radians(np.asarray(tilts, np.float64).reshape(-1))
            ox, oy = ox * np.cos(a) - oy * np.sin(a), ox * np.sin(a) + oy * np.cos(a)
        cx = boxes[:, 0] + w / 2 + ox
        cy = boxes[:, 1] + h / 2 + oy
        side = self.scale * np.power(w, self.width_weight) * np.power(h, 1.0 - self.width_weight)
        return np.stack([cx, cy, side], axis=1)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


# Fitted by scripts/measure_crop_rule.py (see docs/camera.md and benchmarks/camera/crop_rule.json).
CROP_RULES: dict[str, CropRule] = {
    # YuNet: box = 0.81 x the crop's width, 1.03 x its height (758 PublicTest faces).
    "yunet": CropRule(scale=1.055, dx=0.003, dy=-0.013, width_weight=0.33),
    # Haar: square box = 0.96 x the crop's side (586 PublicTest faces).
    "haar": CropRule(scale=1.046, dx=0.0, dy=0.002, width_weight=0.5),
}
TIGHT = CropRule(scale=1.0, width_weight=0.5)  # the box as-is, squared: the naive rule, for comparison


def crop_rule_for(detector_name: str) -> CropRule:
    return CROP_RULES.get(detector_name, TIGHT)


def crop_faces(gray: np.ndarray, regions: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """Cut each square region out of a grayscale frame and shrink it to ``size``: uint8 ``[N, size, size]``.

    A region that runs past the frame edge is filled by repeating the edge pixels (getRectSubPix),
    which keeps faces at the frame border usable instead of dropping them.
    """
    cv2 = import_cv2()
    out = np.empty((len(regions), size, size), dtype=np.uint8)
    for i, (cx, cy, side) in enumerate(np.asarray(regions, dtype=np.float64).reshape(-1, 3)):
        side_px = max(int(round(side)), 1)
        # getRectSubPix takes the centre in pixel-index coordinates (pixel i spans [i, i+1)).
        patch = cv2.getRectSubPix(gray, (side_px, side_px), (float(cx) - 0.5, float(cy) - 0.5))
        interp = cv2.INTER_AREA if side_px >= size else cv2.INTER_LINEAR
        out[i] = cv2.resize(patch, (size, size), interpolation=interp)
    return out


# Test-time views: the fitted rule at three scales, each also mirrored. A detector's box frames a
# face less consistently than FER2013 did (side error ~8%); averaging the class probabilities over
# these views recovers the accuracy a single crop loses (docs/camera.md, "The crop rule").
VIEW_SCALES: dict[int, tuple[float, ...]] = {1: (1.0,), 2: (1.0,), 6: (0.9, 1.0, 1.1)}


def face_views(gray: np.ndarray, boxes: np.ndarray, rule: CropRule, views: int = 6) -> np.ndarray:
    """All views of all faces as one batch, uint8 ``[N * views, 48, 48]``, face-major.

    ``views``: 1 (the rule's crop), 2 (+ its mirror image) or 6 (three scales, each + mirror).
    """
    if views not in VIEW_SCALES:
        raise ValueError(f"views must be one of {sorted(VIEW_SCALES)}, got {views}")
    base = rule.regions(boxes)
    per_face = []
    for scale in VIEW_SCALES[views]:
        regions = base.copy()
        regions[:, 2] *= scale
        crops = crop_faces(gray, regions)
        per_face.append(crops)
        if views > 1:
            per_face.append(crops[:, :, ::-1])
    return np.ascontiguousarray(np.stack(per_face, axis=1).reshape(-1, FACE_SIZE, FACE_SIZE))


def view_spec(views: int, k: int) -> tuple[float, bool]:
    """(scale, mirrored) of view ``k`` of ``views`` (the order of :func:`face_views`)."""
    if views not in VIEW_SCALES:
        raise ValueError(f"views must be one of {sorted(VIEW_SCALES)}, got {views}")
    k %= views
    return VIEW_SCALES[views][k // 2 if views > 1 else 0], views > 1 and k % 2 == 1


def one_view(gray: np.ndarray, boxes: np.ndarray, rule: CropRule, views: int, k: int) -> np.ndarray:
    """View ``k`` (of ``views``, same order as :func:`face_views`) of every face: uint8 ``[N, 48, 48]``.

    The pipeline cycles ``k`` with the frame number, so a track's smoothed distribution averages
    all views over a few frames at the cost of one crop per face per frame.
    """
    scale, mirrored = view_spec(views, k)
    regions = rule.regions(boxes)
    regions[:, 2] *= scale
    crops = crop_faces(gray, regions)
    return np.ascontiguousarray(crops[:, :, ::-1]) if mirrored else crops


def average_views(probs: np.ndarray, views: int) -> np.ndarray:
    """Mean class probabilities per face from the face-major ``[N * views, C]`` output."""
    return probs.reshape(-1, views, probs.shape[-1]).mean(axis=1)

"""Alignment: turn each face upright (eyes level) on YuNet's landmarks before the 48x48 crop.

FER2013's faces are upright; a head tilted by 20 degrees is a face the classifier rarely saw.
The tilt is the angle of the line between the eyes; the crop square is cut rotated by it (so the
result is the upright face), around the centre and with the side the crop rule gives.
"""

from __future__ import annotations

import numpy as np

from fer_edge.camera.crop import FACE_SIZE, CropRule, crop_faces, view_spec
from fer_edge.core.optional import import_cv2

RIGHT_EYE, LEFT_EYE = 0, 1  # YuNet's order: the person's right eye is on the image's left
MAX_TILT_DEG = 45.0  # beyond this the landmarks are more likely wrong than the head that tilted


def eye_angles(landmarks: np.ndarray) -> np.ndarray:
    """Tilt of each face in degrees (image coordinates, y down: positive = turned clockwise on
    screen); 0 where landmarks are missing (Haar) or the angle is implausible."""
    marks = np.asarray(landmarks, dtype=np.float64).reshape(-1, 5, 2)
    delta = marks[:, LEFT_EYE] - marks[:, RIGHT_EYE]
    angles = np.degrees(np.arctan2(delta[:, 1], delta[:, 0]))
    return np.where(np.isfinite(angles) & (np.abs(angles) <= MAX_TILT_DEG), angles, 0.0)


def rotate_points(points: np.ndarray, centres: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """Rotate ``[N, K, 2]`` points about ``[N, 2]`` centres by ``-angle``: into the upright face's frame."""
    theta = np.radians(-np.asarray(angles_deg, np.float64))
    cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
    rel = np.asarray(points, np.float64) - np.asarray(centres, np.float64)[:, None, :]
    x = rel[..., 0] * cos - rel[..., 1] * sin
    y = rel[..., 0] * sin + rel[..., 1] * cos
    return np.stack([x, y], axis=-1) + np.asarray(centres, np.float64)[:, None, :]


def aligned_crops(
    gray: np.ndarray, regions: np.ndarray, angles_deg: np.ndarray, size: int = FACE_SIZE
) -> np.ndarray:
    """Upright crops: each square region ``(cx, cy, side)`` cut rotated by its face's tilt.

    A patch 1.5x the side (enough for any tilt up to 45 degrees) is rotated about its centre, its
    middle square cut and shrunk with area averaging, as the upright crops are (``crop_faces``);
    pixels past the frame edge repeat the edge.
    """
    cv2 = import_cv2()
    regions = np.asarray(regions, dtype=np.float64).reshape(-1, 3)
    angles = np.asarray(angles_deg, dtype=np.float64).reshape(-1)
    out = crop_faces(gray, regions, size)  # upright faces need no rotation
    for i in np.nonzero(np.abs(angles) >= 0.5)[0]:
        cx, cy, side = regions[i]
        side_px = max(int(round(side)), 1)
        big = side_px + 2 * int(np.ceil(0.25 * side_px))
        patch = cv2.getRectSubPix(gray, (big, big), (float(cx) - 0.5, float(cy) - 0.5))
        turn = cv2.getRotationMatrix2D(((big - 1) / 2.0, (big - 1) / 2.0), float(angles[i]), 1.0)
        upright = cv2.warpAffine(patch, turn, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        off = (big - side_px) // 2
        square = upright[off : off + side_px, off : off + side_px]
        interp = cv2.INTER_AREA if side_px >= size else cv2.INTER_LINEAR
        out[i] = cv2.resize(square, (size, size), interpolation=interp)
    return out


def aligned_views(
    gray: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray, rule: CropRule, views: int, k: int
) -> np.ndarray:
    """View ``k`` of ``views`` (as :func:`crop.one_view`) of every face, turned upright: ``[N, 48, 48]``.

    Faces without landmarks (NaN: a Haar detection) are cut upright, as without alignment.
    """
    scale, mirrored = view_spec(views, k)
    tilts = eye_angles(landmarks)
    regions = rule.regions(boxes, tilts)
    regions[:, 2] *= scale
    crops = aligned_crops(gray, regions, tilts)
    return np.ascontiguousarray(crops[:, :, ::-1]) if mirrored else crops

"""Exclusion zones: areas of one camera's frame (the staff side of a checkout, the door to the stock
room) where faces are never classified or counted. A face whose box centre lies inside a zone is
dropped before the tracker sees it, so it never reaches the classifier or the mood log.

A zone is a polygon in frame pixels (a rectangle is a four-point polygon); ``--save-video`` and
``--display`` draw them, so a zone can be checked against the scene.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Tuple

import numpy as np

from fer_edge.camera.detection import Detections
from fer_edge.core.errors import FerEdgeError

Point = Tuple[float, float]


@dataclass(frozen=True)
class Zone:
    points: Tuple[Point, ...]  # the polygon's corners, in frame pixels, in order

    @classmethod
    def rect(cls, x0: float, y0: float, x1: float, y1: float) -> Zone:
        return cls(((x0, y0), (x1, y0), (x1, y1), (x0, y1)))

    def contains(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Whether each point (xs[i], ys[i]) is inside the polygon (even-odd rule, ray casting)."""
        inside = np.zeros(len(xs), dtype=bool)
        pts = self.points
        for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1]):
            crosses = (ay > ys) != (by > ys)
            with np.errstate(divide="ignore", invalid="ignore"):
                x_at = ax + (ys - ay) * (bx - ax) / (by - ay)
            inside ^= crosses & (xs < x_at)
        return inside

    def outside(self, width: int, height: int) -> bool:
        """True when a corner lies outside a ``width`` x ``height`` frame."""
        return any(not (0 <= x <= width and 0 <= y <= height) for x, y in self.points)


def parse_zone(value: Any, where: str) -> Zone:
    """One zone of a cameras file: ``{rect = [x0, y0, x1, y1]}`` or ``{polygon = [[x, y], ...]}``;
    ``where`` names it in errors (the file and the camera)."""
    if not isinstance(value, dict) or len(value) != 1 or not set(value) <= {"rect", "polygon"}:
        raise FerEdgeError(f"{where}: a zone is {{rect = [x0, y0, x1, y1]}} or {{polygon = [[x, y], ...]}}, "
                           f"got {value!r}")
    if "rect" in value:
        rect = value["rect"]
        if not _numbers(rect) or len(rect) != 4:
            raise FerEdgeError(f"{where}: rect must be four numbers [x0, y0, x1, y1], got {rect!r}")
        x0, y0, x1, y1 = (float(v) for v in rect)
        if x1 <= x0 or y1 <= y0:
            raise FerEdgeError(f"{where}: rect {rect!r} is empty (x1 must be above x0, y1 above y0)")
        return Zone.rect(x0, y0, x1, y1)
    polygon = value["polygon"]
    if not isinstance(polygon, list) or not all(_numbers(p) and len(p) == 2 for p in polygon):
        raise FerEdgeError(f"{where}: polygon must be a list of [x, y] points, got {polygon!r}")
    if len(polygon) < 3:
        raise FerEdgeError(f"{where}: a polygon needs at least three points, got {len(polygon)}")
    return Zone(tuple((float(x), float(y)) for x, y in polygon))


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    )


def check_zones(zones: Sequence[Zone], width: int, height: int, where: str) -> None:
    """A zone with a corner outside the frame is a mistake (the wrong camera's coordinates)."""
    for i, zone in enumerate(zones, 1):
        if zone.outside(width, height):
            raise FerEdgeError(f"{where}: zone {i} reaches outside the {width}x{height} frame")


def drop_in_zones(detections: Detections, zones: Sequence[Zone]) -> Detections:
    """The detections whose box centre is in no zone."""
    if not zones or not len(detections):
        return detections
    boxes = detections.boxes
    xs = boxes[:, 0] + boxes[:, 2] / 2.0
    ys = boxes[:, 1] + boxes[:, 3] / 2.0
    masked = np.zeros(len(boxes), dtype=bool)
    for zone in zones:
        masked |= zone.contains(xs, ys)
    return detections if not masked.any() else detections.select(~masked)


def draw_zones(frame: np.ndarray, zones: Sequence[Zone], cv2: Any) -> None:
    """Zones as hatched-grey outlines with a label, drawn in place."""
    for zone in zones:
        pts = np.array(zone.points, dtype=np.int32).reshape(-1, 1, 2)
        cv2.polylines(frame, [pts], True, (128, 128, 128), 2, cv2.LINE_AA)
        x, y = (int(v) for v in zone.points[0])
        cv2.putText(frame, "no faces", (x + 4, y + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (128, 128, 128), 1,
                    cv2.LINE_AA)

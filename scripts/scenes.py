"""Synthetic scenes with faces at known places: real 48x48 dataset faces, upscaled and pasted into
a textured frame. Used to fit and test the crop rule (the pasted square IS the dataset's framing)
and to build test and benchmark videos. Nothing here is written to disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_edge.core.optional import import_cv2


@dataclass(frozen=True)
class PlacedFace:
    index: int  # which input face
    x: int
    y: int
    side: int  # the pasted square: exactly the dataset crop, upscaled

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.side, self.side)


def background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random BGR texture (a wall, shelves): low-frequency noise, no face-like structure."""
    cv2 = import_cv2()
    coarse = rng.uniform(50, 200, size=(6, 8, 3)).astype(np.float32)
    frame = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    frame += rng.normal(0, 4, size=frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def paste_face(frame: np.ndarray, face48: np.ndarray, x: int, y: int, side: int, tilt: float = 0.0) -> None:
    """Upscale one grayscale face to ``side`` px and paste it (as gray BGR) with its top-left at (x, y);
    the part outside the frame is left out.

    ``tilt`` (degrees, positive = clockwise on screen) turns the face about its centre, as a head
    tilts; the turned square's corners cover the background around it.
    """
    cv2 = import_cv2()
    big = cv2.resize(face48, (side, side), interpolation=cv2.INTER_CUBIC)
    if not tilt:
        # Clipped at the frame's edges: a face that walks in or out is partly in view.
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + side, frame.shape[1]), min(y + side, frame.shape[0])
        if x1 <= x0 or y1 <= y0:
            return
        part = big[y0 - y : y1 - y, x0 - x : x1 - x]
        frame[y0:y1, x0:x1] = part[:, :, None] if frame.ndim == 3 else part
        return
    rad = np.radians(tilt)
    span = int(np.ceil(side * (abs(np.cos(rad)) + abs(np.sin(rad))))) + 2
    pad = (span - side) // 2
    canvas = cv2.copyMakeBorder(big, pad, span - side - pad, pad, span - side - pad, cv2.BORDER_CONSTANT, value=0)
    mask = cv2.copyMakeBorder(np.full((side, side), 255, np.uint8), pad, span - side - pad, pad,
                              span - side - pad, cv2.BORDER_CONSTANT, value=0)
    turn = cv2.getRotationMatrix2D(((span - 1) / 2.0, (span - 1) / 2.0), -float(tilt), 1.0)
    canvas = cv2.warpAffine(canvas, turn, (span, span), flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(mask, turn, (span, span), flags=cv2.INTER_LINEAR) > 127
    x0, y0 = x - pad, y - pad
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + span, frame.shape[1]), min(y0 + span, frame.shape[0])
    region = frame[fy0:fy1, fx0:fx1]
    sub = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    keep = mask[sub]
    if frame.ndim == 3:
        region[keep] = canvas[sub][keep][:, None]
    else:
        region[keep] = canvas[sub][keep]


def scene_with_faces(
    faces: np.ndarray,
    width: int,
    height: int,
    sides: list[int],
    rng: np.random.Generator,
    bg: np.ndarray | None = None,
    tilts: list[float] | None = None,
) -> tuple[np.ndarray, list[PlacedFace]]:
    """Paste ``faces`` (uint8 ``[K, 48, 48]``) side by side at random non-overlapping places,
    each turned by its ``tilts`` entry (degrees) if given."""
    frame = background(width, height, rng) if bg is None else bg.copy()
    placed: list[PlacedFace] = []
    slot_w = width // max(len(faces), 1)
    for k, (face, side) in enumerate(zip(faces, sides)):
        side = min(side, slot_w - 2, height - 2)
        x = k * slot_w + int(rng.integers(0, max(slot_w - side, 1)))
        y = int(rng.integers(0, max(height - side, 1)))
        paste_face(frame, face, x, y, side, tilt=tilts[k] if tilts else 0.0)
        placed.append(PlacedFace(k, x, y, side))
    return frame, placed


def moving_faces_frames(
    faces: np.ndarray,
    n_frames: int,
    width: int = 640,
    height: int = 480,
    side: int = 150,
    seed: int = 0,
    step: int = 2,
    tilts: list[float] | None = None,
) -> list[tuple[np.ndarray, list[PlacedFace]]]:
    """Frames with each face drifting slowly (``step`` px a frame) in its own column: stable identities."""
    rng = np.random.default_rng(seed)
    bg = background(width, height, rng)
    slot_w = width // max(len(faces), 1)
    side = min(side, slot_w - 4, height - 4)
    starts = [
        (k * slot_w + int(rng.integers(0, max(slot_w - side, 1))), int(rng.integers(0, height - side)))
        for k in range(len(faces))
    ]
    out = []
    for i in range(n_frames):
        frame = bg.copy()
        placed = []
        for k, (face, (x0, y0)) in enumerate(zip(faces, starts)):
            # Bounce inside the column so a face never leaves its slot or the frame.
            span_x, span_y = max(slot_w - side, 1), max(height - side, 1)
            x = k * slot_w + _bounce(x0 - k * slot_w + step * i, span_x)
            y = _bounce(y0 + step * i // 2, span_y)
            paste_face(frame, face, x, y, side, tilt=tilts[k] if tilts else 0.0)
            placed.append(PlacedFace(k, x, y, side))
        out.append((frame, placed))
    return out


def _bounce(pos: int, span: int) -> int:
    period = 2 * span
    pos %= period
    return pos if pos < span else period - pos


def write_video(path: str | Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """Write frames with OpenCV's VideoWriter (MJPG .avi: available in every OpenCV build)."""
    cv2 = import_cv2()
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    for frame in frames:
        writer.write(frame)
    writer.release()
    return Path(path)

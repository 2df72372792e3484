"""Where annotated frames go, only when asked: a window (``--display``) or a file (``--save-video``).

By default the pipeline writes nothing visual anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.camera.tracking import Track
from fer_edge.core.optional import import_cv2
from fer_edge.errors import FerEdgeError

WINDOW_TITLE = "fer-edge (q to quit)"
# BGR colours by valence: a glance at the screen shows the mood.
COLOURS = {"positive": (60, 200, 60), "neutral": (200, 200, 200), "negative": (60, 60, 230)}


def annotate(frame: np.ndarray, tracks: list[Track], labels: tuple[str, ...]) -> np.ndarray:
    from fer_edge.moodlog.windows import polarity

    cv2 = import_cv2()
    out = frame.copy()
    for t in tracks:
        x, y, w, h = (int(round(v)) for v in t.box)
        label = labels[t.emotion]
        colour = COLOURS[polarity(label)]
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, 2)
        text = f"#{t.id} {label} {t.probs[t.emotion]:.0%}"
        cv2.putText(out, text, (x, max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return out


class DisplaySink:
    def __init__(self) -> None:
        cv2 = import_cv2()
        try:
            cv2.namedWindow(WINDOW_TITLE, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise FerEdgeError(
                "--display needs an OpenCV with a GUI (this one is headless): pip install opencv-python "
                "(or JetPack's OpenCV), and a display (DISPLAY set)"
            ) from None

    def show(self, frame: np.ndarray, tracks: list[Track], labels: tuple[str, ...]) -> bool:
        cv2 = import_cv2()
        cv2.imshow(WINDOW_TITLE, annotate(frame, tracks, labels))
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        import_cv2().destroyAllWindows()


class VideoSink:
    """Annotated frames to a video file; written beside the target and renamed on close, so an
    interrupted run never leaves a file that looks complete."""

    FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}

    def __init__(self, target: str | Path, fps: float) -> None:
        self.target = Path(target)
        suffix = self.target.suffix.lower()
        if suffix not in self.FOURCC:
            raise FerEdgeError(
                f"--save-video: unknown video type {suffix!r}; use one of {', '.join(self.FOURCC)}",
                path=self.target,
            )
        self.partial = self.target.with_name(f".{self.target.stem}.partial{suffix}")
        self.fps = fps
        self._writer: Any = None

    def show(self, frame: np.ndarray, tracks: list[Track], labels: tuple[str, ...]) -> bool:
        cv2 = import_cv2()
        if self._writer is None:
            try:
                self.target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise FerEdgeError(f"cannot write the video here ({exc})", path=self.target) from None
            h, w = frame.shape[:2]
            self._writer = cv2.VideoWriter(
                str(self.partial),
                cv2.VideoWriter_fourcc(*self.FOURCC[self.partial.suffix.lower()]),
                self.fps,
                (w, h),
            )
            if not self._writer.isOpened():
                raise FerEdgeError("cannot write the video here", path=self.target)
        self._writer.write(annotate(frame, tracks, labels))
        return True

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            os.replace(self.partial, self.target)
            self._writer = None

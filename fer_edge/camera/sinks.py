"""Where annotated frames go, only when asked: a window (``--display``) or a file (``--save-video``).

By default the pipeline writes nothing visual anywhere.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.camera.tracking import Track
from fer_edge.camera.zones import Zone, draw_zones
from fer_edge.core.atomic import os_error_reason, pid_alive
from fer_edge.core.errors import FerEdgeError
from fer_edge.core.optional import import_cv2

WINDOW_TITLE = "fer-edge (q to quit)"
# Below this much free space the video's last frames and index cannot be written: stop in time.
DISK_RESERVE_BYTES = 1 << 20
# BGR colours by valence: a glance at the screen shows the mood.
COLOURS = {"positive": (60, 200, 60), "neutral": (200, 200, 200), "negative": (60, 60, 230)}


def annotate(
    frame: np.ndarray, tracks: list[Track], labels: tuple[str, ...], zones: Sequence[Zone] = ()
) -> np.ndarray:
    from fer_edge.moodlog.windows import polarity

    cv2 = import_cv2()
    out = frame.copy()
    draw_zones(out, zones, cv2)
    for t in tracks:
        x, y, w, h = (int(round(v)) for v in t.box)
        label = labels[t.emotion]
        colour = COLOURS[polarity(label)]
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, 2)
        text = f"#{t.id} {label} {t.probs[t.emotion]:.0%}"
        cv2.putText(out, text, (x, max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return out


class DisplaySink:
    """A window per camera (``camera`` in its title when the run has several), zones drawn."""

    def __init__(self, camera: str = "", zones: Sequence[Zone] = ()) -> None:
        cv2 = import_cv2()
        self.title = WINDOW_TITLE if not camera else f"fer-edge {camera} (q to quit)"
        self.zones = tuple(zones)
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise FerEdgeError(
                "--display needs an OpenCV with a GUI (this one is headless): pip install opencv-python "
                "(or JetPack's OpenCV), and a display (DISPLAY set)"
            ) from None

    def show(self, frame: np.ndarray, tracks: list[Track], labels: tuple[str, ...]) -> bool:
        cv2 = import_cv2()
        cv2.imshow(self.title, annotate(frame, tracks, labels, self.zones))
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        import_cv2().destroyAllWindows()


class VideoSink:
    """Annotated frames to a video file; written beside the target under a per-process name and renamed
    on close only when the file is complete, so an interrupted run or a full disk never replaces an
    earlier good video with a truncated one.

    OpenCV's writer reports no write errors (a full disk gives a file without its index, silently), so
    the free space is watched while writing and the finished file is opened again before the rename.
    """

    FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}
    CHECK_EVERY = 30  # frames between free-space checks (statvfs costs microseconds)

    def __init__(self, target: str | Path, fps: float, zones: Sequence[Zone] = ()) -> None:
        self.target = Path(target)
        self.zones = tuple(zones)
        suffix = self.target.suffix.lower()
        if suffix not in self.FOURCC:
            raise FerEdgeError(
                f"--save-video: unknown video type {suffix!r}; use one of {', '.join(self.FOURCC)}",
                path=self.target,
            )
        remove_stale_partials(self.target)
        self.partial = partial_path(self.target, os.getpid())
        self.fps = fps
        self.frames = 0
        self.failure: str | None = None
        self._writer: Any = None

    def show(self, frame: np.ndarray, tracks: list[Track], labels: tuple[str, ...]) -> bool:
        if self.failure is not None:
            return True  # the video failed; the camera and its mood log go on
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
        self._writer.write(annotate(frame, tracks, labels, self.zones))
        self.frames += 1
        if self.frames % self.CHECK_EVERY == 0 and _disk_full(self.partial.parent):
            self.failure = f"the disk filled after {self.frames} frames"
            self._discard()
        return True

    def close(self) -> None:
        """Rename the finished video onto the target, or raise one line and keep the old file."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            problem = self.failure or _incomplete(self.partial)
            if problem is None:
                try:
                    _fsync(self.partial)
                    os.replace(self.partial, self.target)
                except OSError as exc:
                    problem = os_error_reason(exc)
            if problem is not None:
                self.failure = problem
        if self.failure is not None:
            self._discard()
            kept = "the previous video is unchanged" if self.target.is_file() else "no video was written"
            failure, self.failure = self.failure, None
            raise FerEdgeError(f"--save-video: {failure}; {kept}", path=self.target)

    def _discard(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        with contextlib.suppress(OSError):
            self.partial.unlink()


def partial_path(target: Path, pid: int) -> Path:
    """``.<stem>.<pid>.partial<suffix>``: per process (two runs never share one), the container's suffix kept."""
    return target.with_name(f".{target.stem}.{pid}.partial{target.suffix}")


def remove_stale_partials(target: Path) -> None:
    """Remove partial videos of ``target`` left by runs that were killed (their process is gone)."""
    pattern = re.compile(r"^\." + re.escape(target.stem) + r"\.(\d+)\.partial" + re.escape(target.suffix) + "$")
    with contextlib.suppress(OSError):
        for entry in target.parent.iterdir():
            match = pattern.match(entry.name)
            if match and int(match.group(1)) != os.getpid() and not pid_alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    entry.unlink()


def _disk_full(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < DISK_RESERVE_BYTES


def _incomplete(path: Path) -> str | None:
    """Why the finished file is not a playable video (a write cut short by a full disk), or None."""
    if _disk_full(path.parent):
        return "the disk is full"
    cv2 = import_cv2()
    try:
        size = path.stat().st_size
    except OSError as exc:
        return os_error_reason(exc)
    if size == 0:
        return "the video file is empty (the disk is full?)"
    capture = cv2.VideoCapture(str(path))
    try:
        ok = capture.isOpened() and capture.read()[0]
    finally:
        capture.release()
    return None if ok else "the written video cannot be read back (cut short: the disk is full?)"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

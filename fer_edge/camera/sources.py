"""Frame sources through OpenCV: USB index, /dev/videoN, a video file, an RTSP/HTTP URL, or a
Jetson CSI camera (``csi://N``) through a GStreamer ``nvarguscamerasrc`` pipeline.

A live source that drops, or is not there yet when the run starts, is reopened with exponential
backoff; meanwhile ``read()`` returns :data:`OUTAGE` every fraction of a second, so the loop keeps
closing windows on time and a stop request is seen at once. A file that ends ends the run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.core.errors import FerEdgeError
from fer_edge.core.optional import import_cv2
from fer_edge.core.redact import redact
from fer_edge.core.retry import Backoff

URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://")
# A network stream that stalls must not hold the loop (or a stop request) for FFmpeg's default 30 s.
STREAM_TIMEOUT_MS = 5000


class Outage:
    """What ``FrameSource.read()`` returns while a live source is down: no frame, not the end."""

    def __repr__(self) -> str:
        return "OUTAGE"


OUTAGE = Outage()


@dataclass(frozen=True)
class SourceSpec:
    """What the user asked for, resolved into what ``cv2.VideoCapture`` is given."""

    text: str  # as given, credentials removed (safe to log)
    kind: str  # "usb" | "device" | "url" | "csi" | "file"
    target: int | str  # the argument for cv2.VideoCapture
    width: int | None = None
    height: int | None = None
    fps: float | None = None

    @property
    def live(self) -> bool:
        return self.kind != "file"


def csi_pipeline(sensor_id: int, width: int, height: int, fps: float) -> str:
    """GStreamer pipeline for a Jetson CSI camera, ending in BGR frames for OpenCV's appsink."""
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM), width=(int){width}, height=(int){height}, "
        f"framerate=(fraction){int(round(fps))}/1 ! "
        "nvvidconv ! video/x-raw, format=(string)BGRx ! "
        "videoconvert ! video/x-raw, format=(string)BGR ! "
        # drop=true: a slow consumer gets the newest frame, never a growing backlog.
        "appsink drop=true max-buffers=1"
    )


def parse_source(
    text: str, width: int | None = None, height: int | None = None, fps: float | None = None
) -> SourceSpec:
    """Turn ``--source`` into a :class:`SourceSpec`; a missing file is a user error here."""
    text = text.strip()
    if not text:
        raise FerEdgeError("empty --source")
    if text.isdigit():
        return SourceSpec(text, "usb", int(text), width, height, fps)
    if text.startswith("csi://"):
        sensor = text[len("csi://") :] or "0"
        if not sensor.isdigit():
            raise FerEdgeError(
                f"bad CSI source {text!r}; expected csi://N with N the sensor id, e.g. csi://0"
            )
        w, h, f = width or 1280, height or 720, fps or 30.0
        return SourceSpec(text, "csi", csi_pipeline(int(sensor), w, h, f), w, h, f)
    if text.lower().startswith(URL_SCHEMES):
        return SourceSpec(redact(text), "url", text, width, height, fps)
    if re.fullmatch(r"/dev/video\d+", text):
        return SourceSpec(text, "device", text, width, height, fps)
    path = Path(text)
    if not path.is_file():
        raise FerEdgeError(
            "video source not found (not a file, camera index, /dev/videoN, URL or csi://N)", path=text
        )
    return SourceSpec(text, "file", str(path), width, height, fps)


def has_gstreamer(cv2: Any) -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.upper()
    return False


def open_capture(spec: SourceSpec) -> Any:
    """Open ``spec`` with OpenCV; raises :class:`FerEdgeError` when it cannot be opened."""
    cv2 = import_cv2()
    if spec.kind == "csi":
        if not has_gstreamer(cv2):
            raise FerEdgeError(
                f"{spec.text}: CSI cameras need OpenCV built with GStreamer, and this OpenCV "
                f"({cv2.__version__}) has none; use JetPack's OpenCV (pip uninstall opencv-python-headless "
                "opencv-python, then sudo apt install python3-opencv)"
            )
        cap = cv2.VideoCapture(spec.target, cv2.CAP_GSTREAMER)
    elif spec.kind == "url" and hasattr(cv2, "CAP_PROP_OPEN_TIMEOUT_MSEC"):
        timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS]
        timeouts += [cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS]
        cap = cv2.VideoCapture(spec.target, cv2.CAP_ANY, timeouts)
    else:
        cap = cv2.VideoCapture(spec.target)
    if not cap.isOpened():
        cap.release()
        raise FerEdgeError("cannot open video source", path=spec.text)
    if spec.kind in ("usb", "device"):
        if spec.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, spec.width)
        if spec.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, spec.height)
        if spec.fps:
            cap.set(cv2.CAP_PROP_FPS, spec.fps)
    if spec.live:
        # Latency over completeness: keep at most one frame queued in the driver.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    return cap


class FrameSource:
    """Frames from one source. ``read()`` returns a BGR frame, :data:`OUTAGE` while a live source is
    down, or None when the run should end (end of file, or ``should_stop()``).

    A live source that drops is reopened with exponential backoff (``backoff_s`` doubling up to
    ``max_backoff_s``); between tries ``read()`` waits at most ``poll_s`` and returns
    :data:`OUTAGE`. A live source that cannot be opened at the start is treated the same way (a
    camera that boots after the Jetson), unless ``fail_fast``; a file that cannot be opened is
    always an error at once.
    """

    def __init__(
        self,
        spec: SourceSpec,
        opener: Callable[[SourceSpec], Any] = open_capture,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        should_stop: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], None] = time.sleep,
        on_event: Callable[[str], None] = lambda message: None,
        fail_fast: bool = False,
        poll_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self._opener = opener
        self._backoff = Backoff(first=backoff_s, cap=max_backoff_s)
        self._should_stop = should_stop
        self._sleep = sleep
        self._on_event = on_event
        self._poll_s = poll_s
        self._clock = clock
        self.reconnects = 0
        self._tries = 0
        self._next_try = 0.0
        self._cap: Any = None
        try:
            self._cap = opener(spec)
        except FerEdgeError as exc:
            if fail_fast or not spec.live:
                raise  # a wrong --source is a user error
            self._on_event(f"{exc}; retrying until it is there (--fail-fast to stop instead)")
            self._next_try = clock() + self._backoff.next()

    @property
    def down(self) -> bool:
        return self._cap is None

    @property
    def fps(self) -> float | None:
        """The frame rate the source reports (None when it does not say)."""
        cv2 = import_cv2()
        value = float(self._cap.get(cv2.CAP_PROP_FPS)) if self._cap is not None else 0.0
        return value if 0.0 < value < 1000.0 else None

    def read(self) -> np.ndarray | Outage | None:
        if self._should_stop():
            return None
        if self._cap is not None:
            ok, frame = self._cap.read()
            if ok and frame is not None:
                return frame  # type: ignore[no-any-return]
            if not self.spec.live:
                return None  # end of file
            self._on_event(f"source {self.spec.text} dropped; reconnecting")
            self._cap.release()
            self._cap = None
            self._tries = 0
            self._backoff.reset()
            self._next_try = self._clock() + self._backoff.next()
            return OUTAGE
        wait = self._next_try - self._clock()
        if wait > 0:
            self._sleep(min(wait, self._poll_s))
            return OUTAGE
        return self._try_reopen()

    def _try_reopen(self) -> np.ndarray | Outage | None:
        try:
            self._cap = self._opener(self.spec)
        except FerEdgeError:
            self._tries += 1
            delay = self._backoff.next()
            self._next_try = self._clock() + delay
            if self._tries & (self._tries - 1) == 0:  # tries 1, 2, 4, 8...: fewer lines the longer it lasts
                self._on_event(
                    f"source {self.spec.text} still down after {self._tries} tries; next in {delay:g} s"
                )
            return OUTAGE
        self.reconnects += 1
        self._on_event(f"source {self.spec.text} reconnected")
        return self.read()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

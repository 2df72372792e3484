"""Frames as a camera delivers them, one capture per camera, for a loop that serves several.

- :class:`DirectCapture`: frames read on demand in the loop's thread (every frame, in order).
- :class:`ThreadedCapture` with ``keep_all``: a video file played as fast as the pipeline runs,
  read one frame ahead in a thread (decoding overlaps detection; every frame, in order).
- :class:`ThreadedCapture`: a live camera, or a file played at its own fps (``--realtime``): a
  thread reads the source on the source's clock and keeps only the newest frame. A frame the
  pipeline had not taken when the next one came is dropped and counted (``dropped``), so nothing
  queues up and the pipeline always works on the present.

``take()`` never blocks: a :class:`Captured` frame, :data:`OUTAGE` (a live source is down),
``None`` (the source ended) or :data:`NOTHING` (no new frame yet). ``Captured.position`` is the
frame's number in the source (dropped frames included): a file's clock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Union

import numpy as np

from fer_edge.camera.sources import Outage


@dataclass
class Captured:
    frame: np.ndarray
    ts: float  # wall clock when it was read from the source
    position: int  # frame number in the source since the start (dropped frames count)


class Nothing:
    def __repr__(self) -> str:
        return "NOTHING"


NOTHING = Nothing()
Taken = Union[Captured, Outage, Nothing, None]


class Reader(Protocol):
    def read(self) -> np.ndarray | Outage | None: ...


class DirectCapture:
    """Reads on demand in the caller's thread: every frame, nothing dropped."""

    def __init__(self, source: Reader) -> None:
        self.source = source
        self.dropped = 0
        self._position = 0

    def start(self, wake: Optional[threading.Event] = None) -> DirectCapture:
        return self

    def take(self) -> Taken:
        frame = self.source.read()
        if frame is None or isinstance(frame, Outage):
            return frame
        captured = Captured(frame, time.time(), self._position)
        self._position += 1
        return captured

    def close(self) -> None:
        pass


class ThreadedCapture:
    """A thread reads ``source``; the newest frame wins. ``pace_fps``: a file played at this rate
    (``--realtime``); None for a live source, which paces itself. ``keep_all``: never drop, the
    thread waits until the frame it read was taken (a file read ahead of the pipeline: decoding
    overlaps the other work). ``wake`` is set on every new frame, outage or end, so a loop serving
    several cameras sleeps until one has something."""

    def __init__(
        self,
        source: Reader,
        pace_fps: Optional[float] = None,
        clock: Callable[[], float] = time.monotonic,
        name: str = "capture",
        keep_all: bool = False,
    ) -> None:
        self.source = source
        self.pace_fps = pace_fps
        self.keep_all = keep_all
        self.dropped = 0  # frames overwritten before the pipeline took them
        self._clock = clock
        self._lock = threading.Condition()
        self._slot: Taken = NOTHING
        self._ended = False
        self._closing = threading.Event()
        self._wake: Optional[threading.Event] = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.error: Optional[BaseException] = None

    def start(self, wake: Optional[threading.Event] = None) -> ThreadedCapture:
        self._wake = wake
        self._thread.start()
        return self

    def _put(self, item: Taken) -> None:
        with self._lock:
            while self.keep_all and isinstance(self._slot, Captured) and not self._closing.is_set():
                self._lock.wait(0.1)
            if isinstance(self._slot, Captured) and isinstance(item, Captured):
                self.dropped += 1
            # An outage does not overwrite a frame not yet taken (it is older news than the frame).
            if not (isinstance(item, Outage) and isinstance(self._slot, Captured)):
                self._slot = item
        if self._wake is not None:
            self._wake.set()

    def _run(self) -> None:
        position = 0
        t0 = self._clock()
        try:
            while not self._closing.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                if isinstance(frame, Outage):
                    self._put(frame)
                    continue
                if self.pace_fps:
                    # A file as a camera would deliver it: frame n is there at t0 + n / fps.
                    wait = t0 + position / self.pace_fps - self._clock()
                    if wait > 0 and self._closing.wait(wait):
                        break
                self._put(Captured(frame, time.time(), position))
                position += 1
        except BaseException as exc:  # noqa: BLE001 - handed to the loop's thread, which raises it
            self.error = exc
        finally:
            with self._lock:
                self._ended = True
            if self._wake is not None:
                self._wake.set()

    def take(self) -> Taken:
        if self.error is not None:
            raise self.error
        with self._lock:
            item, self._slot = self._slot, NOTHING
            self._lock.notify()
            if isinstance(item, Nothing) and self._ended:
                return None
            return item

    def close(self, timeout: float = 10.0) -> None:
        """Stops the thread (a read in progress finishes first: at most the source's read timeout)."""
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


def make_capture(source: Any, live: bool, realtime: bool, fps: Optional[float], name: str) -> Any:
    """The capture for one camera: a thread for a live source or a file with ``realtime`` (the
    newest frame wins), else a thread reading a file one frame ahead (every frame, in order)."""
    if live:
        return ThreadedCapture(source, name=f"capture-{name}")
    if realtime:
        return ThreadedCapture(source, pace_fps=fps or 30.0, name=f"capture-{name}")
    return ThreadedCapture(source, name=f"capture-{name}", keep_all=True)

"""Cameras out of step: the frames of a loop serving several cameras move through three stages,
and while one camera's frame is in a stage the loop serves the others.

1. The loop's thread begins a frame (the windows due, whether the detector is due on it).
2. Its detector pass and then its tracker run on a ``detect`` worker (the tracker runs on the loop's
   thread when no pass is due: it is cheap).
3. Its faces wait for the classifier, which runs on a thread of its own: each call takes the faces of
   every frame waiting by then, from all cameras, in one batch. A frame with no face due skips the
   call. The loop's thread finishes each frame (smoothing, sinks, the log) when its call returns.

A camera has at most one frame in flight, so its frames are finished in order and its windows are
those of the cameras served in turn. ONNX Runtime runs without the GIL, so the detector passes and
the classifier call run beside the loop's own Python work: with the classifier on the loop's thread,
its calls took a third of that thread, the one that every frame needs (benchmarks/camera/streams.md).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import numpy as np

# One camera's frame in flight: (multiloop.Feed, pipeline.FrameWork, capture.Captured).
Work = Tuple[Any, Any, Any]
# Hands a classifier call's frames, its logits (None: no call) and its milliseconds to the loop.
Finish = Callable[[List[Work], Optional[np.ndarray], float], None]


class OutOfStep:
    """The frames in flight of a loop serving several cameras, and the two pools that run them."""

    def __init__(self, infer: Callable[[np.ndarray], np.ndarray], detect_workers: int, finish: Finish,
                 wake: Callable[[], None]) -> None:
        self._infer = infer
        self._finish = finish
        self._wake = wake
        self._detect = ThreadPoolExecutor(detect_workers, thread_name_prefix="detect")
        self._classify = ThreadPoolExecutor(1, thread_name_prefix="classify")
        self._tracking: Dict[Future[None], Work] = {}
        self._waiting: List[Work] = []
        self._call: Optional[Tuple[Future[Tuple[np.ndarray, float]], List[Work]]] = None

    def busy(self) -> Set[int]:
        """The feeds (by ``id``) with a frame in flight: they take no new frame until it is finished."""
        works = [*self._tracking.values(), *self._waiting, *(self._call[1] if self._call else [])]
        return {id(feed) for feed, _, _ in works}

    def in_flight(self) -> bool:
        return bool(self._tracking or self._waiting or self._call)

    def start(self, works: List[Work]) -> None:
        """Begun frames into stage 2: a pass on a worker, or the tracker here when none is due."""
        for feed, work, item in works:
            if work.detected:
                job = self._detect.submit(_detect_and_track, feed.loop, work)
                self._tracking[job] = (feed, work, item)
                job.add_done_callback(self._woken)
            else:
                feed.loop.detect(work)
                feed.loop.track(work)
                self._tracked((feed, work, item))

    def advance(self, wait: bool = False) -> bool:
        """Frames whose pass is done go on to the classifier; a call that returned finishes its
        frames; the next call starts with every face waiting. ``wait``: for the work in flight.
        Whether anything moved. A detector's or classifier's error ends the run here."""
        moved = False
        for job in [job for job in self._tracking if wait or job.done()]:
            work = self._tracking.pop(job)
            job.result()
            self._tracked(work)
            moved = True
        if self._call is not None and (wait or self._call[0].done()):
            call, works = self._call
            self._call = None
            logits, infer_ms = call.result()
            self._finish(works, logits, infer_ms)
            moved = True
        if self._call is None and self._waiting:
            works, self._waiting = self._waiting, []
            call = self._classify.submit(timed_infer, self._infer, np.concatenate([w.batch for _, w, _ in works]))
            call.add_done_callback(self._woken)
            self._call = (call, works)
        return moved

    def drain(self) -> None:
        """Every frame in flight finished (a stopped run keeps the frames it had begun)."""
        while self.in_flight():
            self.advance(wait=True)

    def close(self) -> None:
        self._detect.shutdown()
        self._classify.shutdown()

    def _tracked(self, work: Work) -> None:
        if work[1].batch is None:
            self._finish([work], None, 0.0)
        else:
            self._waiting.append(work)

    def _woken(self, _: Future[Any]) -> None:
        self._wake()


def _detect_and_track(loop: Any, work: Any) -> None:
    loop.detect(work)
    loop.track(work)


def timed_infer(infer: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> Tuple[np.ndarray, float]:
    """The classifier's logits for ``batch`` and the call's milliseconds."""
    started = time.perf_counter()
    logits = infer(batch)
    return logits, (time.perf_counter() - started) * 1000.0

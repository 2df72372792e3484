"""Several cameras, one process: one loop serves every camera's :class:`CameraLoop` from its own
capture (``capture``: a thread per live camera, the newest frame wins), with one detector and one
classifier for all.

Each step takes whatever frames have arrived (a camera with nothing new is skipped, so one that
stalls or drops never delays the others), runs each frame's detector and tracker as its camera's
loop would, and then classifies the faces due from all cameras in ONE batched call. Windows,
outages, smoothing and re-inference stay per camera, in its own loop.

With ``detect_workers`` threads (:func:`detect_workers`; YuNet on ONNX Runtime's CPU, every call on
one thread, ``CameraSettings.threads``) the cameras run out of step (``outofstep``): a camera's
detector pass runs on a worker while the loop serves the others, and the classifier runs on a
thread of its own, each call for the faces of every frame then waiting for it, from all cameras.
One loop thread waiting on one pass at a time would leave the other cores idle
(benchmarks/camera/streams.md). A detector that cannot be shared between threads keeps the steps
above, every call on the loop's thread.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import AbstractSet, Any, Deque, Dict, List, Optional

import numpy as np

from fer_edge.camera.capture import Captured, Nothing
from fer_edge.camera.metrics import CameraMetrics
from fer_edge.camera.outofstep import OutOfStep, timed_infer
from fer_edge.camera.pipeline import CameraLoop, Classifier, FrameWork, RunStats
from fer_edge.camera.schedule import batch_probs
from fer_edge.camera.sources import Outage

DELAYS_KEPT = 10_000  # end-to-end delays per camera kept for percentiles (the newest)
# A live camera with no frame this long after its window's end has stalled: the window closes
# without waiting for the source's read timeout (sources.STREAM_TIMEOUT_MS).
STALL_S = 1.0
IDLE_WAIT_S = 0.05  # longest sleep while no camera has a new frame (a stop is seen this fast)
# Detectors whose passes may run at once from several threads: one ONNX Runtime CPU session (its
# Run is thread-safe and, on one intra-op thread, runs on the caller's thread). A TensorRT engine
# has one execution context and one set of buffers; OpenCV's DNN and Haar objects are not
# documented as safe to share between threads.
PARALLEL_BACKENDS = ("onnxruntime-cpu",)
PASSES_PER_CORE = 2


def detect_workers(cameras: int, backend: str, threads: Optional[int], cores: Optional[int] = None) -> int:
    """How many cameras' detector passes run at once: one per camera, up to two per core
    (``threads`` cores per pass), and one for a detector that cannot be shared between threads.

    Two per core, not one: a step waits for its last pass, and with one pass per core the third
    camera's pass on two cores runs alone while a core idles; three at once share both cores."""
    if cameras < 2 or backend not in PARALLEL_BACKENDS:
        return 1
    cores = cores or os.cpu_count() or 1
    return max(1, min(cameras, PASSES_PER_CORE * cores // max(threads or 1, 1)))


@dataclass
class Feed:
    """One camera of the loop: its name, its capture and its loop."""

    name: str
    capture: Any  # capture.DirectCapture | capture.ThreadedCapture
    loop: CameraLoop
    reconnects: Callable[[], int] = lambda: 0
    live: bool = False  # a camera on the wall clock: its windows close even while it sends nothing
    paced: bool = False  # frames come at the source's rate (live, or --realtime): fps is that rate
    ended: bool = False
    last_done: float = 0.0  # perf_counter when its last frame was finished
    delays_ms: Deque[float] = field(default_factory=lambda: deque(maxlen=DELAYS_KEPT))


class MultiCameraLoop:
    """Every camera's loop, served in turn; :meth:`run` returns each camera's :class:`RunStats`."""

    def __init__(
        self,
        feeds: Sequence[Feed],
        classifier: Classifier,
        *,
        stop: Optional[threading.Event] = None,
        status: Any = None,
        echo: Callable[[str], None] = print,
        stats_every_s: float = 10.0,
        several: bool = True,
        detect_workers: int = 1,
    ) -> None:
        self.feeds = list(feeds)
        self.classifier = classifier
        self.stop = stop or threading.Event()
        self._status = status
        self._echo = echo
        self._stats_every_s = stats_every_s
        self._last_print = time.perf_counter()
        self._wake = threading.Event()
        self._several = several  # lines name the camera
        self.batch_sizes: List[int] = []  # faces per classifier call (a test reads it; bench reports it)
        self.cameras_per_batch: List[int] = []
        self.detect_workers = detect_workers
        self._flight: Optional[OutOfStep] = None  # with detect workers: cameras out of step
        for feed in self.feeds:
            feed.loop.reporting = False

    def metrics_by_camera(self) -> Dict[str, CameraMetrics]:
        """Each camera's metrics object, by camera name (the status line and a metrics endpoint read them)."""
        return {feed.name: feed.loop.metrics for feed in self.feeds}

    def run(self) -> Dict[str, RunStats]:
        # What loading made (modules, models) lives as long as the run: the collector's full passes
        # while the cameras run need not scan it again (they took a tenth of the loop's thread).
        # Unfrozen at the end, for a caller that goes on. No collection first: in a large process
        # (a test session) it takes longer than the frames a live camera would drop meanwhile.
        gc.freeze()
        for feed in self.feeds:
            feed.capture.start(self._wake)
        if self.detect_workers > 1:
            self._flight = OutOfStep(self.classifier.infer, self.detect_workers, self._finish, self._wake.set)
        step = self._step if self._flight is None else self._step_out_of_step
        try:
            while not self.stop.is_set() and (any(not f.ended for f in self.feeds) or self._in_flight()):
                if not step():
                    self._wake.wait(IDLE_WAIT_S)
                    self._wake.clear()
            if self._flight is not None:
                self._flight.drain()
        finally:
            gc.unfreeze()
            if self._flight is not None:
                self._flight.close()
                self._flight = None
            for feed in self.feeds:
                feed.capture.close()
            for feed in self.feeds:
                if self.stop.is_set() and not feed.ended:
                    feed.loop.stats.stopped_by = "signal"
                feed.loop.end()
        for feed in self.feeds:
            if feed.loop.stats.total.frames:
                prefix = f"{feed.name} total: " if self._several else "total: "
                self._echo(prefix + feed.loop.stats.total.line())
        return {feed.name: feed.loop.stats for feed in self.feeds}

    def _step(self) -> bool:
        """One frame from every camera that has one, one classifier call for them all; False when
        no camera had anything."""
        works, busy = self._take_frames()
        self._detect_and_track(works)
        self._classify(works)
        if busy:
            self._report()
        return busy

    def _step_out_of_step(self) -> bool:
        """Cameras out of step (``outofstep``): a frame from every camera with none in flight, its
        pass on a worker; the frames whose pass or classifier call is done move on. False when
        nothing happened."""
        assert self._flight is not None
        works, busy = self._take_frames(self._flight.busy())
        self._flight.start(works)
        moved = self._flight.advance()
        if busy or moved:
            self._report()
        return busy or moved

    def _in_flight(self) -> bool:
        return self._flight is not None and self._flight.in_flight()

    def _take_frames(self, skip: AbstractSet[int] = frozenset()) -> tuple[list[tuple[Feed, FrameWork, Captured]], bool]:
        """A frame from every camera that has one (but those in ``skip``, by ``id``: a frame in
        flight), begun; whether any camera had anything (a frame, an outage, its end)."""
        works: list[tuple[Feed, FrameWork, Captured]] = []
        busy = False
        for feed in self.feeds:
            if feed.ended or id(feed) in skip:
                continue
            if not feed.loop.may_continue():
                feed.ended = True
                if feed.loop.stats.stopped_by == "display closed":  # q in one camera's window ends the run
                    self._end_all("display closed")
                continue
            t_frame = time.perf_counter()
            # A live camera's frame time runs from its previous frame: its fps is the rate it is served at.
            started = feed.last_done if (feed.live or feed.paced) and feed.last_done else t_frame
            item = feed.capture.take()
            capture_ms = (time.perf_counter() - t_frame) * 1000.0
            if isinstance(item, Nothing):
                if feed.live:  # a stalled camera's windows still close, a moment late
                    feed.loop.close_due_windows(time.time() - STALL_S)
                continue
            busy = True
            feed.loop.metrics.source_state(feed.reconnects(), feed.capture.dropped)
            if item is None:  # the end of a file, or a source told to stop
                feed.ended = True
                feed.loop.stats.stopped_by = "signal" if self.stop.is_set() else "end of source"
                feed.loop.end()  # its last window goes to the log now, not when the last camera ends
            elif isinstance(item, Outage):
                feed.loop.outage(time.time())
            else:
                now = feed.loop.clock_at(item.position, item.ts)
                works.append((feed, feed.loop.begin_frame(item.frame, now, started, capture_ms, item.position), item))
        return works, busy

    def _end_all(self, reason: str) -> None:
        for feed in self.feeds:
            if not feed.ended:
                feed.ended = True
                feed.loop.stats.stopped_by = reason

    def _detect_and_track(self, works: list[tuple[Feed, FrameWork, Captured]]) -> None:
        """Every due detector pass of the step in turn, on the loop's thread (one worker)."""
        for feed, work, _ in works:
            feed.loop.detect(work)
            feed.loop.track(work)

    def _classify(self, works: list[tuple[Feed, FrameWork, Captured]]) -> None:
        """The faces due on every camera's frame in one batched call, the probabilities back to each."""
        batches = [w.batch for _, w, _ in works if w.batch is not None]
        logits: Optional[np.ndarray] = None
        infer_ms = 0.0
        if batches:
            logits, infer_ms = timed_infer(self.classifier.infer, np.concatenate(batches))
        self._finish(works, logits, infer_ms)

    def _finish(self, works: list[tuple[Feed, FrameWork, Captured]], logits: Optional[np.ndarray],
                infer_ms: float) -> None:
        """Each frame finished with its rows of ``logits`` (those of the frames with a batch, in order)."""
        batches = [w.batch for _, w, _ in works if w.batch is not None]
        if batches:
            self.batch_sizes.append(sum(len(b) for b in batches))
            self.cameras_per_batch.append(len(batches))
        offset = 0
        for feed, work, item in works:
            probs = None
            if work.batch is not None and logits is not None:
                rows = len(work.batch)
                probs = batch_probs(logits[offset:offset + rows], feed.loop.options)
                offset += rows
            # Every camera with faces in the call waited for all of it.
            feed.loop.finish_frame(work, probs, infer_ms if probs is not None else 0.0)
            feed.last_done = time.perf_counter()
            feed.delays_ms.append((time.time() - item.ts) * 1000.0)

    def _report(self) -> None:
        serving = {f.name: f.loop.metrics for f in self.feeds if not f.ended}  # an ended file says no more
        if self._status is not None and serving:
            self._status.update_cameras(serving, self._several)
        if time.perf_counter() - self._last_print < self._stats_every_s:
            return
        if self._status is not None and serving:
            self._status.report_cameras(serving, self._several)
        for feed in self.feeds:
            feed.loop.metrics.next_interval()
        self._last_print = time.perf_counter()

    def delays(self, name: str) -> list[float]:
        """Capture-to-classification delays (ms) of one camera's frames, the newest ``DELAYS_KEPT``."""
        for feed in self.feeds:
            if feed.name == name:
                return list(feed.delays_ms)
        raise KeyError(name)

"""Serving a ``fer-edge run``: the signals that stop it, the pipeline and every camera opened and run
in one loop, and the run's last lines and exit code. ``commands.run`` turns the options into these."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import typer

from fer_edge.core.errors import FerEdgeError

if TYPE_CHECKING:
    from fer_edge.camera.cameras import CameraSpec
    from fer_edge.camera.pipeline import RunStats
    from fer_edge.camera.settings import CameraSettings
    from fer_edge.camera.wiring import PipelineFiles


def echo_line(message: str) -> None:
    # Flushed per line: an unattended run is watched through a pipe or a journal.
    print(message, flush=True)


class StopFlag:
    """SIGINT/SIGTERM set ``event``: the loop stops after the current frame (it then flushes the
    window), a source's reconnect backoff ends; a second signal stops at once (the log is still
    closed by the loop's cleanup). Called, it says whether a stop was asked."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.event.is_set()

    def _handle(self, signum: int, frame: object) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.signal = signum
        self.event.set()
        # On a terminal, below the status line rather than glued to its end.
        print(
            ("\n" if sys.stderr.isatty() else "")
            + f"{signal.Signals(signum).name}: flushing the current window and stopping",
            file=sys.stderr,
            flush=True,
        )

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@dataclass
class RunOutputs:
    """Where a run goes and when it ends: the options of ``run`` beyond the pipeline's own."""

    log: Path
    display: bool = False
    save_video: Optional[Path] = None
    max_frames: Optional[int] = None
    stats_every_s: float = 10.0
    fail_fast: bool = False
    hold_windows: int = 10_000
    sync: Optional[str] = None
    store: Optional[str] = None
    realtime: bool = False
    metrics: Any = None  # the --metrics endpoint (camera.metrics_service.MetricsService), bound

    def videos(self, cameras: List[CameraSpec]) -> Dict[str, Path]:
        """--save-video per camera: the file itself for one camera, ``NAME.<stem>.<suffix>`` beside
        it for each of several."""
        if self.save_video is None:
            return {}
        if len(cameras) == 1:
            return {cameras[0].name: self.save_video}
        target = self.save_video
        return {c.name: target.with_name(f"{target.stem}.{c.name}{target.suffix}") for c in cameras}


@dataclass
class Outcome:
    """How one camera's part of a run ended."""

    name: str
    stats: RunStats
    source: str
    reconnects: int
    windows_lost: int  # closed windows the mood log never got (held past the end, or dropped)
    windows_in_log: int  # this run's windows read back from the log file (not the count that closed)
    sink_failures: List[str] = field(default_factory=list)  # a --save-video that could not be finished


def serve(
    settings: CameraSettings, files: PipelineFiles, cameras: List[CameraSpec], outputs: RunOutputs, stop: StopFlag
) -> List[Outcome]:
    """Open the pipeline (one detector, one classifier for every camera), each camera's source,
    capture and log (and the sync) and run the loop until every camera ends."""
    from fer_edge.camera.detector_file import HAAR_HINT, cached_yunet
    from fer_edge.camera.feeds import CameraRun, open_camera, open_sources
    from fer_edge.camera.metrics_service import observe
    from fer_edge.camera.multiloop import MultiCameraLoop
    from fer_edge.camera.status import StatusLine
    from fer_edge.camera.wiring import open_pipeline
    from fer_edge.fleet import live_sync as fleet

    status = StatusLine()
    echo = status.message
    with open_pipeline(settings, files) as pipeline, contextlib.ExitStack() as stack:
        stack.callback(status.close)
        videos = outputs.videos(cameras)
        shared = CameraRun(
            log=outputs.log, hold_windows=outputs.hold_windows, max_frames=outputs.max_frames,
            stats_every_s=outputs.stats_every_s, fail_fast=outputs.fail_fast, realtime=outputs.realtime,
            display=outputs.display, several=len(cameras) > 1,
        )
        sources = open_sources(cameras, shared, stop, echo, stack)
        served = [
            open_camera(pipeline, spec, replace(shared, video=videos.get(spec.name)), frames, echo, stack,
                        stop_event=stop.event)
            for spec, frames in zip(cameras, sources)
        ]
        if files.detector is None:  # said once the sources are open too, so a failing run prints one line
            echo(HAAR_HINT.format(where=cached_yunet()))
        forwarder = None
        try:
            for camera in served:
                # The first camera's run starts the forwarder; the others only get the store label.
                attached = fleet.attach(outputs.log, camera.log.run_id, None if forwarder else outputs.sync,
                                        outputs.store, echo)
                forwarder = forwarder or attached
            for camera in served:
                camera.metrics.to_sync = functools.partial(fleet.waiting, forwarder)
            loop = MultiCameraLoop([c.feed for c in served], pipeline.classifier, stop=stop.event, status=status,
                                   echo=echo, stats_every_s=outputs.stats_every_s, several=len(served) > 1,
                                   detect_workers=pipeline.detect_workers(len(served)))
            # --metrics and the health --sync records, from every camera's metrics object
            observe(list(loop.metrics_by_camera().values()), pipeline, forwarder, outputs.metrics)
            loop.run()
        finally:
            status.close()
            for camera in served:
                camera.log.close()
            fleet.detach(forwarder, echo)
        # After the logs: a video that cannot be finished (a full disk) is said after the run's end
        # lines (finish), not instead of them.
        failures = {c.spec.name: c.close_sinks() for c in served}
    return [
        Outcome(c.spec.name, c.feed.loop.stats, c.spec.source.text, c.frames.reconnects,
                c.log.dropped + c.log.waiting, c.log.in_log, failures[c.spec.name])
        for c in served
    ]


def finish(outcomes: List[Outcome], outputs: RunOutputs, stop: StopFlag) -> None:
    """The run's last lines (one per camera) and its exit code."""
    several = len(outcomes) > 1
    for outcome in outcomes:
        stats = outcome.stats
        prefix = f"{outcome.name}: " if several else ""
        echo_line(
            f"{prefix}stopped ({stats.stopped_by}): {outcome.windows_in_log} windows, {stats.tracks_seen} face tracks "
            f"written to {outputs.log}"
        )
        if outcome.reconnects:
            echo_line(f"{prefix}the source dropped and was reopened {outcome.reconnects} times")
    lost = sum(o.windows_lost for o in outcomes)
    failures = [failure for o in outcomes for failure in o.sink_failures]
    for failure in failures[0 if lost else 1:]:  # the last one (or the lost windows) is the run's error
        typer.echo(f"error: {failure}", err=True)
    if failures and not lost:
        raise FerEdgeError(failures[0])
    if lost:
        raise FerEdgeError(f"{lost} windows could not be written to the mood log", path=outputs.log)
    if stop.signal == signal.SIGINT:
        raise typer.Exit(130)  # as every command on Ctrl-C; SIGTERM (a service's stop) exits 0
    for outcome in outcomes:
        if not outcome.stats.total.frames and outcome.stats.stopped_by == "end of source":
            raise FerEdgeError("the source gave no frames", path=outcome.source)

"""One camera of a run, opened: its source (retried in the background when it is not there yet,
unless ``fail_fast``), its capture, its sinks (``--display``, ``--save-video``, zones drawn), its
mood-log run and its loop, ready for :class:`multiloop.MultiCameraLoop`.

Everything opened is registered on the caller's ``ExitStack``: a failure while opening the third
camera still closes the first two.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from fer_edge.camera.cameras import CameraSpec
from fer_edge.camera.metrics import CameraMetrics
from fer_edge.camera.multiloop import Feed
from fer_edge.camera.wiring import CameraPipeline
from fer_edge.core.errors import FerEdgeError


@dataclass(frozen=True)
class CameraRun:
    """What every camera of a run shares, beyond the pipeline."""

    log: Path
    hold_windows: int = 10_000
    max_frames: Optional[int] = None
    stats_every_s: float = 10.0
    fail_fast: bool = False
    realtime: bool = False
    display: bool = False
    video: Optional[Path] = None  # this camera's --save-video file
    several: bool = False  # lines name the camera when the run has several


@dataclass
class ServedCamera:
    spec: CameraSpec
    frames: Any  # sources.FrameSource
    log: Any  # logbuffer.BufferedLog
    metrics: CameraMetrics
    feed: Feed
    sinks: List[Any] = field(default_factory=list)  # --display, --save-video

    def close_sinks(self) -> List[str]:
        """Close the camera's sinks (a finished video renamed onto its target); each one that failed
        (a full disk) as its one line, so the run can say how it ended first and then fail."""
        failures = []
        for sink in self.sinks:
            try:
                sink.close()
            except FerEdgeError as exc:
                failures.append(str(exc))
        return failures


def teller(spec: CameraSpec, run: CameraRun, echo: Callable[[str], None]) -> Callable[[str], None]:
    """``echo`` for lines about one camera: its name first when the run has several."""
    return (lambda text: echo(f"{spec.name}: {text}")) if run.several else echo


def open_sources(
    specs: List[CameraSpec],
    run: CameraRun,
    stop: Callable[[], bool],
    echo: Callable[[str], None],
    stack: contextlib.ExitStack,
) -> List[Any]:
    """Every camera's ``FrameSource``, opened at the same time: a network camera that does not
    answer (its open timeout) delays the start by its timeout once, not once per camera. A camera
    that is not there is retried in the background (or, with ``fail_fast``, ends the run: the
    sources already open are closed by ``stack``)."""
    from concurrent.futures import ThreadPoolExecutor

    from fer_edge.camera.sources import FrameSource

    def one(spec: CameraSpec) -> Any:
        return FrameSource(spec.source, should_stop=stop, on_event=teller(spec, run, echo), fail_fast=run.fail_fast)

    with ThreadPoolExecutor(max_workers=min(len(specs), 16) or 1) as pool:
        futures = [pool.submit(one, spec) for spec in specs]
    opened, error = [], None
    for future in futures:
        try:
            opened.append(stack.enter_context(future.result()))
        except BaseException as exc:  # noqa: BLE001 - the first is raised once every source is registered
            error = error or exc
    if error is not None:
        raise error
    return opened


def open_camera(
    pipeline: CameraPipeline,
    spec: CameraSpec,
    run: CameraRun,
    frames: Any,
    echo: Callable[[str], None],
    stack: contextlib.ExitStack,
    *,
    stop_event: Any = None,
) -> ServedCamera:
    """One camera of a run on its open source ``frames`` (see the module's docstring)."""
    from fer_edge.camera.capture import make_capture

    say = teller(spec, run, echo)
    source = spec.source
    sinks = frame_sinks(run, spec, frames.fps)
    for sink in sinks:
        stack.callback(sink.close)  # on an error before the run's end; once closed, a close does nothing
    log = pipeline.mood_log(run.log, source.text, hold_windows=run.hold_windows, echo=say, camera=spec.name,
                            window_s=spec.window_s)
    run_name = f"run {log.run_id}" if log.run_id is not None else "run (not yet in the log)"
    window_s = spec.window_s or pipeline.settings.loop.window_s
    zones = f", {len(spec.zones)} exclusion zones" if spec.zones else ""
    say(f"{run_name}: {source.text} -> {pipeline.describe()}, window {window_s:g} s{zones}, log {run.log}")
    metrics = CameraMetrics(camera=spec.name, labels=pipeline.classifier.labels)
    loop = pipeline.loop(
        frames, log, media_fps=None if source.live else (frames.fps or 30.0), max_frames=run.max_frames,
        stats_every_s=run.stats_every_s, metrics=metrics, stop=stop_event,
        echo=say, sinks=sinks, zones=spec.zones, window_s=spec.window_s,
    )
    capture = make_capture(frames, source.live, run.realtime, frames.fps, spec.name)
    feed = Feed(spec.name, capture, loop, reconnects=lambda: frames.reconnects, live=source.live,
                paced=source.live or run.realtime)
    return ServedCamera(spec, frames, log, metrics, feed, sinks)


def frame_sinks(run: CameraRun, spec: CameraSpec, fps: Optional[float]) -> List[Any]:
    """--display and --save-video of one camera (each has ``show`` and ``close``), its zones drawn."""
    from fer_edge.camera.sinks import DisplaySink, VideoSink

    sinks: List[Any] = []
    if run.display:
        sinks.append(DisplaySink(spec.name if run.several else "", spec.zones))
    if run.video is not None:
        sinks.append(VideoSink(run.video, fps=fps or 30.0, zones=spec.zones))
    return sinks

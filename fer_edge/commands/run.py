"""``fer-edge run``: the store camera -> face detection -> emotion -> the mood log (SQLite)."""

from __future__ import annotations

import functools
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from typing_extensions import Annotated

from fer_edge.camera.options import TUNED as DEFAULTS
from fer_edge.commands import options
from fer_edge.commands.options import number
from fer_edge.errors import FerEdgeError

if TYPE_CHECKING:
    from fer_edge.camera.pipeline import RunStats
    from fer_edge.camera.settings import CameraSettings
    from fer_edge.camera.sources import SourceSpec
    from fer_edge.camera.wiring import PipelineFiles


def _echo(message: str) -> None:
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


def run(
    source: Annotated[
        str,
        typer.Option(
            help="Camera index (0), /dev/videoN, csi://N, rtsp://... or a video file. From FER_EDGE_SOURCE "
            "when not given, so a camera password need not be on the command line.",
            envvar="FER_EDGE_SOURCE",
            show_envvar=False,
        ),
    ],
    model: Annotated[
        Optional[Path],
        typer.Option(
            help="fer-edge model (.onnx or .engine); default: the shipped FER2013 INT8 model "
            "(CPU layout without a GPU, TensorRT layout with one)."
        ),
    ] = None,
    log: Annotated[Path, typer.Option(help="Mood log (SQLite); windows are appended.")] = Path("mood.db"),
    window: Annotated[float, number(help="Seconds per mood-log window.", min=0.1, max=options.DAY_S)] = 60.0,
    detector_model: Annotated[
        Optional[Path],
        typer.Option(
            help="YuNet .onnx or its TensorRT .engine (build-engine --detector), or a Haar .xml; default: "
            "YuNet from the cache dir (fer-edge fetch-detector), else OpenCV's Haar cascade."
        ),
    ] = None,
    min_face: Annotated[int, number(help="Smallest face to classify, in pixels.", min=8, max=4096)] = 40,
    detect_width: Annotated[
        Optional[int],
        number(
            help="Shrink frames to this width for detection only (faster; faces must stay >= min-face).",
            min=32,
            max=options.MAX_FRAME_SIDE,
        ),
    ] = None,
    width: Annotated[
        Optional[int],
        number(help="Capture width (camera sources; CSI default 1280).", min=16, max=options.MAX_FRAME_SIDE),
    ] = None,
    height: Annotated[
        Optional[int],
        number(help="Capture height (camera sources; CSI default 720).", min=16, max=options.MAX_FRAME_SIDE),
    ] = None,
    fps: Annotated[
        Optional[float], number(help="Capture frame rate (camera sources; CSI default 30).", above=0, max=1000)
    ] = None,
    device: options.Device = "auto",
    threads: options.Threads = None,
    display: Annotated[
        bool, typer.Option(help="Show frames with boxes and labels (needs a GUI OpenCV).")
    ] = False,
    save_video: Annotated[
        Optional[Path],
        typer.Option(
            help="Write annotated video here. Off by default: nothing visual is stored unless asked."
        ),
    ] = None,
    max_frames: Annotated[
        Optional[int], number(help="Stop after this many frames.", min=1, max=10**12 - 1)
    ] = None,
    views: Annotated[
        int,
        number(
            help="Crops per face averaged: 1, 2 (+ mirror) or 6 (3 scales x mirror; "
            "recovers the accuracy a detector's framing costs).",
            min=1,
            max=6,
        ),
    ] = DEFAULTS.views,
    all_views: Annotated[
        bool,
        typer.Option(
            help="Classify every view of every face in every frame, instead "
            "of one view per frame in rotation (views x slower)."
        ),
    ] = False,
    stats_every: Annotated[
        float, number(help="Seconds between FPS / latency lines.", above=0, max=options.DAY_S)
    ] = 10.0,
    fail_fast: Annotated[
        bool,
        typer.Option(
            help="End at once when a live camera cannot be opened at the start, instead of retrying "
            "until it is there (windows meanwhile are logged as outage)."
        ),
    ] = False,
    hold_windows: Annotated[
        int,
        number(
            help="Closed windows kept in memory while the log cannot be written (full disk, lock "
            "held elsewhere); beyond this the oldest are dropped.",
            min=1,
            max=10_000_000,
        ),
    ] = 10_000,
    sync: Annotated[
        Optional[str],
        typer.Option(
            help="Forward completed windows in the background to this PostgreSQL "
            "(postgresql://USER@HOST/DB; password via PGPASSWORD or ~/.pgpass). Needs the fleet extra."
        ),
    ] = None,
    store: Annotated[
        Optional[str], typer.Option(help="Store label of this camera, kept in the log (needed with --sync).")
    ] = None,
    # -- detector, tracker and re-inference (docs/camera.md, "Detect less, track more") ----------
    detector_device: Annotated[
        str,
        typer.Option(help="YuNet .onnx on: auto, cpu, cuda, tensorrt (ONNX Runtime) or opencv (OpenCV DNN)."),
    ] = "auto",
    detect_every: Annotated[
        int,
        number(help="Run the detector every N frames; the tracker carries faces in between.", min=1, max=1000),
    ] = DEFAULTS.detect_every,
    adaptive: Annotated[
        bool, typer.Option(help="Also detect on every frame while a track is new or moving fast.")
    ] = DEFAULTS.adaptive,
    reinfer_every: Annotated[
        int,
        number(help="Classify a face again after this many frames (a new face: on each of its first frames).",
               min=1, max=1000),
    ] = DEFAULTS.reinfer_every,
    reinfer_iou: Annotated[
        float,
        number(help="...or sooner when its box overlaps the classified one less than this (0: never).", min=0, max=1),
    ] = DEFAULTS.reinfer_iou,
    align: Annotated[
        bool, typer.Option(help="Turn faces upright on YuNet's eye landmarks before cropping.")
    ] = DEFAULTS.align,
    track_iou: Annotated[
        float, number(help="Overlap a detection needs to continue a track.", above=0, max=1)
    ] = 0.3,
    max_missed: Annotated[
        int,
        number(help="Frames a track survives without a detection (a face that left ends).", min=0, max=10_000),
    ] = 10,
    min_hits: Annotated[
        int, number(help="Detections before a track counts in the mood log.", min=1, max=1000)
    ] = 3,
    metrics: Annotated[
        Optional[str],
        typer.Option(
            help="Serve Prometheus metrics and /healthz at [ADDR:]PORT (127.0.0.1 when only a port is given; "
            "docs/fleet.md, Operations). Needs the metrics extra."
        ),
    ] = None,
    metrics_public: Annotated[
        bool, typer.Option(help="Allow --metrics on an address other than loopback (it has no authentication).")
    ] = False,
) -> None:
    """Run the store camera: detect faces, classify emotions, log mood per time window (no images)."""
    from fer_edge.camera.settings import camera_settings
    from fer_edge.camera.sources import parse_source
    from fer_edge.camera.wiring import pipeline_files
    from fer_edge.fleet import camera as fleet
    from fer_edge.paths import guard_outputs

    fleet.check_options(log, sync, store)
    settings = camera_settings(
        model=model, device=device, threads=threads, detector_model=detector_model,
        detector_device=detector_device, min_face=min_face, detect_width=detect_width, window=window,
        views=views, all_views=all_views, detect_every=detect_every, adaptive=adaptive,
        reinfer_every=reinfer_every, reinfer_iou=reinfer_iou, align=align, track_iou=track_iou,
        max_missed=max_missed, min_hits=min_hits,
    )
    spec = parse_source(source, width, height, fps)
    files = pipeline_files(settings)
    # --log is appended to, so it is an output too: never the model, the detector or a video file source
    source_file = Path(source) if Path(source).is_file() else None
    guard_outputs(
        {"--model": files.model, "--detector-model": detector_model, "--source": source_file},
        {"--log": log, "--save-video": save_video},
        databases=("--log",),
    )
    from fer_edge.camera.metrics_service import open_metrics

    outputs = RunOutputs(log=log, display=display, save_video=save_video, max_frames=max_frames,
                         stats_every_s=stats_every, fail_fast=fail_fast, hold_windows=hold_windows,
                         sync=sync, store=store)
    # Bound now: a port in use is an error before the camera opens.
    outputs.metrics = open_metrics(metrics, metrics_public, _echo)
    stop = StopFlag()
    # Installed before anything slow: a signal during loading or a camera's reconnect backoff ends
    # the run at once (a second one interrupts whatever runs).
    stop.install()
    try:
        outcome = serve(settings, files, spec, outputs, stop)
    finally:
        stop.restore()
        if outputs.metrics is not None:
            outputs.metrics.close()
    finish(outcome, outputs, stop)


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
    metrics: Any = None  # the --metrics endpoint (camera.metrics_service.MetricsService), bound


@dataclass
class Outcome:
    stats: RunStats
    source: str
    reconnects: int
    windows_lost: int  # closed windows the mood log never got (held past the end, or dropped)
    windows_in_log: int  # this run's windows read back from the log file (not the count that closed)


def serve(
    settings: CameraSettings, files: PipelineFiles, spec: SourceSpec, outputs: RunOutputs, stop: StopFlag
) -> Outcome:
    """Open the pipeline, the source, the log (and the sync) and run the loop until it ends."""
    from fer_edge.camera.detector_file import HAAR_HINT, cached_yunet
    from fer_edge.camera.metrics import CameraMetrics
    from fer_edge.camera.metrics_service import observe
    from fer_edge.camera.sources import FrameSource
    from fer_edge.camera.status import StatusLine
    from fer_edge.camera.wiring import open_pipeline
    from fer_edge.fleet import camera as fleet

    status = StatusLine()
    echo = status.message
    with open_pipeline(settings, files) as pipeline, \
            FrameSource(spec, should_stop=stop, on_event=echo, fail_fast=outputs.fail_fast) as frames:
        if files.detector is None:  # said once the source is open too, so a failing run prints one line
            echo(HAAR_HINT.format(where=cached_yunet()))
        sinks = frame_sinks(outputs, frames.fps)
        mood_log = pipeline.mood_log(outputs.log, spec.text, hold_windows=outputs.hold_windows, echo=echo)
        run_name = f"run {mood_log.run_id}" if mood_log.run_id is not None else "run (not yet in the log)"
        echo(f"{run_name}: {spec.text} -> {pipeline.describe()}, window {settings.loop.window_s:g} s, "
             f"log {outputs.log}")
        forwarder = None
        try:
            forwarder = fleet.attach(outputs.log, mood_log.run_id, outputs.sync, outputs.store, echo)
            metrics = CameraMetrics(labels=pipeline.classifier.labels,
                                    to_sync=functools.partial(fleet.waiting, forwarder))
            observe([metrics], pipeline, forwarder, outputs.metrics)  # --metrics and the health --sync records
            loop = pipeline.loop(
                frames, mood_log, media_fps=None if spec.live else (frames.fps or 30.0),
                max_frames=outputs.max_frames, stats_every_s=outputs.stats_every_s, metrics=metrics,
                stop=stop.event, echo=echo, sinks=sinks, status=status,
            )
            stats = loop.run()
        finally:
            status.close()
            mood_log.close()
            fleet.detach(forwarder, echo)
            for sink in sinks:
                sink.close()
    return Outcome(stats, spec.text, frames.reconnects, mood_log.dropped + mood_log.waiting, mood_log.in_log)


def frame_sinks(outputs: RunOutputs, fps: Optional[float]) -> list[Any]:
    """--display and --save-video (each has ``show`` and ``close``)."""
    from fer_edge.camera.sinks import DisplaySink, VideoSink

    sinks: list[Any] = []
    if outputs.display:
        sinks.append(DisplaySink())
    if outputs.save_video is not None:
        sinks.append(VideoSink(outputs.save_video, fps=fps or 30.0))
    return sinks


def finish(outcome: Outcome, outputs: RunOutputs, stop: StopFlag) -> None:
    """The run's last lines and its exit code."""
    stats = outcome.stats
    _echo(
        f"stopped ({stats.stopped_by}): {outcome.windows_in_log} windows, {stats.tracks_seen} face tracks "
        f"written to {outputs.log}"
    )
    if outcome.reconnects:
        _echo(f"the source dropped and was reopened {outcome.reconnects} times")
    if outcome.windows_lost:
        raise FerEdgeError(f"{outcome.windows_lost} windows could not be written to the mood log", path=outputs.log)
    if stop.signal == signal.SIGINT:
        raise typer.Exit(130)  # as every command on Ctrl-C; SIGTERM (a service's stop) exits 0
    if not stats.total.frames and stats.stopped_by == "end of source":
        raise FerEdgeError("the source gave no frames", path=outcome.source)

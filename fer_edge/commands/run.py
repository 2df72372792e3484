"""``fer-edge run``: the store camera -> face detection -> emotion -> the mood log (SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Union

import typer
from typing_extensions import Annotated

from fer_edge.camera.options import TRACKER
from fer_edge.camera.options import TUNED as DEFAULTS
from fer_edge.commands import camera_options, options
from fer_edge.commands.options import number
from fer_edge.commands.run_serve import RunOutputs, StopFlag, echo_line, finish, serve


def run(
    source: Annotated[
        Optional[List[str]],
        typer.Option(
            help="Camera index (0), /dev/videoN, csi://N, rtsp://... or a video file; NAME=SOURCE, repeated, "
            "serves several cameras in one process. From FER_EDGE_SOURCE when not given, so a camera "
            "password need not be on the command line.",
            envvar="FER_EDGE_SOURCE",
            show_envvar=False,
        ),
    ] = None,
    cameras: Annotated[
        Optional[Path],
        typer.Option(
            help="Cameras file (TOML, [[camera]] tables: name, source, width/height/fps, window, zones; "
            "docs/camera.md), instead of --source. From FER_EDGE_CAMERAS when not given.",
            envvar="FER_EDGE_CAMERAS",
            show_envvar=False,
        ),
    ] = None,
    realtime: Annotated[
        bool,
        typer.Option(
            help="Play video files at their own fps, as a live camera delivers them (frames the pipeline "
            "cannot take are dropped and counted); without it files play as fast as the pipeline runs."
        ),
    ] = False,
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
    threads: Annotated[
        Optional[int],
        number(help="CPU threads per inference call (default 1; several cameras' detector passes run at once, "
               "a core each).", min=1, max=options.MAX_THREADS),
    ] = None,
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
    settle: camera_options.Settle = DEFAULTS.settle,
    classify_between: camera_options.ClassifyBetween = DEFAULTS.classify_between,
    chase: camera_options.Chase = DEFAULTS.chase,
    drift: camera_options.Drift = DEFAULTS.drift,
    small_face: camera_options.SmallFace = DEFAULTS.small_face,
    keep_passes: camera_options.KeepPasses = TRACKER.keep_passes,
    max_missed_new: camera_options.MaxMissedNew = TRACKER.max_missed_unconfirmed,
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
    """Run the store camera(s): detect faces, classify emotions, log mood per time window (no images)."""
    from fer_edge.camera.cameras import resolve_cameras
    from fer_edge.camera.settings import camera_settings
    from fer_edge.camera.wiring import pipeline_files
    from fer_edge.core.paths import guard_outputs
    from fer_edge.fleet import live_sync as fleet

    fleet.check_options(log, sync, store)
    settings = camera_settings(
        model=model, device=device, threads=threads, detector_model=detector_model,
        detector_device=detector_device, min_face=min_face, detect_width=detect_width, window=window,
        views=views, all_views=all_views, detect_every=detect_every, adaptive=adaptive,
        reinfer_every=reinfer_every, reinfer_iou=reinfer_iou, align=align, track_iou=track_iou,
        max_missed=max_missed, min_hits=min_hits, settle=settle, classify_between=classify_between, chase=chase,
        drift=drift, small_face=small_face, keep_passes=keep_passes, max_missed_new=max_missed_new,
    )
    files = pipeline_files(settings)
    # --log is appended to, so it is an output too: never the model, the detector, the cameras file
    # (guarded before it is read) or a video file source (once the cameras are known)
    inputs: Dict[str, Union[str, Path, None]] = {"--model": files.model, "--detector-model": detector_model,
                                                 "--cameras": cameras}
    guard_outputs(inputs, {"--log": log, "--save-video": save_video}, databases=("--log",))
    specs = resolve_cameras(source or [], cameras, width, height, fps)
    for spec in specs:
        if spec.source.kind == "file":
            inputs[f"--source {spec.name}"] = Path(str(spec.source.target))
    outputs = RunOutputs(log=log, display=display, save_video=save_video, max_frames=max_frames,
                         stats_every_s=stats_every, fail_fast=fail_fast, hold_windows=hold_windows,
                         sync=sync, store=store, realtime=realtime)
    guard_outputs(inputs, {"--log": log, **{f"--save-video {n}": p for n, p in outputs.videos(specs).items()}},
                  databases=("--log",))
    from fer_edge.camera.metrics_service import open_metrics

    # Bound now: a port in use is an error before the camera opens.
    outputs.metrics = open_metrics(metrics, metrics_public, echo_line)
    stop = StopFlag()
    # Installed before anything slow: a signal during loading or a camera's reconnect backoff ends
    # the run at once (a second one interrupts whatever runs).
    stop.install()
    try:
        outcomes = serve(settings, files, specs, outputs, stop)
    finally:
        stop.restore()
        if outputs.metrics is not None:
            outputs.metrics.close()
    finish(outcomes, outputs, stop)

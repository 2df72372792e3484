"""The camera pipeline's options, declared once for every command that builds the pipeline
(``fer-edge bench --camera``; ``fer-edge run`` declares the same names, defaults and help).

Each alias is ``Annotated[type, typer.Option(...)]``; the default stays at the parameter, e.g.
``views: Views = DEFAULTS.views``. ``camera_settings(**options)`` turns the values into the one
``CameraSettings`` both commands wire the pipeline from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from fer_edge.camera.options import TUNED, TrackerOptions
from fer_edge.commands.options import DAY_S, MAX_FRAME_SIDE, number

DEFAULTS = TUNED  # run's scheduler defaults
PANEL = "Camera pipeline (the same in run and bench --camera)"
TRACKER = TrackerOptions()

Window = Annotated[
    float, number(help="Seconds per mood-log window.", min=0.1, max=DAY_S, rich_help_panel=PANEL)
]
DetectorModel = Annotated[
    Optional[Path],
    typer.Option(
        help="YuNet .onnx or its TensorRT .engine (build-engine --detector), or a Haar .xml; default: "
        "YuNet from the cache dir (fer-edge fetch-detector), else OpenCV's Haar cascade.",
        rich_help_panel=PANEL,
    ),
]
DetectorDevice = Annotated[
    str,
    typer.Option(help="YuNet .onnx on: auto, cpu, cuda, tensorrt (ONNX Runtime) or opencv (OpenCV DNN).",
                 rich_help_panel=PANEL),
]
MinFace = Annotated[
    int, number(help="Smallest face to classify, in pixels.", min=8, max=4096, rich_help_panel=PANEL)
]
DetectWidth = Annotated[
    Optional[int],
    number(help="Shrink frames to this width for detection only (faster; faces must stay >= min-face).",
           min=32, max=MAX_FRAME_SIDE, rich_help_panel=PANEL),
]
Views = Annotated[
    int,
    number(
        help="Crops per face averaged: 1, 2 (+ mirror) or 6 (3 scales x mirror; "
        "recovers the accuracy a detector's framing costs).",
        min=1,
        max=6,
        rich_help_panel=PANEL,
    ),
]
AllViews = Annotated[
    bool,
    typer.Option(
        help="Classify every view of every face in every frame, instead "
        "of one view per frame in rotation (views x slower).",
        rich_help_panel=PANEL,
    ),
]
DetectEvery = Annotated[
    int,
    number(help="Run the detector every N frames; the tracker carries faces in between.", min=1, max=1000,
           rich_help_panel=PANEL),
]
Adaptive = Annotated[
    bool, typer.Option(help="Also detect on every frame while a track is new or moving fast.", rich_help_panel=PANEL)
]
ReinferEvery = Annotated[
    int,
    number(help="Classify a face again after this many frames (a new face: on each of its first frames).",
           min=1, max=1000, rich_help_panel=PANEL),
]
ReinferIou = Annotated[
    float,
    number(help="...or sooner when its box overlaps the classified one less than this (0: never).", min=0, max=1,
           rich_help_panel=PANEL),
]
Settle = Annotated[
    int,
    number(help="Classify a new face on each of its first N frames, one view each (0: at its first look only).",
           min=0, max=1000, rich_help_panel=PANEL),
]
ClassifyBetween = Annotated[
    bool,
    typer.Option(help="Classify faces on the tracker's box between detector passes too (else only at passes).",
                 rich_help_panel=PANEL),
]
Chase = Annotated[
    bool,
    typer.Option(help="With --adaptive: detect on every frame while a face is lost or not yet found in this "
                 "window (a window counts the faces the detector found in it).", rich_help_panel=PANEL),
]
Drift = Annotated[
    float,
    number(help="With --adaptive: detect again once a face may have moved this share of its width since its "
           "last detection (lower: walkers are looked at more often).", above=0, max=10, rich_help_panel=PANEL),
]
SmallFace = Annotated[
    int,
    number(help="With --adaptive: detect on every frame while a face narrower than this many pixels is in view "
           "(the detector finds small faces only on some frames; 0: never).", min=0, max=4096,
           rich_help_panel=PANEL),
]
Align = Annotated[
    bool, typer.Option(help="Turn faces upright on YuNet's eye landmarks before cropping.", rich_help_panel=PANEL)
]
TrackIou = Annotated[
    float, number(help="Overlap a detection needs to continue a track.", above=0, max=1, rich_help_panel=PANEL)
]
MaxMissed = Annotated[
    int,
    number(help="Frames a track survives without a detection (a face that left ends).", min=0, max=10_000,
           rich_help_panel=PANEL),
]
MinHits = Annotated[
    int, number(help="Detections before a track counts in the mood log.", min=1, max=1000, rich_help_panel=PANEL)
]

KeepPasses = Annotated[
    int,
    number(help="Detector passes that must miss a face (besides --max-missed frames) before its track ends.",
           min=1, max=1000, rich_help_panel=PANEL),
]
MaxMissedNew = Annotated[
    Optional[int],
    number(help="Frames a face found fewer than --min-hits times survives without a detection (default: "
           "--max-missed); with --adaptive the detector looks on every frame meanwhile.",
           min=0, max=10_000, rich_help_panel=PANEL),
]

# The defaults of ``run`` (a test checks that both commands agree).
DEFAULT_WINDOW_S = 60.0
DEFAULT_MIN_FACE = 40

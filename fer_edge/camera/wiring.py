"""One camera pipeline from its settings, the same for ``fer-edge run`` and ``fer-edge bench
--camera``: which model and detector files, the classifier (loaded once, shareable), the detector,
the crop rule, a fresh tracker per run, the loop options and the mood log's run record.

The classifier and the detector are made here and only here (:func:`open_classifier`,
:func:`build_pipeline`), so the runtime underneath can change in one place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from fer_edge.camera.crop import CropRule
from fer_edge.camera.detection import FaceDetector
from fer_edge.camera.metrics import CameraMetrics
from fer_edge.camera.pipeline import CameraLoop, FrameReader, FrameSink, StatusSink, WindowLog
from fer_edge.camera.settings import CameraSettings
from fer_edge.camera.zones import Zone

if TYPE_CHECKING:
    from fer_edge.moodlog.buffered import BufferedLog


@dataclass(frozen=True)
class PipelineFiles:
    model: Path  # the classifier: the one given, else the shipped INT8 model laid out for the device
    detector: Optional[Path]  # YuNet (.onnx/.engine) or a Haar .xml; None: OpenCV's shipped Haar cascade


def pipeline_files(settings: CameraSettings) -> PipelineFiles:
    """The files ``settings`` name, defaults resolved as ``run`` resolves them."""
    from fer_edge.camera.detector_file import find_detector
    from fer_edge.model.shipped import default_model

    model = settings.model if settings.model is not None else default_model(settings.device)
    return PipelineFiles(model=Path(model), detector=find_detector(settings.detector_model))


@contextmanager
def open_classifier(settings: CameraSettings, files: PipelineFiles) -> Iterator[Any]:
    """The emotion classifier on ``settings.device`` (a backend: ``labels``, ``infer``, ``name``, ...)."""
    from fer_edge.runtime.classifier import load_backend

    with load_backend(files.model, device=settings.device, threads=settings.threads) as backend:
        yield backend


@dataclass
class CameraPipeline:
    """The parts of one camera's pipeline; :meth:`loop` puts them to work on a source."""

    settings: CameraSettings
    files: PipelineFiles
    classifier: Any
    detector: FaceDetector
    rule: CropRule

    @property
    def detector_label(self) -> str:
        return f"{self.detector.name} ({getattr(self.detector, 'backend', 'opencv')})"

    @property
    def classifier_label(self) -> str:
        return f"{self.classifier.name} {self.classifier.precision}"

    def detect_workers(self, cameras: int) -> int:
        """How many of ``cameras``' detector passes this pipeline's detector runs at once
        (:func:`camera.multiloop.detect_workers`)."""
        from fer_edge.camera.multiloop import detect_workers

        return detect_workers(cameras, getattr(self.detector, "backend", ""), self.settings.threads)

    def describe(self) -> str:
        """``tiny.onnx (onnxruntime-cpu, fp32), detector yunet (onnxruntime-cpu, every 5 frames, adaptive)``"""
        loop = self.settings.loop
        return (
            f"{self.files.model.name} ({self.classifier.name}, {self.classifier.precision}), detector "
            f"{self.detector.name} ({getattr(self.detector, 'backend', 'opencv')}, every {loop.detect_every} "
            f"frames{', adaptive' if loop.adaptive else ''})"
        )

    def loop(
        self,
        source: FrameReader,
        log: WindowLog,
        *,
        media_fps: Optional[float],
        max_frames: Optional[int] = None,
        stats_every_s: float = 10.0,
        metrics: Optional[CameraMetrics] = None,
        stop: Optional[threading.Event] = None,
        echo: Callable[[str], None] = print,
        sinks: Sequence[FrameSink] = (),
        status: Optional[StatusSink] = None,
        zones: Sequence[Zone] = (),
        window_s: Optional[float] = None,
    ) -> CameraLoop:
        """The loop of this pipeline on ``source`` (a fresh tracker: tracks never leak between runs).
        ``media_fps``: a video file's frame rate (its own clock); None for a live source.
        ``zones``, ``window_s``: one camera's exclusion zones and window (default: the settings')."""
        options = replace(self.settings.loop, media_fps=media_fps, max_frames=max_frames,
                          stats_every_s=stats_every_s)
        if window_s is not None:
            options = replace(options, window_s=window_s)
        return CameraLoop(
            source, self.detector, self.classifier, self.rule, log, options,
            tracker=self.settings.new_tracker(), metrics=metrics or CameraMetrics(labels=self.classifier.labels),
            stop=stop, echo=echo, sinks=sinks, status=status, zones=zones,
        )

    def mood_log(
        self,
        path: Path,
        source: str,
        *,
        hold_windows: Optional[int] = None,
        echo: Callable[[str], None] = print,
        camera: str = "cam0",
        window_s: Optional[float] = None,
    ) -> BufferedLog:
        """The mood log for a run of this pipeline on one camera (``camera``: its name in
        ``windows.camera``; ``window_s``: its window, default the settings'), its run record naming
        the model, the detector and the crop rule. Windows it cannot write yet (full disk, a lock
        held elsewhere) wait in memory, at most ``hold_windows`` (default ``logbuffer.DEFAULT_LIMIT``)."""
        from fer_edge.moodlog.buffered import DEFAULT_LIMIT, BufferedLog
        from fer_edge.moodlog.writer import MoodLog

        log = MoodLog(
            path,
            self.classifier.labels,
            dataset=self.classifier.dataset,
            source=source,
            model=self.files.model.name,
            detector=self.detector.name,
            crop_rule=str(self.rule.to_dict()),
            window_s=window_s or self.settings.loop.window_s,
            busy_timeout_s=1.0,  # a lock held elsewhere costs the loop at most 1 s per try
            camera=camera,
        )
        return BufferedLog(log, echo=echo, limit=DEFAULT_LIMIT if hold_windows is None else hold_windows)


def build_pipeline(
    settings: CameraSettings, classifier: Any, files: Optional[PipelineFiles] = None
) -> CameraPipeline:
    """The pipeline ``settings`` describe, around an open classifier (:func:`open_classifier`; one
    classifier may serve several pipelines)."""
    from fer_edge.camera.crop import crop_rule_for
    from fer_edge.camera.detection import make_detector

    files = files or pipeline_files(settings)
    detector = make_detector(
        files.detector, min_face=settings.min_face, detect_width=settings.detect_width,
        device=settings.detector_device, threads=settings.threads,
    )
    return CameraPipeline(settings, files, classifier, detector, crop_rule_for(detector.name))


@contextmanager
def open_pipeline(settings: CameraSettings, files: Optional[PipelineFiles] = None) -> Iterator[CameraPipeline]:
    """:func:`build_pipeline` with its own classifier, released on exit."""
    files = files or pipeline_files(settings)
    with open_classifier(settings, files) as classifier:
        yield build_pipeline(settings, classifier, files)

"""``fer-edge bench --camera VIDEO``: the whole camera pipeline on a video, frames/s and per stage.

The video plays through the pipeline ``fer-edge run`` builds from the same options
(``camera.wiring``: model, detector, min-face, detect-width, tracker and scheduler) exactly as
``run`` plays a file (decode, detect, track, crop + classify, mood log in a temporary database),
once per configuration and repeat, configurations interleaved so a shared machine's load hits
them alike. A Jetson owner learns
from it how many frames per second the board gives before mounting the camera.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict

from fer_edge.camera.settings import CameraSettings
from fer_edge.camera.stages import STAGES
from fer_edge.core.atomic import write_text_atomic
from fer_edge.core.errors import FerEdgeError
from fer_edge.core.markdown import markdown_table

Row = Dict[str, Any]


@dataclass
class CameraConfig:
    name: str
    settings: CameraSettings  # the pipeline of this row (the classifier is the bench's, shared by all rows)


def standard_configs(settings: CameraSettings) -> list[CameraConfig]:
    """``run``'s pipeline as the options give it (by default: detect less, track more), and the same
    pipeline with the detector and the classifier on every frame."""
    defaults = CameraSettings()
    same_as_run = settings.loop == replace(defaults.loop, window_s=settings.loop.window_s) and (
        settings.tracker == defaults.tracker
    )
    name = "tuned (run's default)" if same_as_run else "as run with these options"
    return [CameraConfig(name, settings), CameraConfig("every frame", settings.every_frame())]


@dataclass
class CameraBench:
    video: Path
    settings: CameraSettings  # the classifier (model, device, threads) of every row; the default rows
    repeats: int = 1
    max_frames: int | None = None
    configs: list[CameraConfig] = field(default_factory=list)  # empty: standard_configs(settings)

    def __post_init__(self) -> None:
        if not self.configs:
            self.configs = standard_configs(self.settings)


def _one_pass(bench: CameraBench, config: CameraConfig, classifier: Any, log_path: Path) -> tuple[Any, str]:
    """The video through the pipeline as ``run`` plays a file: the same wiring, its own clock."""
    from fer_edge.camera.sources import FrameSource, parse_source
    from fer_edge.camera.wiring import build_pipeline

    pipeline = build_pipeline(config.settings, classifier)
    with FrameSource(parse_source(str(bench.video))) as frames:
        log = pipeline.mood_log(log_path, str(bench.video), echo=lambda s: None)
        try:
            loop = pipeline.loop(frames, log, media_fps=frames.fps or 30.0, max_frames=bench.max_frames,
                                 stats_every_s=1e9, echo=lambda s: None)
            stats = loop.run()
        finally:
            log.close()
    return stats, pipeline.detector_label


def pipeline_options(settings: CameraSettings) -> dict[str, Any]:
    loop = {k: v for k, v in asdict(settings.loop).items()
            if k not in ("window_s", "max_frames", "stats_every_s", "media_fps")}
    return {**loop, "min_face": settings.min_face, "detect_width": settings.detect_width,
            "tracker": asdict(settings.tracker)}


def run_camera_bench(bench: CameraBench, on_row: Callable[[Row], None] = lambda r: None) -> list[Row]:
    """One row per configuration: median and best frames/s over the repeats, mean ms per stage
    (of the median run), faces per frame, detector passes, window counts."""
    from fer_edge.camera.wiring import open_classifier, pipeline_files

    if not bench.video.is_file():
        raise FerEdgeError("video not found", path=bench.video)
    if bench.repeats < 1:
        raise FerEdgeError(f"--repeats must be at least 1, got {bench.repeats}")
    runs: list[list[Any]] = [[] for _ in bench.configs]
    detectors: list[str] = ["" for _ in bench.configs]
    with open_classifier(bench.settings, pipeline_files(bench.settings)) as classifier, \
            tempfile.TemporaryDirectory(prefix="fer-edge-camera-") as tmp:
        count = len(bench.configs)
        for repeat in range(bench.repeats):
            for step in range(count):
                i = (step + repeat) % count  # rotate the order: a load that drifts hits every config
                log_path = Path(tmp) / f"mood{repeat * count + i}.db"
                stats, detectors[i] = _one_pass(bench, bench.configs[i], classifier, log_path)
                runs[i].append(stats)
        classifier_label = f"{classifier.name} {classifier.precision}"
    rows = []
    for config, stats_list, detector_name in zip(bench.configs, runs, detectors):
        ordered = sorted(stats_list, key=lambda s: s.total.fps)
        median = ordered[len(ordered) // 2]
        timing = median.total
        row: Row = {
            "config": config.name,
            "options": pipeline_options(config.settings),
            "detector": detector_name,
            "classifier": classifier_label,
            "frames": timing.frames,
            "fps_median": round(statistics.median(s.total.fps for s in stats_list), 2),
            "fps_best": round(ordered[-1].total.fps, 2),
            "fps_runs": [round(s.total.fps, 2) for s in stats_list],
            "mean_ms": {k: round(v, 3) for k, v in timing.mean_ms().items()},
            "faces_per_frame": round(timing.faces / max(timing.frames, 1), 3),
            "detector_runs": timing.detector_runs,
            "windows": [
                {"faces": w.faces, "counts": {k: v for k, v in w.counts.items() if v}} for w in median.windows
            ],
        }
        rows.append(row)
        on_row(row)
    return rows


def camera_report(bench: CameraBench, rows: list[Row], machine: dict[str, Any]) -> dict[str, Any]:
    from fer_edge.camera.wiring import pipeline_files
    from fer_edge.core.optional import import_cv2

    machine = {**machine, "opencv": import_cv2().__version__}
    files = pipeline_files(bench.settings)
    return {
        "video": str(bench.video),
        "model": str(files.model),
        "detector_model": str(files.detector) if files.detector else "Haar (OpenCV)",
        "repeats": bench.repeats,
        "machine": machine,
        "rows": rows,
    }


def _cells(row: Row) -> list[str]:
    m = row["mean_ms"]
    return [
        row["config"],
        row["detector"],
        row["classifier"],
        f"{row['fps_median']:.1f}",
        *(f"{m.get(stage, 0.0):.2f}" for stage in STAGES),
        f"{row['faces_per_frame']:.2f}",
        f"{row['detector_runs']}/{row['frames']}",
    ]


HEADERS = ["config", "detector", "classifier", "fps (median)", *(f"{s} ms" for s in STAGES),
           "faces/frame", "detector passes"]


def rich_camera_table(rows: list[Row]) -> Any:
    from rich.table import Table

    table = Table(title="camera pipeline, end to end (mean ms per frame)")
    for header in HEADERS:
        table.add_column(header, justify="left" if header in ("config", "detector", "classifier") else "right")
    for row in rows:
        table.add_row(*_cells(row))
    return table


def machine_markdown(machine: dict[str, Any]) -> list[str]:
    """The command and the machine, as every camera benchmark's Markdown opens."""
    return [
        f"Command: `{machine.get('command', '')}`",
        "",
        f"Machine: {machine.get('cpu')} ({machine.get('cores')} cores, flags: "
        f"{' '.join(machine.get('cpu_flags') or []) or 'not recorded'}), GPU {machine.get('gpu') or 'none'}, "
        f"load average {machine.get('load_average')}; packages {machine.get('packages')}, "
        f"OpenCV {machine.get('opencv')}",
    ]


def camera_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Camera pipeline, end to end",
        "",
        *machine_markdown(report["machine"]),
        "",
        f"Video {report['video']}, model {report['model']}, detector {report['detector_model']}, "
        f"median of {report['repeats']} run(s) per configuration, configurations interleaved.",
        "",
        markdown_table(HEADERS, [_cells(row) for row in report["rows"]]),
    ]
    return "\n".join(lines) + "\n"


def write_camera_json(report: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")


def write_camera_markdown(report: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, camera_markdown(report))



def bench_camera_command(
    console: Any,
    video: Path,
    models: list[Path],
    settings: CameraSettings,
    repeats: int,
    json_out: Path | None,
    markdown_out: Path | None,
) -> None:
    """What ``fer-edge bench --camera`` does: run, print the table, write the requested files.
    ``settings`` are run's camera options as given; ``models``: at most one classifier (default: run's)."""
    from fer_edge.bench.machine import machine_info
    from fer_edge.camera.detector_file import HAAR_HINT, cached_yunet
    from fer_edge.camera.wiring import pipeline_files

    if len(models) > 1:
        raise FerEdgeError("--camera takes one classifier model (or none: the shipped FER2013 INT8 that run uses)")
    for out in (json_out, markdown_out):
        if out is not None and out.resolve() == video.resolve():
            raise FerEdgeError("an output would overwrite the input video", path=out)
    if not video.is_file():
        raise FerEdgeError("video not found", path=video)
    if models:
        settings = replace(settings, model=models[0])
    if pipeline_files(settings).detector is None:
        console.print(HAAR_HINT.format(where=cached_yunet()), markup=False)
    bench = CameraBench(video=video, settings=settings, repeats=repeats)
    with console.status(f"running the camera pipeline on {video.name}"):
        rows = run_camera_bench(bench, on_row=lambda r: console.print(f"{r['config']}: {r['fps_median']:.1f} fps",
                                                                      markup=False))
    report = camera_report(bench, rows, machine_info())
    console.print(rich_camera_table(rows))
    for path, write in ((json_out, write_camera_json), (markdown_out, write_camera_markdown)):
        if path is not None:
            write(report, path)
            console.print(f"wrote {path}")

"""``fer-edge bench --camera VIDEO``: the whole camera pipeline on a video, frames/s and per stage.

The video plays through ``run_loop`` exactly as ``fer-edge run`` plays a file (decode, detect,
track, crop + classify, mood log in a temporary database), once per configuration and repeat,
configurations interleaved so a shared machine's load hits them alike. A Jetson owner learns
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

from fer_edge.atomic import write_text_atomic
from fer_edge.camera.options import TUNED, LoopOptions
from fer_edge.camera.stages import STAGES
from fer_edge.errors import FerEdgeError

Row = Dict[str, Any]


@dataclass
class CameraConfig:
    name: str
    options: LoopOptions
    detector_device: str = "auto"  # for a YuNet .onnx: ONNX Runtime's provider, or "opencv"


def standard_configs(detector_device: str = "auto") -> list[CameraConfig]:
    """``run``'s default (detect less, track more) and the detect-and-classify-every-frame loop."""
    return [
        CameraConfig("tuned (run's default)", TUNED, detector_device),
        CameraConfig("every frame", LoopOptions(), detector_device),
    ]


@dataclass
class CameraBench:
    video: Path
    model: Path
    detector_model: Path | None
    device: str = "auto"
    threads: int | None = None
    repeats: int = 1
    max_frames: int | None = None
    window_s: float = 10.0
    configs: list[CameraConfig] = field(default_factory=standard_configs)


def _one_pass(bench: CameraBench, config: CameraConfig, backend: Any, tmp: Path, index: int) -> Any:
    from fer_edge.camera.crop import crop_rule_for
    from fer_edge.camera.detection import make_detector
    from fer_edge.camera.pipeline import run_loop
    from fer_edge.camera.sources import FrameSource, parse_source
    from fer_edge.moodlog.writer import MoodLog

    detector = make_detector(bench.detector_model, device=config.detector_device, threads=bench.threads)
    log = MoodLog(tmp / f"mood{index}.db", backend.labels)
    try:
        with FrameSource(parse_source(str(bench.video))) as frames:
            options = replace(
                config.options,
                window_s=bench.window_s,
                media_fps=frames.fps or 30.0,
                stats_every_s=1e9,
                max_frames=bench.max_frames,
            )
            stats = run_loop(frames, detector, backend, crop_rule_for(detector.name), log, options,
                             echo=lambda s: None)
    finally:
        log.close()
    return stats, detector


def run_camera_bench(bench: CameraBench, on_row: Callable[[Row], None] = lambda r: None) -> list[Row]:
    """One row per configuration: median and best frames/s over the repeats, mean ms per stage
    (of the median run), faces per frame, detector passes, window counts."""
    from fer_edge.backends import load_backend

    if not bench.video.is_file():
        raise FerEdgeError("video not found", path=bench.video)
    if bench.repeats < 1:
        raise FerEdgeError(f"--repeats must be at least 1, got {bench.repeats}")
    runs: list[list[Any]] = [[] for _ in bench.configs]
    detectors: list[str] = ["" for _ in bench.configs]
    with load_backend(bench.model, device=bench.device, threads=bench.threads) as backend, \
            tempfile.TemporaryDirectory(prefix="fer-edge-camera-") as tmp:
        count = len(bench.configs)
        for repeat in range(bench.repeats):
            for step in range(count):
                i = (step + repeat) % count  # rotate the order: a load that drifts hits every config
                config = bench.configs[i]
                stats, detector = _one_pass(bench, config, backend, Path(tmp), repeat * count + i)
                runs[i].append(stats)
                detectors[i] = f"{detector.name} ({getattr(detector, 'backend', 'opencv')})"
        classifier = f"{backend.name} {backend.precision}"
    rows = []
    for config, stats_list, detector_name in zip(bench.configs, runs, detectors):
        ordered = sorted(stats_list, key=lambda s: s.total.fps)
        median = ordered[len(ordered) // 2]
        timing = median.total
        row: Row = {
            "config": config.name,
            "options": {k: v for k, v in asdict(config.options).items()
                        if k not in ("window_s", "max_frames", "stats_every_s", "media_fps")},
            "detector": detector_name,
            "classifier": classifier,
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
    from fer_edge.camera.sources import import_cv2

    machine = {**machine, "opencv": import_cv2().__version__}
    return {
        "video": str(bench.video),
        "model": str(bench.model),
        "detector_model": str(bench.detector_model) if bench.detector_model else "Haar (OpenCV)",
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


def camera_markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        "# Camera pipeline, end to end",
        "",
        f"Command: `{machine.get('command', '')}`",
        "",
        f"Machine: {machine.get('cpu')} ({machine.get('cores')} cores), GPU {machine.get('gpu') or 'none'}, "
        f"load average {machine.get('load_average')}; packages {machine.get('packages')}, "
        f"OpenCV {machine.get('opencv')}",
        "",
        f"Video {report['video']}, model {report['model']}, detector {report['detector_model']}, "
        f"median of {report['repeats']} run(s) per configuration, configurations interleaved.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in report["rows"]]
    return "\n".join(lines) + "\n"


def write_camera_json(report: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")


def write_camera_markdown(report: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, camera_markdown(report))



def bench_camera_command(
    console: Any,
    video: Path,
    models: list[Path],
    detector_model: Path | None,
    detector_device: str,
    device: str,
    threads: int,
    repeats: int,
    json_out: Path | None,
    markdown_out: Path | None,
) -> None:
    """What ``fer-edge bench --camera`` does: run, print the table, write the requested files."""
    from fer_edge.bench.machine import machine_info
    from fer_edge.camera.detector_file import HAAR_HINT, cached_yunet, find_detector
    from fer_edge.weights import shipped_model

    if len(models) > 1:
        raise FerEdgeError("--camera takes one classifier model (or none: the shipped FER2013 INT8)")
    for out in (json_out, markdown_out):
        if out is not None and out.resolve() == video.resolve():
            raise FerEdgeError("an output would overwrite the input video", path=out)
    if not video.is_file():
        raise FerEdgeError("video not found", path=video)
    detector_path = find_detector(detector_model)
    if detector_path is None:
        console.print(HAAR_HINT.format(where=cached_yunet()), markup=False)
    bench = CameraBench(
        video=video,
        model=models[0] if models else shipped_model("fer2013", "int8"),
        detector_model=detector_path,
        device=device,
        threads=threads,
        repeats=repeats,
        configs=standard_configs(detector_device),
    )
    with console.status(f"running the camera pipeline on {video.name}"):
        rows = run_camera_bench(bench, on_row=lambda r: console.print(f"{r['config']}: {r['fps_median']:.1f} fps",
                                                                      markup=False))
    report = camera_report(bench, rows, machine_info())
    console.print(rich_camera_table(rows))
    for path, write in ((json_out, write_camera_json), (markdown_out, write_camera_markdown)):
        if path is not None:
            write(report, path)
            console.print(f"wrote {path}")

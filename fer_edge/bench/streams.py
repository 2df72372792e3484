"""``fer-edge bench --camera VIDEO --streams N|auto``: how many cameras does this device take?

N copies of the video play as live cameras (each at the video's own fps, as ``run --realtime``
plays a file: a frame the pipeline could not take in time is dropped and counted) through ONE
process: one detector, one classifier, the faces of all streams in one batched call per step, as
``run`` serves several cameras. Per stream: achieved frames/s, dropped share, end-to-end delay
(capture to classification, p50/p99) and mean ms per stage.

``auto`` tries 1, 2, 3, ... streams and keeps the largest N that is *sustained*: at most
``MAX_DROPPED`` of the frames dropped on every stream, and every stream's counts intact (the faces
within 1 % of a single stream's). How far each emotion's share moved from a single stream's is
reported per stream (``emotion_share_points``).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from fer_edge.camera.settings import CameraSettings
from fer_edge.camera.stages import STAGES
from fer_edge.core.errors import FerEdgeError
from fer_edge.core.markdown import markdown_table

MAX_DROPPED = 0.01  # a stream that drops more than 1 % of its frames is not served in real time
MAX_STREAMS = 64
Row = Dict[str, Any]


def parse_streams(text: str) -> Optional[int]:
    """``--streams``: a whole number from 1 to MAX_STREAMS, or ``auto`` (None)."""
    if text.strip().lower() == "auto":
        return None
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_STREAMS:
        raise FerEdgeError(f"--streams must be a whole number from 1 to {MAX_STREAMS}, or auto, got {text!r}")
    return int(text)


@dataclass
class StreamsTrial:
    streams: int
    rows: List[Row]  # one per stream
    seconds: float
    batch_mean: float  # faces per classifier call
    cameras_per_call: float  # streams whose faces shared a classifier call, on average

    @property
    def worst_dropped(self) -> float:
        return max(r["dropped_share"] for r in self.rows)

    @property
    def aggregate_fps(self) -> float:
        return sum(r["fps"] for r in self.rows)

    def to_dict(self, sustained: bool) -> Dict[str, Any]:
        return {"streams": self.streams, "sustained": sustained, "seconds": round(self.seconds, 2),
                "aggregate_fps": round(self.aggregate_fps, 2), "faces_per_call": round(self.batch_mean, 2),
                "cameras_per_call": round(self.cameras_per_call, 2), "rows": self.rows}


def counts_intact(row: Row, reference: Row) -> bool:
    """The faces a stream counted are a single stream's, within 1 % (at least one face): no face
    lost to the load."""
    return bool(abs(row["faces"] - reference["faces"]) <= max(1, 0.01 * reference["faces"]))


def share_points(row: Row, reference: Row) -> float:
    """The largest difference, in points, between an emotion's share of the faces in ``row`` and in
    ``reference`` (a single stream's): what dropped frames changed in the mood."""
    faces, ref_faces = max(row["faces"], 1), max(reference["faces"], 1)
    emotions = set(row["counts"]) | set(reference["counts"])
    return max((abs(row["counts"].get(e, 0) / faces - reference["counts"].get(e, 0) / ref_faces) * 100
                for e in emotions), default=0.0)


def run_streams(video: Path, settings: CameraSettings, streams: int, tmp: Path) -> StreamsTrial:
    """``streams`` copies of ``video`` as live cameras through one process until every copy ends,
    with the classifier, the detector and their threads as ``run`` serving that many cameras has them."""
    from fer_edge.camera.capture import ThreadedCapture
    from fer_edge.camera.metrics import CameraMetrics
    from fer_edge.camera.multiloop import Feed, MultiCameraLoop
    from fer_edge.camera.sources import FrameSource, parse_source
    from fer_edge.camera.wiring import open_pipeline

    spec = parse_source(str(video))
    with contextlib.ExitStack() as stack:
        pipeline = stack.enter_context(open_pipeline(settings))
        classifier = pipeline.classifier
        feeds = []
        for i in range(streams):
            frames = stack.enter_context(FrameSource(spec))
            fps = frames.fps or 30.0
            name = f"stream{i}"
            log = pipeline.mood_log(tmp / f"streams{streams}.db", f"{video} #{i}", echo=lambda s: None, camera=name)
            stack.callback(log.close)
            loop = pipeline.loop(frames, log, media_fps=fps, stats_every_s=1e9, echo=lambda s: None,
                                 metrics=CameraMetrics(name, classifier.labels))
            feeds.append(Feed(name, ThreadedCapture(frames, pace_fps=fps, name=name), loop, paced=True))
        _warm_up(pipeline, video)
        multi = MultiCameraLoop(feeds, classifier, echo=lambda s: None, detect_workers=pipeline.detect_workers(streams))
        t0 = time.perf_counter()
        multi.run()
        seconds = time.perf_counter() - t0
    rows = [_row(feed, seconds, multi.delays(feed.name)) for feed in feeds]
    sizes = multi.batch_sizes or [0]
    shared = multi.cameras_per_batch or [0]
    return StreamsTrial(streams, rows, seconds, float(np.mean(sizes)), float(np.mean(shared)))


def _warm_up(pipeline: Any, video: Path) -> None:
    """One frame through the detector and the classifier before the clock runs: a first call's
    set-up is not a dropped frame."""
    from fer_edge.core.optional import import_cv2

    cv2 = import_cv2()
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    cap.release()
    if ok:
        pipeline.detector.detect(frame)
    pipeline.classifier.infer(np.zeros((1, 48, 48), np.float32))


def _row(feed: Any, seconds: float, delays: List[float]) -> Row:
    stats = feed.loop.stats
    total = stats.total
    dropped = feed.capture.dropped
    counts: Dict[str, int] = {}
    for window in stats.windows:
        for emotion, n in window.counts.items():
            if n:
                counts[emotion] = counts.get(emotion, 0) + n
    p50, p99 = (np.percentile(delays, [50, 99]) if delays else (0.0, 0.0))
    return {
        "stream": feed.name,
        "frames": total.frames,
        "dropped": dropped,
        "dropped_share": round(dropped / max(total.frames + dropped, 1), 4),
        "fps": round(total.frames / seconds, 2) if seconds > 0 else 0.0,
        "delay_ms_p50": round(float(p50), 2),
        "delay_ms_p99": round(float(p99), 2),
        "mean_ms": {k: round(v, 3) for k, v in total.mean_ms().items()},
        "faces": sum(counts.values()),
        "counts": counts,
    }


def find_capacity(
    video: Path,
    settings: CameraSettings,
    streams: Optional[int],
    on_trial: Callable[[StreamsTrial, bool], None] = lambda t, ok: None,
    most: int = MAX_STREAMS,
) -> tuple[List[StreamsTrial], List[bool], int]:
    """The trials run (``streams`` alone, or 1, 2, ... ``most`` for auto), whether each was
    sustained, and the largest sustained N (0: not even one stream in real time)."""
    trials: List[StreamsTrial] = []
    sustained: List[bool] = []
    best = 0
    reference: Optional[List[Row]] = None
    with tempfile.TemporaryDirectory(prefix="fer-edge-streams-") as tmp:
        counts = [streams] if streams is not None else range(1, most + 1)
        for n in counts:
            trial = run_streams(video, settings, n, Path(tmp))
            if reference is None:
                reference = trial.rows if n == 1 else None
            if reference is not None:
                for row in trial.rows:
                    row["emotion_share_points"] = round(share_points(row, reference[0]), 2)
            ok = trial.worst_dropped <= MAX_DROPPED and (
                reference is None or all(counts_intact(r, reference[0]) for r in trial.rows)
            )
            trials.append(trial)
            sustained.append(ok)
            on_trial(trial, ok)
            if ok:
                best = max(best, n)
            elif streams is None:
                break
    return trials, sustained, best


def quotable(best: int, width: int, height: int, fps: float, tried: Optional[int] = None) -> str:
    """The line a person can quote; ``tried``: the N of ``--streams N`` (None for auto)."""
    def cameras(n: int) -> str:
        return f"{'one camera' if n == 1 else f'{n} cameras'} of {width}x{height} at {fps:g} fps"

    if tried is not None and best < tried:
        return f"this device does not run {cameras(tried)} in real time"
    if best == 0:
        return f"this device does not run {cameras(1)} in real time"
    return f"this device runs {cameras(best)}"


def video_format(video: Path) -> tuple[int, int, float]:
    from fer_edge.core.optional import import_cv2

    cv2 = import_cv2()
    cap = cv2.VideoCapture(str(video))
    try:
        if not cap.isOpened():
            raise FerEdgeError("cannot open the video", path=video)
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        return int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), (
            fps if 0 < fps < 1000 else 30.0)
    finally:
        cap.release()


HEADERS = ["streams", "stream", "fps", "dropped %", "delay p50 ms", "delay p99 ms",
           *(f"{s} ms" for s in STAGES), "faces", "emotion shares vs 1 stream (points)", "sustained"]


def cells(trial: StreamsTrial, ok: bool) -> List[List[str]]:
    out = []
    for row in trial.rows:
        m = row["mean_ms"]
        out.append([str(trial.streams), row["stream"], f"{row['fps']:.1f}", f"{100 * row['dropped_share']:.2f}",
                    f"{row['delay_ms_p50']:.1f}", f"{row['delay_ms_p99']:.1f}",
                    *(f"{m.get(s, 0.0):.2f}" for s in STAGES), str(row["faces"]),
                    f"{row['emotion_share_points']:.1f}" if "emotion_share_points" in row else "-",
                    "yes" if ok else "no"])
    return out


def streams_report(video: Path, settings: CameraSettings, trials: List[StreamsTrial], sustained: List[bool],
                   best: int, line: str, machine: Dict[str, Any]) -> Dict[str, Any]:
    from fer_edge.bench.camera import pipeline_options
    from fer_edge.camera.wiring import pipeline_files
    from fer_edge.core.optional import import_cv2

    files = pipeline_files(settings)
    return {
        "video": str(video),
        "model": str(files.model),
        "detector_model": str(files.detector) if files.detector else "Haar (OpenCV)",
        "options": pipeline_options(settings),  # the scheduler measured: its cost is most of a frame's
        "machine": {**machine, "opencv": import_cv2().__version__},
        "max_dropped_share": MAX_DROPPED,
        "trials": [t.to_dict(ok) for t, ok in zip(trials, sustained)],
        "sustained_streams": best,
        "line": line,
    }


def streams_markdown(report: Dict[str, Any]) -> str:
    from fer_edge.bench.camera import machine_markdown

    lines = [
        "# Cameras per device: streams in one process",
        "",
        f"**{report['line']}**",
        "",
        *machine_markdown(report["machine"]),
        "",
        f"Video {report['video']} played as live cameras at its own fps, model {report['model']}, detector "
        f"{report['detector_model']}, options {report.get('options', 'not recorded')}; sustained: at most "
        f"{100 * report['max_dropped_share']:g} % of the frames dropped on every stream and every stream's faces "
        "within 1 % of one stream's (emotion shares vs one "
        "stream: the largest difference of an emotion's share, in points).",
        "",
    ]
    rows = []
    for trial in report["trials"]:
        t = StreamsTrial(trial["streams"], trial["rows"], trial["seconds"], trial["faces_per_call"],
                         trial["cameras_per_call"])
        rows += cells(t, trial["sustained"])
    lines.append(markdown_table(HEADERS, rows))
    return "\n".join(lines) + "\n"


def bench_streams_command(
    console: Any,
    video: Path,
    models: List[Path],
    settings: CameraSettings,
    streams_text: str,
    json_out: Optional[Path],
    markdown_out: Optional[Path],
) -> None:
    """What ``fer-edge bench --camera VIDEO --streams N|auto`` does: trials, the table, the line."""
    import json

    from rich.table import Table

    from fer_edge.bench.machine import machine_info
    from fer_edge.camera.wiring import pipeline_files
    from fer_edge.core.atomic import write_text_atomic

    streams = parse_streams(streams_text)
    if len(models) > 1:
        raise FerEdgeError("--camera takes one classifier model (or none: the shipped FER2013 INT8 that run uses)")
    if not video.is_file():
        raise FerEdgeError("video not found", path=video)
    if models:
        settings = replace(settings, model=models[0])
    width, height, fps = video_format(video)

    def say(trial: StreamsTrial, ok: bool) -> None:
        console.print(f"{trial.streams} streams: {trial.aggregate_fps:.1f} fps in all, worst dropped "
                      f"{100 * trial.worst_dropped:.2f} % -> {'sustained' if ok else 'not sustained'}", markup=False)

    pipeline_files(settings)  # a missing model or detector file: one line before the first trial
    trials, sustained, best = find_capacity(video, settings, streams, on_trial=say)
    line = quotable(best, width, height, fps, streams)
    table = Table(title="streams in one process (each at the video's fps, as live cameras)")
    for header in HEADERS:
        table.add_column(header, justify="left" if header == "stream" else "right")
    for trial, ok in zip(trials, sustained):
        for row in cells(trial, ok):
            table.add_row(*row)
    console.print(table)
    console.print(line, markup=False)
    report = streams_report(video, settings, trials, sustained, best, line, machine_info())
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(report, indent=2) + "\n")
        console.print(f"wrote {json_out}")
    if markdown_out is not None:
        write_text_atomic(markdown_out, streams_markdown(report))
        console.print(f"wrote {markdown_out}")

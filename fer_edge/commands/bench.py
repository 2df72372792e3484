"""``fer-edge bench``: latency, throughput, memory and accuracy of every backend vs the FP32 baseline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional

import typer
from typing_extensions import Annotated

from fer_edge.commands import options
from fer_edge.commands.camera_options import (
    DEFAULT_MIN_FACE,
    DEFAULT_WINDOW_S,
    DEFAULTS,
    TRACKER,
    Adaptive,
    Align,
    AllViews,
    Chase,
    ClassifyBetween,
    DetectEvery,
    DetectorDevice,
    DetectorModel,
    DetectWidth,
    Drift,
    KeepPasses,
    MaxMissed,
    MaxMissedNew,
    MinFace,
    MinHits,
    ReinferEvery,
    ReinferIou,
    Settle,
    SmallFace,
    TrackIou,
    Views,
    Window,
)
from fer_edge.commands.options import number
from fer_edge.core.errors import FerEdgeError

if TYPE_CHECKING:
    from rich.console import Console

    from fer_edge.bench.runner import BenchOptions, BenchReport

SPLIT_CHOICES = ("Training", "PublicTest", "PrivateTest")


def bench(
    extra_models: Annotated[
        Optional[List[Path]],
        typer.Argument(
            metavar="MODELS",
            help="Model files, as with --models (so `--models a.onnx b.onnx` lists several).",
            show_default=False,
        ),
    ] = None,
    models: Annotated[
        Optional[List[Path]],
        typer.Option(
            "--models",
            help="Model files: .pt (PyTorch), .onnx (ONNX Runtime), .engine (TensorRT). "
            "Default: the shipped FER2013 models.",
            show_default=False,
        ),
    ] = None,
    data: Annotated[
        Optional[Path], typer.Option(help="fer2013.csv(.gz): measure accuracy on real faces (and time them).")
    ] = None,
    votes: options.Votes = None,
    split: Annotated[str, typer.Option(help="Split to measure accuracy on.")] = "PrivateTest",
    batch: options.BenchBatches = "1,8,64",
    threads: Annotated[int, number(help="CPU threads per backend.", min=1, max=options.MAX_THREADS)] = 2,
    min_time: Annotated[float, number(help="Minimum seconds per measurement.", above=0, max=3600)] = 1.0,
    min_iters: Annotated[
        int, number(help="Minimum calls at batch 1 (images at larger batches).", min=1, max=10_000_000)
    ] = 100,
    device: Annotated[
        str, typer.Option(help="auto (everything this machine has), cpu, cuda or tensorrt.")
    ] = "auto",
    rounds: Annotated[
        int,
        number(
            help="Run the rows round-robin this many times and report medians, and the speedup as the "
            "median of per-round ratios: steadier figures on a shared machine.",
            min=1,
            max=20,  # bench.runner.MAX_ROUNDS
        ),
    ] = 1,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the results as JSON.")] = None,
    markdown_out: Annotated[
        Optional[Path], typer.Option("--markdown", help="Write the table as Markdown.")
    ] = None,
    plot_out: Annotated[
        Optional[Path],
        typer.Option("--plot", help="Write latency-vs-accuracy and throughput-vs-batch plots (PNG)."),
    ] = None,
    wide: Annotated[
        bool,
        typer.Option(
            "--wide", help="Show every column, even past the terminal's width (by default the table fits it)."
        ),
    ] = False,
    camera: Annotated[
        Optional[Path],
        typer.Option(
            help="Run the whole camera pipeline on this video instead, as `run` plays a file with the same "
            "camera options (below): end-to-end frames/s and ms per stage, for those options and for "
            "detection on every frame.",
            show_default=False,
        ),
    ] = None,
    streams: Annotated[
        Optional[str],
        typer.Option(
            help="With --camera: play N copies of the video as live cameras in one process (as run serves "
            "several) and report per-stream fps, dropped frames, delay; auto: the most the device sustains.",
            show_default=False,
        ),
    ] = None,
    # -- --camera: the camera options of `run` (declared once, fer_edge/commands/camera_options.py) --
    window: Window = DEFAULT_WINDOW_S,
    detector_model: DetectorModel = None,
    detector_device: DetectorDevice = "auto",
    min_face: MinFace = DEFAULT_MIN_FACE,
    detect_width: DetectWidth = None,
    views: Views = DEFAULTS.views,
    all_views: AllViews = False,
    detect_every: DetectEvery = DEFAULTS.detect_every,
    adaptive: Adaptive = DEFAULTS.adaptive,
    reinfer_every: ReinferEvery = DEFAULTS.reinfer_every,
    reinfer_iou: ReinferIou = DEFAULTS.reinfer_iou,
    settle: Settle = DEFAULTS.settle,
    classify_between: ClassifyBetween = DEFAULTS.classify_between,
    chase: Chase = DEFAULTS.chase,
    drift: Drift = DEFAULTS.drift,
    small_face: SmallFace = DEFAULTS.small_face,
    align: Align = DEFAULTS.align,
    track_iou: TrackIou = TRACKER.iou_threshold,
    max_missed: MaxMissed = TRACKER.max_missed,
    min_hits: MinHits = TRACKER.min_hits,
    keep_passes: KeepPasses = TRACKER.keep_passes,
    max_missed_new: MaxMissedNew = TRACKER.max_missed_unconfirmed,
    estimate: Annotated[
        Optional[str],
        typer.Option(
            help="Print the roofline lower bound instead of benchmarking: for a Jetson (orin-nano, "
            "orin-nano-super, orin-nx, agx-orin; published peaks) or for this machine (host: peaks from its "
            "instruction set and clock on --threads cores; --json/--markdown write it).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Benchmark every backend against the FP32 baseline: latency, throughput, memory, accuracy."""
    from rich.console import Console

    from fer_edge.bench.harness import MeasureConfig
    from fer_edge.bench.plan import parse_batches
    from fer_edge.core.paths import guard_outputs

    console = Console()
    if not console.is_terminal:
        console = Console(width=220)  # piped to a file: keep the wide table on one line per row
    all_models = [*(models or []), *(extra_models or [])]
    guard_outputs(
        {"--data": data, "--votes": votes, "--camera": camera, "--detector-model": detector_model,
         **{f"model {m}": m for m in all_models}},
        {"--json": json_out, "--markdown": markdown_out, "--plot": plot_out},
    )
    batches = parse_batches(batch)
    if split not in SPLIT_CHOICES:
        raise FerEdgeError(f"--split must be one of {', '.join(SPLIT_CHOICES)}, got {split!r}")
    if threads < 1:
        raise FerEdgeError(f"--threads must be at least 1, got {threads}")

    if streams is not None and camera is None:
        raise FerEdgeError("--streams needs --camera VIDEO (the video each stream plays)")
    if camera is not None:
        from fer_edge.bench.camera import bench_camera_command
        from fer_edge.camera.settings import camera_settings

        settings = camera_settings(
            model=None, device=device, threads=threads, detector_model=detector_model,
            detector_device=detector_device, min_face=min_face, detect_width=detect_width, window=window,
            views=views, all_views=all_views, detect_every=detect_every, adaptive=adaptive,
            reinfer_every=reinfer_every, reinfer_iou=reinfer_iou, align=align, track_iou=track_iou,
            max_missed=max_missed, min_hits=min_hits, settle=settle, classify_between=classify_between, chase=chase,
            drift=drift, small_face=small_face, keep_passes=keep_passes, max_missed_new=max_missed_new,
        )
        if streams is not None:
            from fer_edge.bench.streams import bench_streams_command, parse_streams

            parse_streams(streams)  # a wrong --streams is said before a model loads
            bench_streams_command(console, camera, all_models, settings, streams, json_out, markdown_out)
            return
        bench_camera_command(console, camera, all_models, settings, rounds, json_out, markdown_out)
        return

    if estimate is not None:
        _print_estimate(console, estimate, all_models, max(batches), threads, json_out, markdown_out, wide)
        return

    from fer_edge.bench.runner import BenchOptions

    options = BenchOptions(
        models=all_models,
        data=data,
        votes=votes,
        split=split,
        batches=batches,
        threads=threads,
        device=device,
        measure=MeasureConfig(min_iters=min_iters, min_time_s=min_time),
        rounds=rounds,
    )
    report = _run_with_progress(console, options)

    from fer_edge.bench.plot import write_plot
    from fer_edge.bench.report import rich_table, write_json, write_markdown

    console.print(rich_table(report, wide=wide), crop=False)  # --wide: lines may pass the terminal's edge
    _write_outputs(console, report, [(json_out, write_json), (markdown_out, write_markdown), (plot_out, write_plot)])
    if not any(r.ok for r in report.results):
        first = report.results[0].reason if report.results else "no rows"
        raise FerEdgeError(f"no backend could run ({first})")


def _run_with_progress(console: Console, options: BenchOptions) -> BenchReport:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from fer_edge.bench.rows import RowResult, RowSpec
    from fer_edge.bench.runner import run_bench

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("preparing inputs", total=None)
        rows_per_round = [0]

        def on_plan(specs: list[RowSpec]) -> None:
            rows_per_round[0] = max(1, len(specs) // options.rounds)
            progress.update(task, total=len(specs), description=f"{len(specs)} rows")

        def round_tag(i: int) -> str:
            if options.rounds == 1:
                return ""
            return f"[round {i // rows_per_round[0] + 1}/{options.rounds}] "

        def on_start(i: int, spec: RowSpec) -> None:
            progress.update(task, description=f"{Path(spec.model).name} on {spec.device}")

        def on_done(i: int, row: RowResult) -> None:
            what = f"{round_tag(i)}{row.backend} {row.precision} {Path(row.model).name}"
            if row.ok:
                p50 = f": p50 {row.latency_ms_p50:.3f} ms" if row.latency_ms_p50 else ""
                progress.console.print(f"✅ {what}{p50}", markup=False)
            else:
                progress.console.print(f"❌ {what}: {row.reason}", markup=False)
            progress.advance(task)

        report = run_bench(options, on_plan=on_plan, on_start=on_start, on_done=on_done)
        progress.update(task, description="done")
    return report


def _print_estimate(
    console: Console,
    key: str,
    models: list[Path],
    batch: int,
    threads: int = 2,
    json_out: Path | None = None,
    markdown_out: Path | None = None,
    wide: bool = False,
) -> None:
    from fer_edge.bench.estimate import estimate_layers
    from fer_edge.bench.roofline import estimate_table

    if key != "host":
        from fer_edge.bench.jetson_specs import jetson_spec

        spec = jetson_spec(key)
        layers, source = estimate_layers(models)
        console.print(f"layers of {source}")
        console.print(estimate_table(layers, spec, batch, wide), crop=False)
        return

    from fer_edge.bench import host_peak
    from fer_edge.bench.estimate import host_report, summary_lines, write_host_json, write_host_markdown

    layers, source = estimate_layers(models)
    with console.status("reading this machine's instruction set and clock") as status:
        peaks = host_peak.measure_host_peaks(threads, on_stage=lambda text: status.update(f"measuring {text}"))
    console.print(f"layers of {source}")
    console.print(estimate_table(layers, peaks, batch, wide), crop=False)
    report = host_report(layers, source, peaks, batch)
    for line in summary_lines(report):
        console.print(line, markup=False)
    _write_outputs(console, report, [(json_out, write_host_json), (markdown_out, write_host_markdown)])


def _write_outputs(
    console: Console, report: Any, outputs: list[tuple[Path | None, Callable[[Any, Path], None]]]
) -> None:
    """Each requested output file (atomically, by its writer), then a line saying where it went.

    A file that cannot be written (full disk) does not stop the others; the error then says the
    figures are in the table printed above.
    """
    failed: list[str] = []
    for path, write in outputs:
        if path is not None:
            try:
                write(report, path)
            except FerEdgeError as exc:
                failed.append(str(exc))
                continue
            console.print(f"wrote {path}")
    if failed:
        raise FerEdgeError(f"{'; '.join(failed)} (the measured figures are in the table above)")

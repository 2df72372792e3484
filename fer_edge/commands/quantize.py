"""``fer-edge quantize``: FP32 ONNX → INT8 Q/DQ ONNX, calibrated on Training, guarded on PublicTest."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from fer_edge.build.quantize import DEFAULT_MAX_DROP, Method, Target
from fer_edge.commands import options
from fer_edge.commands.options import number


def quantize(
    model: Annotated[Path, typer.Argument(help="The FP32 ONNX model from `fer-edge export`.")],
    data: Annotated[Path, typer.Option(help="fer2013.csv(.gz): Training calibrates, PublicTest guards.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the INT8 ONNX model.")],
    votes: options.Votes = None,
    target: Annotated[
        Target, typer.Option(help="tensorrt: TensorRT's Q/DQ rules; cpu: fastest on ONNX Runtime CPUs.")
    ] = Target.tensorrt,
    method: Annotated[Method, typer.Option(help="How activation ranges are calibrated.")] = Method.entropy,
    calib_size: Annotated[
        int, number(help="Training images to calibrate on (no --manifest).", min=1, max=1_000_000)
    ] = 1000,
    seed: Annotated[
        int, number(help="Seed of the stratified draw (without --manifest).", min=0, max=options.MAX_SEED)
    ] = 0,
    manifest: Annotated[
        Optional[Path], typer.Option(help="Calibrate on the images a manifest lists (calibration/fer2013.json).")
    ] = None,
    save_manifest: Annotated[Optional[Path], typer.Option(help="Write the calibration manifest used.")] = None,
    max_drop: Annotated[
        float,
        number(help="Most PublicTest accuracy points INT8 may lose; beyond it layers stay FP32.", min=0, max=100),
    ] = DEFAULT_MAX_DROP,
    latency: Annotated[bool, typer.Option(help="Measure the CPU latency ratio (batch 1, 2 threads).")] = True,
    report_json: Annotated[Optional[Path], typer.Option(help="Also write the report as JSON here.")] = None,
) -> None:
    """Quantise MODEL to INT8 with explicit Q/DQ nodes and report what it costs."""
    import json

    from rich.console import Console

    from fer_edge.build.calibration_manifest import (
        content_sha256,
        draw_manifest,
        load_manifest,
        select_manifest_images,
    )
    from fer_edge.build.calibration_manifest import save_manifest as write_manifest
    from fer_edge.build.quantize import QuantJob, check_fp32_input, run_quantization
    from fer_edge.build.quantize.workspace import check_temp_space
    from fer_edge.core.atomic import write_text_atomic
    from fer_edge.core.errors import FerEdgeError
    from fer_edge.core.paths import guard_outputs
    from fer_edge.data import load_dataset
    from fer_edge.model.onnx_contract import labels_from_metadata, read_model_metadata

    guard_outputs(
        {"MODEL": model, "--data": data, "--votes": votes, "--manifest": manifest},
        {"--out": out, "--save-manifest": save_manifest, "--report-json": report_json},
    )
    console = Console(stderr=True)
    check_fp32_input(model)
    check_temp_space(model)
    meta = read_model_metadata(model)
    dataset = meta["dataset"]
    faces = load_dataset(data, dataset=dataset, votes=votes)
    n_labels = len(labels_from_metadata(meta, path=model))
    if len(faces.class_names) != n_labels:
        raise FerEdgeError(f"model has {n_labels} classes but {dataset} has {len(faces.class_names)}", path=model)
    source_hash = content_sha256(data)
    if manifest is not None:
        chosen = load_manifest(manifest)
        calib = select_manifest_images(chosen, faces, data, votes, manifest_path=manifest,
                                       source_sha256=source_hash)
        set_name = str(manifest)
    else:
        chosen = draw_manifest(faces, data, size=calib_size, seed=seed, votes=votes,
                               source_sha256=source_hash)
        calib = select_manifest_images(chosen, faces, data, votes, source_sha256=source_hash)
        set_name = f"Training, stratified, seed {seed}"
    if save_manifest is not None:
        write_manifest(chosen, save_manifest)
    if not faces.has_split("PublicTest"):
        raise FerEdgeError("has no PublicTest images for the accuracy guard", path=data)
    public = faces.split("PublicTest")
    job = QuantJob(
        model=model,
        out=out,
        calib_images=calib.images,
        eval_images=public.images,
        eval_labels=public.labels,
        target=target,
        method=method,
        max_drop=max_drop,
        calibration_info={
            "set": set_name,
            "split": "Training",
            "manifest_sha256": chosen.digest,
            "source_sha256": chosen.source_sha256,
            "seed": chosen.seed,
        },
        measure_latency=latency,
    )
    with console.status("quantising") as status:

        def progress(message: str) -> None:
            status.update(message)
            console.log(message)

        report = run_quantization(job, progress=progress)
    print_report(report, out)
    if report_json is not None:
        write_text_atomic(report_json, json.dumps(report.to_dict(), indent=2) + "\n")


def print_report(report: object, out: Path) -> None:
    from rich.console import Console

    from fer_edge.build.quantize import QuantReport
    from fer_edge.core.tables import FitTable

    assert isinstance(report, QuantReport)
    table = FitTable(f"INT8 ({report.target} target, {report.method} calibration on "
                     f"{report.calibration_images} Training images)")
    table.add_column("", justify="left", wrap=True)  # the row labels may wrap; the figures never do
    table.add_column("FP32")
    table.add_column("INT8")
    table.add_column("INT8 / FP32")
    table.add_row(f"{report.eval_split} accuracy ({report.eval_images})", f"{report.fp32_accuracy:.2%}",
                  f"{report.int8_accuracy:.2%}", f"{-report.drop_points:+.2f} pts")
    table.add_row("top-1 agreement with FP32", "", f"{report.agreement:.2%}", "")
    table.add_row("file size", f"{report.fp32_bytes / 1e6:.2f} MB", f"{report.int8_bytes / 1e6:.2f} MB",
                  f"{report.size_ratio:.0%}")
    if report.fp32_latency_ms and report.int8_latency_ms:
        table.add_row("CPU latency (ORT, batch 1, 2 threads)", f"{report.fp32_latency_ms:.3f} ms",
                      f"{report.int8_latency_ms:.3f} ms", f"{report.speedup:.2f}x faster")
    console = Console()
    console.print(table)
    guarded = [s["layer"] for s in report.sensitivity if s["layer"] in report.fp32_layers]
    first = [name for name in report.fp32_layers if name not in guarded]
    if first:
        console.print(f"kept in FP32 (first layer, always): {', '.join(first)}")
    if guarded:
        console.print(f"kept in FP32 to stay within the accuracy bound: {', '.join(guarded)}")
    if not report.fp32_layers:
        console.print("every Conv/Gemm layer is INT8")
    if report.target == "tensorrt":
        console.print("TensorRT Q/DQ rules: all satisfied; placement: Q/DQ on Conv/Gemm inputs only "
                      "(NVIDIA's guidance, docs/quantization.md)")
    console.print(f"wrote {out}")

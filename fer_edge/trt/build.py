"""``fer-edge build-engine`` as a library call: check, plan, build, write engine + sidecar."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from pathlib import Path

from rich.console import Console

from fer_edge.atomic import write_bytes_atomic
from fer_edge.errors import FerEdgeError
from fer_edge.trt.options import BuildOptions
from fer_edge.trt.sidecar import Sidecar, sha256_file, write_sidecar
from fer_edge.trt.versions import PrecisionPlan, parse_trt_version, plan_precision

JETPACK6_TRT = (10, 3)  # what --print-trtexec assumes where TensorRT is not installed here


def inspect_onnx(path: Path) -> tuple[str, tuple[str, ...], str, dict[str, str]]:
    """``(graph precision, labels, dataset, metadata)`` of a fer-edge ONNX; refuses other files."""
    from fer_edge.backends.precision import graph_precision
    from fer_edge.onnx_model import labels_from_metadata, load_onnx

    if path.suffix.lower() != ".onnx":
        raise FerEdgeError("build-engine takes an .onnx model", path=path)
    model = load_onnx(path, load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    labels = labels_from_metadata(meta, path=path)
    return graph_precision(model), labels, meta.get("dataset") or "unknown", meta


def plan_for(options: BuildOptions, trt_version: tuple[int, int], graph: str) -> PrecisionPlan:
    from fer_edge.trt.fp16 import can_convert_fp16

    return plan_precision(trt_version, options.precision, graph, can_convert_fp16=can_convert_fp16(),
                          dla=options.dla_core is not None)


def trtexec_command(options: BuildOptions) -> str:
    """The trtexec line for this build, for the installed TensorRT (or JetPack 6's 10.3)."""
    from fer_edge.trt.tensorrt_api import tensorrt_version
    from fer_edge.trt.trtexec import render_trtexec

    graph, _, _, _ = inspect_onnx(options.onnx)
    installed = tensorrt_version()
    version = parse_trt_version(installed) if installed else JETPACK6_TRT
    plan_precision(version, options.precision, graph, can_convert_fp16=True, dla=options.dla_core is not None)
    return render_trtexec(options, version)


def build_engine(options: BuildOptions, console: Console | None = None) -> Sidecar:
    """Build ``options.onnx`` into ``options.out`` (+ sidecar); nothing is written on failure."""
    from fer_edge import __version__
    from fer_edge.trt import tensorrt_api

    console = console or Console(stderr=True)
    graph, labels, dataset, meta = inspect_onnx(options.onnx)
    # Refusals that hold on every TensorRT version come before "TensorRT is not installed".
    dla = options.dla_core is not None
    plan_precision(JETPACK6_TRT, options.precision, graph, can_convert_fp16=True, dla=dla)
    trt_version = tensorrt_api.require_tensorrt()
    plan = plan_for(options, parse_trt_version(trt_version), graph)

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fer-edge-build-") as tmp:
        source = options.onnx
        if plan.convert_to_fp16:
            from fer_edge.trt.fp16 import convert_to_fp16

            console.print(f"TensorRT {trt_version} is strongly typed: converting the ONNX to FP16 first")
            source = convert_to_fp16(options.onnx, Path(tmp) / "model.fp16.onnx")
        status = (f"Building {options.precision.upper()} engine with TensorRT {trt_version} "
                  f"(batch {options.batch})")
        with console.status(status, spinner="dots"):
            built = tensorrt_api.build_serialized(options, plan, source)
    seconds = time.perf_counter() - start
    if built.num_classes != len(labels):
        raise FerEdgeError(
            f"the network has {built.num_classes} outputs but metadata lists {len(labels)} labels",
            path=options.onnx,
        )
    gpu_name, capability = tensorrt_api.gpu_here()

    import hashlib

    sidecar = Sidecar(
        tensorrt_version=trt_version,
        gpu_name=gpu_name,
        compute_capability=capability,
        precision=options.precision,
        profile=options.batch.shapes(),
        source_onnx=options.onnx.name,
        source_onnx_sha256=sha256_file(options.onnx),
        labels=list(labels),
        dataset=dataset,
        engine_sha256=hashlib.sha256(built.engine).hexdigest(),
        engine_bytes=len(built.engine),
        build_command=options.command_line(),
        built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        build_seconds=round(seconds, 2),
        strongly_typed=plan.strongly_typed,
        dla_core=options.dla_core,
        input_name=built.input_name,
        output_name=built.output_name,
        metadata=meta,
        fer_edge_version=__version__,
    )
    if built.timing_cache is not None and options.timing_cache is not None:
        write_bytes_atomic(options.timing_cache, built.timing_cache)
    # Sidecar first, engine last: an interrupted write leaves at worst a sidecar whose hash
    # does not match the old engine, which loading reports, never an engine without a sidecar.
    write_sidecar(options.out, sidecar)
    write_bytes_atomic(options.out, built.engine)
    return sidecar


def summary(sidecar: Sidecar) -> str:
    return json.dumps({k: getattr(sidecar, k) for k in ("tensorrt_version", "gpu_name", "compute_capability",
                                                        "precision", "profile", "build_seconds")})

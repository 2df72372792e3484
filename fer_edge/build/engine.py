"""``fer-edge build-engine`` as a library call: check, plan, build, write engine + sidecar."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from fer_edge.build.engine_layers import dla_fallback_note
from fer_edge.build.engine_options import BuildOptions
from fer_edge.build.trt_versions import PrecisionPlan, parse_trt_release, parse_trt_version, plan_precision
from fer_edge.core.atomic import write_bytes_atomic
from fer_edge.core.errors import FerEdgeError
from fer_edge.core.files import file_sha256
from fer_edge.model.engine_sidecar import BUILT_BY_TRTEXEC, Sidecar, board_model_here, write_sidecar

JETPACK6_TRT = (10, 3)  # the refusals that hold on every version are checked against this one
TRT_VERSION_HINT = "pass --trt-version X.Y (8.5 on JetPack 5.1, 8.6 on 6.0, 10.3 on 6.1/6.2)"


CPU_LAYOUT_HINT = (
    "this is the CPU-layout INT8 model (uint8 activations, int32 biases: ONNX Runtime's integer "
    "kernels), which TensorRT cannot build; pass the TensorRT INT8 model instead (NAME.int8.onnx, "
    "made by: fer-edge quantize MODEL.onnx --target tensorrt)"
)


@dataclass(frozen=True)
class SourceOnnx:
    """What build-engine needs to know about the ONNX it builds."""

    model: Any  # the ModelProto, weights not loaded
    precision: str  # graph precision: fp32 | fp16 | int8
    labels: tuple[str, ...]
    dataset: str
    meta: dict[str, str]


def inspect_onnx(path: Path) -> SourceOnnx:
    """Read a fer-edge ONNX and refuse what TensorRT cannot build, whatever its version: the
    CPU-layout INT8 file and any Q/DQ graph that breaks TensorRT's rules (one line each)."""
    from fer_edge.build.qdq_rules import tensorrt_violations
    from fer_edge.model.formats import graph_precision
    from fer_edge.model.onnx_contract import check_classifier_input, labels_from_metadata, load_onnx

    if path.suffix.lower() != ".onnx":
        raise FerEdgeError("build-engine takes an .onnx model", path=path)
    model = load_onnx(path, load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    labels = labels_from_metadata(meta, path=path)
    check_classifier_input(model, path)
    precision = graph_precision(model)
    if precision == "int8":
        if meta.get("quant_target") == "cpu":
            raise FerEdgeError(CPU_LAYOUT_HINT, path=path)
        problems = tensorrt_violations(model, trt_version=None)
        if problems:
            raise FerEdgeError(
                f"breaks TensorRT's Q/DQ rules ({len(problems)}; first: {problems[0]}); list them with "
                "fer-edge check-onnx --rules tensorrt, re-quantise with fer-edge quantize --target tensorrt",
                path=path)
    return SourceOnnx(model, precision, labels, meta.get("dataset") or "unknown", meta)


def check_parser_opset(source: SourceOnnx, path: Path, version: tuple[int, int]) -> None:
    """Refuse an opset the ONNX parser of TensorRT ``version`` cannot parse (one line)."""
    from fer_edge.build.qdq_rules import max_parser_opset, opset_version

    opset, newest = opset_version(source.model), max_parser_opset(version)
    if opset > newest:
        raise FerEdgeError(
            f"ONNX opset {opset} is newer than TensorRT {version[0]}.{version[1]}'s parser takes ({newest}); "
            f"re-export with opset {newest} or lower (fer-edge export writes 17), or build with a newer TensorRT",
            path=path)


def placement_notes(source: SourceOnnx) -> list[str]:
    from fer_edge.build.qdq_rules import placement_warnings

    return placement_warnings(source.model) if source.precision == "int8" else []


def plan_for(options: BuildOptions, trt_version: tuple[int, ...], graph: str) -> PrecisionPlan:
    from fer_edge.build.fp16 import can_convert_fp16

    return plan_precision(trt_version, options.precision, graph, can_convert_fp16=can_convert_fp16(),
                          dla=options.dla_core is not None)


def sm_count_here() -> int | None:
    """Device 0's SM count for the sidecar; None where no CUDA binding can ask."""
    from fer_edge.runtime.cuda_context import import_cudart, import_pycuda_driver, load_cuda_api

    if import_cudart() is None and import_pycuda_driver() is None:
        return None
    try:
        api = load_cuda_api()
    except FerEdgeError:
        return None
    try:
        return api.multiprocessor_count()
    except FerEdgeError:
        return None
    finally:
        api.close()


def trtexec_version(given: str | None = None) -> str:
    """The TensorRT the trtexec line is for: ``given`` (--trt-version), else the importable
    bindings', else NvInferVersion.h's or dpkg's; refuses in one line when none says."""
    from fer_edge.build.trt_version_files import DPKG_PACKAGES, NVINFER_HEADERS, installed_trt_version
    from fer_edge.runtime.trt_api import tensorrt_version

    if given is not None:
        parse_trt_version(given)  # a one-line refusal for "ten" or ""
        return given.strip()
    installed = tensorrt_version()
    if installed:
        return installed
    found = installed_trt_version()
    if found is not None:
        return found[0]
    raise FerEdgeError(
        "cannot tell which TensorRT the trtexec command is for: the Python bindings do not import, and "
        f"neither {' nor '.join(str(h) for h in NVINFER_HEADERS[:2])} nor the dpkg packages "
        f"{'/'.join(DPKG_PACKAGES)} name a version; {TRT_VERSION_HINT}")


def trtexec_command(options: BuildOptions, trt_version: str | None = None) -> tuple[str, Sidecar]:
    """The trtexec line for this build, for ``trt_version`` or the TensorRT found here (see
    :func:`trtexec_version`), and the sidecar fields known before trtexec runs (no engine hash,
    no GPU: ``built_by="trtexec"``).

    On TensorRT 11 an FP16 build from an FP32 ONNX starts with the FP16 conversion (networks
    are strongly typed: trtexec alone would build FP32)."""
    from fer_edge import __version__
    from fer_edge.build.trtexec import fp16_conversion_command, fp16_onnx_path, render_trtexec

    source = inspect_onnx(options.onnx)
    version_text = trtexec_version(trt_version)
    version = parse_trt_release(version_text)
    check_parser_opset(source, options.onnx, version[:2])
    plan = plan_precision(version, options.precision, source.precision, can_convert_fp16=True,
                          dla=options.dla_core is not None)
    if plan.convert_to_fp16:
        converted = fp16_onnx_path(options)
        build = render_trtexec(options, version, onnx=converted)
        line = f"{fp16_conversion_command(options.onnx, converted)} && {build}"
    else:
        line = render_trtexec(options, version)
    sidecar = Sidecar(
        tensorrt_version=version_text,
        gpu_name="unknown",
        compute_capability="unknown",
        precision=options.precision,
        profile=options.batch.shapes(),
        source_onnx=options.onnx.name,
        source_onnx_sha256=file_sha256(options.onnx),
        labels=list(source.labels),
        dataset=source.dataset,
        engine_sha256="",
        engine_bytes=0,
        build_command=line,
        built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        build_seconds=0.0,
        strongly_typed=plan.strongly_typed,
        dla_core=options.dla_core,
        metadata=source.meta,
        fer_edge_version=__version__,
        built_by=BUILT_BY_TRTEXEC,
    )
    return line, sidecar


def build_engine(options: BuildOptions, console: Console | None = None) -> Sidecar:
    """Build ``options.onnx`` into ``options.out`` (+ sidecar); nothing is written on failure."""
    from fer_edge import __version__
    from fer_edge.build import tensorrt_builder as tensorrt_api

    console = console or Console(stderr=True)

    def warn(message: str) -> None:
        console.print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)

    source = inspect_onnx(options.onnx)
    graph, labels, dataset, meta = source.precision, source.labels, source.dataset, source.meta
    # Refusals that hold on every TensorRT version come before "TensorRT is not installed".
    dla = options.dla_core is not None
    plan_precision(JETPACK6_TRT, options.precision, graph, can_convert_fp16=True, dla=dla)
    trt_version = tensorrt_api.require_tensorrt()
    check_parser_opset(source, options.onnx, parse_trt_version(trt_version))
    plan = plan_for(options, parse_trt_release(trt_version), graph)
    for note in placement_notes(source):
        warn(f"{options.onnx}: {note}")

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fer-edge-build-") as tmp:
        onnx_file = options.onnx
        if plan.convert_to_fp16:
            from fer_edge.build.fp16 import convert_to_fp16

            console.print(f"TensorRT {trt_version} is strongly typed: converting the ONNX to FP16 first")
            onnx_file = convert_to_fp16(options.onnx, Path(tmp) / "model.fp16.onnx")
        status = (f"Building {options.precision.upper()} engine with TensorRT {trt_version} "
                  f"(batch {options.batch})")
        with console.status(status, spinner="dots"):
            built = tensorrt_api.build_serialized(options, plan, onnx_file, warn)
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
        source_onnx_sha256=file_sha256(options.onnx),
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
        layers=built.layers,
        sm_count=sm_count_here(),
        board_model=board_model_here(),
    )
    fallback = dla_fallback_note(built.layers)
    if fallback:
        warn(f"{options.out}: {fallback}")
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

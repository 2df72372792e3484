"""Build the YuNet detector into a TensorRT engine for a camera's resolution (the profile's
decisions are in :mod:`fer_edge.runtime.detector_profile`, which the runtime reads too)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from fer_edge.core.errors import FerEdgeError
from fer_edge.runtime.detector_profile import DETECTOR_KIND, DetectorProfile, parse_detector_size


def build_detector_engine(
    onnx: Path, out: Path, profile: DetectorProfile, precision: str = "fp16", workspace_mb: int = 256
) -> Any:
    """Build YuNet into ``out`` with ``profile``; write the sidecar (kind: detector), then the engine."""
    from fer_edge import __version__
    from fer_edge.build import tensorrt_builder as tensorrt_api
    from fer_edge.build.trt_versions import parse_trt_version, plan_precision
    from fer_edge.core.atomic import write_bytes_atomic
    from fer_edge.core.files import file_sha256
    from fer_edge.model.engine_sidecar import Sidecar, write_sidecar
    from fer_edge.runtime.detector_yunet import OUTPUT_NAMES, check_yunet_file

    if precision not in ("fp16", "fp32"):
        raise FerEdgeError(f"--precision {precision}: the detector builds as fp16 or fp32 (it has no Q/DQ graph)")
    if out.suffix != ".engine" or out.resolve() == onnx.resolve():
        raise FerEdgeError("--out must be a new .engine file beside, not over, the ONNX", path=out)
    check_yunet_file(onnx)
    version = tensorrt_api.require_tensorrt()
    # YuNet is an FP32 graph; on TensorRT 11 (strongly typed) FP16 would need an FP16 ONNX.
    plan = plan_precision(parse_trt_version(version), precision, "fp32", can_convert_fp16=False)
    strongly_typed = plan.strongly_typed
    import tensorrt as trt

    start = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(tensorrt_api._network_flags(plan))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx)):
        detail = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)) or "no details"
        raise FerEdgeError(f"TensorRT's ONNX parser rejected YuNet: {detail}", path=onnx)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    shapes = profile.shapes()
    trt_profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    trt_profile.set_shape(name, *(trt.Dims(shapes[k]) for k in ("min", "opt", "max")))
    config.add_optimization_profile(trt_profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise FerEdgeError("TensorRT could not build the detector engine (its messages above say why)", path=onnx)
    engine = bytes(memoryview(serialized))
    gpu_name, capability = tensorrt_api.gpu_here()
    sidecar = Sidecar(
        tensorrt_version=version, gpu_name=gpu_name, compute_capability=capability, precision=precision,
        profile=shapes, source_onnx=onnx.name, source_onnx_sha256=file_sha256(onnx), labels=["face"],
        dataset=DETECTOR_KIND, engine_sha256=hashlib.sha256(engine).hexdigest(), engine_bytes=len(engine),
        build_command=f"fer-edge build-engine {onnx} --detector {profile} --precision {precision} --out {out}",
        built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - start, 2), strongly_typed=strongly_typed,
        input_name=name, output_name=OUTPUT_NAMES[0], metadata={"outputs": json.dumps(list(OUTPUT_NAMES))},
        fer_edge_version=__version__,
    )
    write_sidecar(out, sidecar)  # sidecar first: an interrupted build never leaves an engine without one
    write_bytes_atomic(out, engine)
    return sidecar


def build_detector_command(onnx: Path, out: Path, size: str, precision: str, workspace_mb: int) -> None:
    """``fer-edge build-engine YUNET.onnx --detector WxH``: check, build, say what was written."""
    from rich.console import Console

    profile = parse_detector_size(size)
    if precision == "int8":
        raise FerEdgeError("--detector: YuNet builds as --precision fp16 (the GPU's fast path) or fp32")
    console = Console(stderr=True)
    with console.status(f"Building the YuNet detector engine ({precision.upper()}, input {profile})"):
        sidecar = build_detector_engine(onnx, out, profile, precision, workspace_mb)
    console.print(f"wrote {out} and its sidecar: YuNet {precision.upper()}, input {profile}, TensorRT "
                  f"{sidecar.tensorrt_version} on {sidecar.gpu_name}; use it as run --detector-model {out}")

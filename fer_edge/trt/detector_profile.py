"""The YuNet detector as a TensorRT engine: its HxW optimisation profile, built from the camera's
resolution, and the check that a camera's frames fit it (pure, except :func:`build_detector_engine`).

YuNet's input is ``[1, 3, H, W]`` with H and W multiples of 32 (frames are padded up). A camera
gives one resolution, so the default profile is static at the padded camera size, which is the
fastest engine; ``min:opt:max`` sizes make a dynamic one (several cameras, or --detect-width).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_edge.errors import FerEdgeError

DETECTOR_KIND = "yunet-detector"  # the sidecar's dataset field marks a detector engine
SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
MAX_SIDE = 4096


def _padded(size: tuple[int, int]) -> tuple[int, int]:
    from fer_edge.camera.yunet import padded_size

    return padded_size(*size)


@dataclass(frozen=True)
class DetectorProfile:
    """Padded (W, H) input sizes the engine accepts: every W and H between min and max."""

    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]

    def shapes(self) -> dict[str, list[int]]:
        """The sidecar's form: ``{"min": [1, 3, H, W], ...}``."""
        return {k: [1, 3, s[1], s[0]] for k, s in (("min", self.min), ("opt", self.opt), ("max", self.max))}

    def accepts(self, width: int, height: int) -> bool:
        return self.min[0] <= width <= self.max[0] and self.min[1] <= height <= self.max[1]

    def __str__(self) -> str:
        return ":".join(f"{w}x{h}" for w, h in (self.min, self.opt, self.max))


def parse_detector_size(text: str) -> DetectorProfile:
    """``"640x480"`` (static, padded to 640x480) or ``"320x240:640x480:1280x720"`` (min:opt:max)."""
    parts = text.split(":")
    if len(parts) == 1:
        parts = parts * 3
    sizes = []
    for part in parts if len(parts) == 3 else []:
        match = SIZE_RE.match(part)
        if not match:
            break
        w, h = int(match.group(1)), int(match.group(2))
        if not (16 <= w <= MAX_SIDE and 16 <= h <= MAX_SIDE):
            raise FerEdgeError(f"--detector {text!r}: sides must be 16..{MAX_SIDE} pixels")
        sizes.append(_padded((w, h)))
    if len(sizes) != 3:
        raise FerEdgeError(
            f"--detector {text!r}: give the camera's resolution WIDTHxHEIGHT (e.g. 640x480 or 1280x720), "
            "or min:opt:max sizes (e.g. 320x240:640x480:1280x720)"
        )
    low, opt, high = sizes
    if not (low[0] <= opt[0] <= high[0] and low[1] <= opt[1] <= high[1]):
        raise FerEdgeError(f"--detector {text!r}: needs min <= opt <= max in both width and height")
    return DetectorProfile(low, opt, high)


def profile_from_sidecar(shapes: dict[str, list[int]], path: Path | str) -> DetectorProfile:
    try:
        pick = {k: (int(shapes[k][3]), int(shapes[k][2])) for k in ("min", "opt", "max")}
    except (KeyError, IndexError, TypeError, ValueError):
        raise FerEdgeError(f"sidecar profile {shapes!r} is not a detector's [1, 3, H, W]", path=path) from None
    return DetectorProfile(pick["min"], pick["opt"], pick["max"])


def check_frame_size(profile: DetectorProfile, width: int, height: int, path: Path | str) -> None:
    """A camera whose (padded) frames fall outside the profile: one line with the rebuild command."""
    if profile.accepts(width, height):
        return
    raise FerEdgeError(
        f"the camera's frames pad to {width}x{height} but this detector engine takes {profile} "
        f"(min:opt:max); rebuild it for the camera: fer-edge build-engine YUNET.onnx --detector "
        f"{width}x{height} --out {Path(path).name}, or shrink frames with --detect-width",
        path=path,
    )


def build_detector_engine(
    onnx: Path, out: Path, profile: DetectorProfile, precision: str = "fp16", workspace_mb: int = 256
) -> Any:
    """Build YuNet into ``out`` with ``profile``; write the sidecar (kind: detector), then the engine."""
    from fer_edge import __version__
    from fer_edge.atomic import write_bytes_atomic
    from fer_edge.camera.yunet import OUTPUT_NAMES, check_yunet_file
    from fer_edge.trt import tensorrt_api
    from fer_edge.trt.sidecar import Sidecar, sha256_file, write_sidecar
    from fer_edge.trt.versions import parse_trt_version, plan_precision

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
        profile=shapes, source_onnx=onnx.name, source_onnx_sha256=sha256_file(onnx), labels=["face"],
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

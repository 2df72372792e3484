"""The ``trtexec`` command equivalent to a ``fer-edge build-engine`` call (pure).

JetPack ships ``/usr/src/tensorrt/bin/trtexec``, so a user without the Python bindings can
still build the engine; fer-edge then only needs the sidecar, which ``trtexec`` does not write.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from fer_edge.build.engine_options import BuildOptions
from fer_edge.build.trt_versions import is_strongly_typed_only

INPUT_NAME = "input"


def _shape(batch: int) -> str:
    return f"{INPUT_NAME}:{batch}x1x48x48"


def render_trtexec(options: BuildOptions, trt_version: tuple[int, ...] = (10, 3),
                   trtexec: str = "trtexec", onnx: Path | None = None) -> str:
    """One shell line. ``trt_version`` picks the precision flags (docs/architecture.md's table):
    ``--int8 --fp16``/``--fp16`` up to 10.x, ``--stronglyTyped`` from 11 (the ONNX then carries
    the precision: a Q/DQ graph for INT8, an FP16 graph for FP16, so ``onnx`` must then be the
    converted FP16 file for an FP16 build; see :func:`fp16_conversion_command`).
    """
    args = [
        trtexec,
        f"--onnx={onnx or options.onnx}",
        f"--saveEngine={options.out}",
        f"--minShapes={_shape(options.batch.min)}",
        f"--optShapes={_shape(options.batch.opt)}",
        f"--maxShapes={_shape(options.batch.max)}",
    ]
    if is_strongly_typed_only(trt_version):
        args.append("--stronglyTyped")
    elif options.precision == "int8":
        args += ["--int8", "--fp16"]  # float layers of the Q/DQ graph in FP16, as build-engine does
    elif options.precision == "fp16":
        args.append("--fp16")
    # 8.x reads the pool size in MiB; 10+ also takes a unit suffix.
    unit = "M" if trt_version[0] >= 10 else ""
    args.append(f"--memPoolSize=workspace:{options.workspace_mb}{unit}")
    if options.timing_cache is not None:
        args.append(f"--timingCacheFile={options.timing_cache}")
    if options.dla_core is not None:
        args += [f"--useDLACore={options.dla_core}", "--allowGPUFallback"]
    if options.opt_level is not None and trt_version >= (8, 6):
        args.append(f"--builderOptimizationLevel={options.opt_level}")
    return shlex.join(args)


def fp16_onnx_path(options: BuildOptions) -> Path:
    """Where the FP16 copy of the ONNX goes for a strongly typed FP16 build: beside the engine."""
    candidate = options.out.with_suffix(".onnx")
    if candidate.resolve() == options.onnx.resolve():
        candidate = options.out.with_name(options.out.stem + ".converted.onnx")
    return candidate


def fp16_conversion_command(src: Path, dst: Path, python: str = "python3") -> str:
    """The shell line that writes the FP16 copy ``dst`` of ``src`` with fer-edge's converter
    (onnxconverter-common, input and output kept float32), as build-engine does on TensorRT 11."""
    code = ("from pathlib import Path; from fer_edge.build.fp16 import convert_to_fp16; "
            f"convert_to_fp16(Path({str(src)!r}), Path({str(dst)!r}))")
    return shlex.join([python, "-c", code])

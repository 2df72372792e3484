"""The ``trtexec`` command equivalent to a ``fer-edge build-engine`` call (pure).

JetPack ships ``/usr/src/tensorrt/bin/trtexec``, so a user without the Python bindings can
still build the engine; fer-edge then only needs the sidecar, which ``trtexec`` does not write.
"""

from __future__ import annotations

import shlex

from fer_edge.trt.options import BuildOptions
from fer_edge.trt.versions import is_strongly_typed_only

INPUT_NAME = "input"


def _shape(batch: int) -> str:
    return f"{INPUT_NAME}:{batch}x1x48x48"


def render_trtexec(options: BuildOptions, trt_version: tuple[int, int] = (10, 3),
                   trtexec: str = "trtexec") -> str:
    """One shell line. ``trt_version`` picks the precision flags (DESIGN.md's table):
    ``--int8``/``--fp16`` up to 10.x, ``--stronglyTyped`` from 11 (the ONNX then carries the
    precision: a Q/DQ graph for INT8, an FP16 graph for FP16).
    """
    args = [
        trtexec,
        f"--onnx={options.onnx}",
        f"--saveEngine={options.out}",
        f"--minShapes={_shape(options.batch.min)}",
        f"--optShapes={_shape(options.batch.opt)}",
        f"--maxShapes={_shape(options.batch.max)}",
    ]
    if is_strongly_typed_only(trt_version):
        args.append("--stronglyTyped")
    elif options.precision == "int8":
        args.append("--int8")
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

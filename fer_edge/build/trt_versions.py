"""Which builder flags and network flags each TensorRT version needs (pure; docs/architecture.md table).

| TensorRT | INT8                                  | FP16               | network             |
|----------|---------------------------------------|--------------------|---------------------|
| 8.5/8.6  | Q/DQ graph + BuilderFlag.INT8 + FP16  | BuilderFlag.FP16   | EXPLICIT_BATCH flag |
| 10.x     | Q/DQ graph + BuilderFlag.INT8 + FP16  | BuilderFlag.FP16   | (always explicit)   |
| 11.x     | Q/DQ graph only                       | an FP16 ONNX       | STRONGLY_TYPED      |

INT8 builds on weakly typed versions also set FP16: the layers a Q/DQ graph leaves in float (the
input normalisation and the first convolution, which fer-edge keeps unquantised) would otherwise
run in FP32, as they do with trtexec's ``--int8`` alone (hence ``--int8 --fp16``).

The DLA runs only implicitly quantised INT8 (a calibration cache), not explicit Q/DQ graphs, so
a Q/DQ graph with ``--dla`` would run on the GPU under GPU fallback while the sidecar said DLA:
it is refused. DLA builds set GPU fallback and, on weakly typed versions, FP16 (the DLA has no
FP32).

DLA across versions. 8.5 to 10.7 have it (JetPack 5 and 6 ship 8.5, 8.6, 10.3). 11.0 to 11.3
have none, 11.4.0 only on Windows on ARM. What NVIDIA's TensorRT 11.4.1 documentation says
("Working with DLA", "Strongly Typed Networks for DLA", the 11.4.1 release notes): DLA is back on
Jetson AGX Orin with JetPack 7.2.2 or later, generally available, GPU fallback as in 10.x; those
builds are strongly typed, BuilderFlag.FP16/INT8 no longer exist, and the network's tensor types
decide the precision, so FP16 on the DLA needs an FP16 ONNX (NVIDIA suggests ModelOpt AutoCast
``--target_dla``). So on 11.4.1+ fer-edge builds ``--dla`` from an FP16 ONNX (converting the FP32
one as for any strongly typed FP16 build) with GPU fallback and no precision flag. Not said there,
and not tried here on a board: that onnxconverter-common's conversion (FP32 input/output kept,
casts at the edges) places as many layers on the DLA as AutoCast would (the sidecar records
which layers TensorRT gives the DLA), and how a strongly typed Q/DQ graph maps onto the DLA; a
Q/DQ graph with ``--dla`` stays refused there too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fer_edge.core.errors import FerEdgeError

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
OLDEST_SUPPORTED = (8, 5)  # set_tensor_address + execute_async_v3 arrived in 8.5
DLA_STRONGLY_TYPED_SINCE = (11, 4, 1)  # see the module docstring
QUANTIZE_HINT = "make one with: fer-edge quantize MODEL.onnx --out MODEL.int8.onnx"
FP16_HINT = (
    "install onnxconverter-common (pip install onnxconverter-common) so fer-edge can convert it, "
    "or pass an FP16 ONNX"
)


def parse_trt_version(version: str) -> tuple[int, int]:
    """``"10.3.0.30"`` → ``(10, 3)``."""
    match = re.match(r"^\s*(\d+)\.(\d+)", version)
    if not match:
        raise FerEdgeError(f"cannot read the TensorRT version {version!r}")
    return int(match.group(1)), int(match.group(2))


def parse_trt_release(version: str) -> tuple[int, int, int]:
    """``"11.4.1.7"`` → ``(11, 4, 1)``; a missing patch reads as 0 (``"11.4"`` → ``(11, 4, 0)``)."""
    major, minor = parse_trt_version(version)
    match = re.match(r"^\s*\d+\.\d+\.(\d+)", version)
    return major, minor, int(match.group(1)) if match else 0


def is_strongly_typed_only(version: tuple[int, ...]) -> bool:
    """TensorRT 11 dropped weakly typed networks (and BuilderFlag.INT8/FP16 with them)."""
    return version[0] >= 11


def has_dla(version: tuple[int, ...]) -> bool:
    """Whether TensorRT ``version`` (major, minor[, patch]) can build for a DLA at all."""
    return not is_strongly_typed_only(version) or tuple(version) >= DLA_STRONGLY_TYPED_SINCE


@dataclass(frozen=True)
class PrecisionPlan:
    """How to build ``precision`` from a graph on one TensorRT version."""

    precision: str
    builder_flags: tuple[str, ...]  # names of tensorrt.BuilderFlag members to set
    network_flags: tuple[str, ...]  # names of tensorrt.NetworkDefinitionCreationFlag members
    strongly_typed: bool
    convert_to_fp16: bool  # the ONNX must first be converted to FP16 (TensorRT 11)
    supports_opt_level: bool  # builder_optimization_level exists (8.6+)


def plan_precision(
    version: tuple[int, ...],
    precision: str,
    graph_precision: str,
    can_convert_fp16: bool = False,
    dla: bool = False,
) -> PrecisionPlan:
    """Decide the flags for building ``precision`` from an ONNX whose graph is ``graph_precision``.

    Refuses, with a message saying what to do: INT8 from a graph without Q/DQ; a Q/DQ graph built
    as anything but INT8; FP16 on TensorRT 11 from an FP32 graph when it cannot be converted;
    FP32 on a DLA (DLA runs FP16/INT8 only); TensorRT older than 8.5.
    """
    if precision not in PRECISIONS:
        raise FerEdgeError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if version < OLDEST_SUPPORTED:
        raise FerEdgeError(
            f"TensorRT {version[0]}.{version[1]} is too old: "
            "fer-edge needs TensorRT 8.5 or newer (JetPack 5.1+)"
        )
    if precision == "int8" and graph_precision != "int8":
        raise FerEdgeError(
            f"--precision int8 needs a quantised ONNX (QuantizeLinear/DequantizeLinear nodes), "
            f"and this one is {graph_precision.upper()}; {QUANTIZE_HINT}"
        )
    if graph_precision == "int8" and precision != "int8":
        raise FerEdgeError(
            f"this ONNX is quantised (Q/DQ); build it with --precision int8, "
            f"or pass the FP32 ONNX for --precision {precision}"
        )
    if graph_precision == "fp16" and precision == "fp32":
        raise FerEdgeError("this ONNX is FP16; build it with --precision fp16, or pass the FP32 ONNX")
    if dla and precision == "fp32":
        raise FerEdgeError("the DLA runs FP16 or INT8 only: use --precision fp16 or int8 with --dla")
    if dla and graph_precision == "int8":
        raise FerEdgeError(
            "--dla with a Q/DQ (explicitly quantised) graph: the DLA runs only implicitly quantised INT8, "
            "so TensorRT would run it on the GPU while the engine claimed DLA; build it without --dla, "
            "or build the FP32 ONNX with --precision fp16 --dla N"
        )

    strongly_typed = is_strongly_typed_only(version)
    if dla and not has_dla(version):
        raise FerEdgeError(
            f"--dla: TensorRT {'.'.join(map(str, version))} has no DLA support (10.7 was the last release "
            "with it until 11.4.1, which has it on Jetson AGX Orin with JetPack 7.2.2 or later; JetPack 6 "
            "ships 10.3); build without --dla"
        )
    convert = False
    flags: tuple[str, ...] = ()
    if strongly_typed:
        if precision == "fp16" and graph_precision == "fp32":
            if not can_convert_fp16:
                raise FerEdgeError(
                    f"TensorRT {version[0]}.{version[1]} builds strongly typed networks only, so FP16 needs "
                    f"an FP16 ONNX and this one is FP32; {FP16_HINT}"
                )
            convert = True
        network_flags: tuple[str, ...] = ("STRONGLY_TYPED",)
    else:
        flags = {"fp32": (), "fp16": ("FP16",), "int8": ("INT8", "FP16")}[precision]
        network_flags = ("EXPLICIT_BATCH",) if version[0] < 10 else ()
    if dla:
        # Strongly typed (11.4.1+): the FP16 graph is the precision, and the flag no longer exists.
        if "FP16" not in flags and not strongly_typed:
            flags = (*flags, "FP16")
        flags = (*flags, "GPU_FALLBACK")
    return PrecisionPlan(
        precision=precision,
        builder_flags=flags,
        network_flags=network_flags,
        strongly_typed=strongly_typed,
        convert_to_fp16=convert,
        supports_opt_level=version >= (8, 6),
    )

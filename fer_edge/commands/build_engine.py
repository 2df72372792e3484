"""``fer-edge build-engine``: ONNX → TensorRT engine + ``.engine.json`` sidecar, on the device."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Dict, Optional, Union

import typer
from typing_extensions import Annotated

from fer_edge.commands.options import number


class Precision(str, Enum):
    int8 = "int8"
    fp16 = "fp16"
    fp32 = "fp32"


def build_engine(
    model: Annotated[Path, typer.Argument(help="The ONNX model: INT8 Q/DQ (fer-edge quantize) or FP32.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the engine (.engine).")],
    precision: Annotated[
        Precision, typer.Option(help="int8 needs a Q/DQ ONNX; fp16 and fp32 take the FP32 ONNX.")
    ] = Precision.int8,
    batch: Annotated[
        str, typer.Option(help="Optimisation profile min:opt:max batch sizes (one number: static).")
    ] = "1:8:32",
    workspace: Annotated[int, number(help="Builder workspace memory limit, MiB.", min=1, max=1 << 20)] = 256,
    timing_cache: Annotated[
        Optional[Path], typer.Option(help="Timing cache to reuse and update; makes rebuilds much faster.")
    ] = None,
    dla: Annotated[
        Optional[int], number(help="DLA core to run on (Orin AGX/NX), GPU fallback on; static --batch.", min=0, max=15)
    ] = None,
    opt_level: Annotated[
        Optional[int], number(help="Builder optimisation level 0-5 (TensorRT's default: 3).", min=0, max=5)
    ] = None,
    detector: Annotated[
        Optional[str],
        typer.Option(
            help="Build the YuNet face detector instead, for the camera's resolution WxH (e.g. 640x480; "
            "min:opt:max for a range); --precision fp16 or fp32.",
            show_default=False,
        ),
    ] = None,
    trt_version: Annotated[
        Optional[str],
        typer.Option(help="With --print-trtexec: the TensorRT the command is for (e.g. 10.3); default: the "
                     "installed one (Python bindings, NvInferVersion.h or dpkg).", show_default=False),
    ] = None,
    print_trtexec: Annotated[
        bool, typer.Option(help="Print the equivalent trtexec command instead (works without TensorRT) and "
                           "write the sidecar fields known ahead beside --out, so fer-edge loads trtexec's engine.")
    ] = False,
) -> None:
    """Build a TensorRT engine for THIS device (engines are tied to a TensorRT version and GPU)."""
    from rich.console import Console

    from fer_edge.core.paths import guard_outputs, refuse_output_overlap
    from fer_edge.model.engine_sidecar import sidecar_path

    # --timing-cache is read and rewritten: an output that must not be the model or the engine.
    # With --print-trtexec, trtexec writes them later, so they may not name an input either.
    outputs: Dict[str, Union[str, Path, None]] = {"--out (sidecar)": sidecar_path(out)}
    later: Dict[str, Union[str, Path, None]] = {"--out": out, "--timing-cache": timing_cache}
    refuse_output_overlap({"MODEL": model}, {**outputs, **later})
    guard_outputs({"MODEL": model}, outputs if print_trtexec else {**outputs, **later})
    if trt_version is not None and not print_trtexec:
        from fer_edge.core.errors import FerEdgeError

        raise FerEdgeError("--trt-version goes with --print-trtexec; a build uses the installed TensorRT")
    if detector is not None:
        from fer_edge.build.detector_engine import build_detector_command

        build_detector_command(model, out, detector, precision.value, workspace)
        return

    from fer_edge.build.engine import build_engine as run_build
    from fer_edge.build.engine import trtexec_command
    from fer_edge.build.engine_options import BuildOptions
    from fer_edge.runtime.engine_profile import parse_batch

    options = BuildOptions(
        onnx=model, out=out, precision=precision.value, batch=parse_batch(batch), workspace_mb=workspace,
        timing_cache=timing_cache, dla_core=dla, opt_level=opt_level,
    )
    if print_trtexec:
        from fer_edge.model.engine_sidecar import write_sidecar

        line, ahead = trtexec_command(options, trt_version)
        written = write_sidecar(out, ahead)
        typer.echo(line)
        typer.echo(f"wrote {written} (fields known before the build; loading checks the TensorRT version, "
                   "not the engine's bytes or GPU)", err=True)
        return
    console = Console(stderr=True)
    sidecar = run_build(options, console)
    console.print(
        f"[green]wrote[/green] {out} ({sidecar.engine_bytes / 1e6:.1f} MB) and {sidecar_path(out).name}: "
        f"{sidecar.precision.upper()}, TensorRT {sidecar.tensorrt_version}, {sidecar.gpu_name} "
        f"(sm_{sidecar.compute_capability.replace('.', '')}), batch {options.batch}, "
        f"built in {sidecar.build_seconds:.1f} s"
    )

"""``fer-edge check-onnx``: the model-file contract and, for INT8 models, TensorRT's Q/DQ rules."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from typing_extensions import Annotated


class Rules(str, Enum):
    auto = "auto"
    tensorrt = "tensorrt"
    none = "none"


def parse_trt_target(text: str) -> tuple[int, int]:
    """``--trt-version 10.3`` → (10, 3); one-line errors for anything else."""
    from fer_edge.build.qdq_rules import PARSER_MAX_OPSET
    from fer_edge.build.trt_versions import parse_trt_version
    from fer_edge.core.errors import FerEdgeError

    try:
        version = parse_trt_version(text)
    except FerEdgeError:
        raise FerEdgeError(f"--trt-version {text!r}: expected MAJOR.MINOR, e.g. 8.5 or 10.3") from None
    oldest = PARSER_MAX_OPSET[0][:2]
    if version < oldest:
        raise FerEdgeError(f"--trt-version {text}: fer-edge supports TensorRT {oldest[0]}.{oldest[1]} and newer")
    return version


def check_onnx(
    model: Annotated[Path, typer.Argument(help="An ONNX model, FP32 or INT8.")],
    rules: Annotated[
        Rules,
        typer.Option(help="Q/DQ rules to check: auto = TensorRT's for INT8 models except those quantised "
                     "with --target cpu; tensorrt = always; none = contract only."),
    ] = Rules.auto,
    trt_version: Annotated[
        str,
        typer.Option(help="The TensorRT the model is meant for (MAJOR.MINOR): decides the newest ONNX opset "
                     "allowed. Default 8.5 (JetPack 5.1, the oldest supported): passes there, parses everywhere."),
    ] = "8.5",
) -> None:
    """Check MODEL; print one line per violation and exit 1 if there is any (warnings do not fail)."""
    import onnx

    from fer_edge.build.qdq_rules import placement_warnings, tensorrt_violations
    from fer_edge.core.errors import first_line
    from fer_edge.model.onnx_contract import contract_violations, get_metadata, is_quantized, load_onnx

    target = parse_trt_target(trt_version)
    proto = load_onnx(model)
    problems = [f"contract: {p}" for p in contract_violations(proto)]
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        problems.append(f"onnx.checker: {first_line(exc)}")
    quantized = is_quantized(proto)
    meta = get_metadata(proto)
    apply_trt = rules is Rules.tensorrt or (
        rules is Rules.auto and quantized and meta.get("quant_target") != "cpu"
    )
    if quantized and not meta.get("calibration"):
        problems.append("contract: INT8 model without 'calibration' in metadata_props")
    warnings: list[str] = []
    if apply_trt:
        problems += [f"tensorrt: {p}" for p in tensorrt_violations(proto, target)]
        warnings = [f"warning: tensorrt placement: {w}" for w in placement_warnings(proto)]
    for line in problems + warnings:
        typer.echo(f"{model}: {line}")
    kind = "INT8 (Q/DQ)" if quantized else "FP32"
    checked = (f"contract + TensorRT {target[0]}.{target[1]} Q/DQ rules" if apply_trt else "contract")
    if quantized and not apply_trt:
        checked += " (cpu-target INT8: TensorRT rules not applied; --rules tensorrt to apply them)"
    if warnings:
        checked += f", {len(warnings)} placement warning(s)"
    if problems:
        typer.echo(f"{model}: {len(problems)} violation(s) [{kind}; checked {checked}]", err=True)
        raise typer.Exit(1)
    typer.echo(f"{model}: OK [{kind}; checked {checked}]")

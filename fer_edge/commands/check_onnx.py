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


def check_onnx(
    model: Annotated[Path, typer.Argument(help="An ONNX model, FP32 or INT8.")],
    rules: Annotated[
        Rules,
        typer.Option(help="Q/DQ rules to check: auto = TensorRT's for INT8 models except those quantised "
                     "with --target cpu; tensorrt = always; none = contract only."),
    ] = Rules.auto,
) -> None:
    """Check MODEL; print one line per violation and exit 1 if there is any."""
    import onnx

    from fer_edge.onnx_model import contract_violations, get_metadata, is_quantized, load_onnx
    from fer_edge.onnx_rules import tensorrt_violations

    proto = load_onnx(model)
    problems = [f"contract: {p}" for p in contract_violations(proto)]
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        problems.append(f"onnx.checker: {first}")
    quantized = is_quantized(proto)
    meta = get_metadata(proto)
    apply_trt = rules is Rules.tensorrt or (
        rules is Rules.auto and quantized and meta.get("quant_target") != "cpu"
    )
    if quantized and not meta.get("calibration"):
        problems.append("contract: INT8 model without 'calibration' in metadata_props")
    if apply_trt:
        problems += [f"tensorrt: {p}" for p in tensorrt_violations(proto)]
    for line in problems:
        typer.echo(f"{model}: {line}")
    kind = "INT8 (Q/DQ)" if quantized else "FP32"
    checked = "contract + TensorRT Q/DQ rules" if apply_trt else "contract"
    if quantized and not apply_trt:
        checked += " (cpu-target INT8: TensorRT rules not applied; --rules tensorrt to apply them)"
    if problems:
        typer.echo(f"{model}: {len(problems)} violation(s) [{kind}; checked {checked}]", err=True)
        raise typer.Exit(1)
    typer.echo(f"{model}: OK [{kind}; checked {checked}]")

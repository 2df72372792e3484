"""``fer-edge export``: a checkpoint to an FP32 ONNX that follows the model-file contract."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from fer_edge.commands import options
from fer_edge.commands.options import number


def export(
    checkpoint: Annotated[Path, typer.Argument(help="A fer-edge checkpoint (.pt), e.g. runs/x/best.pt.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the ONNX model.")],
    data: Annotated[
        Optional[Path],
        typer.Option(help="fer2013.csv(.gz): check parity (and accuracy) on its PublicTest faces "
                     "instead of generated inputs."),
    ] = None,
    votes: options.Votes = None,
    parity_images: Annotated[
        int, number(help="At most this many images for the parity check.", min=1, max=1_000_000)
    ] = 2000,
    ema: Annotated[bool, typer.Option(help="Use the averaged (EMA) weights where saved.")] = True,
) -> None:
    """Export a checkpoint to ONNX (opset 17, dynamic batch) and prove it matches PyTorch."""
    from fer_edge.build.export import PARITY_MAX_ABS, PARITY_MIN_AGREEMENT, export_checkpoint
    from fer_edge.core.errors import FerEdgeError
    from fer_edge.core.paths import guard_outputs

    guard_outputs({"CHECKPOINT": checkpoint, "--data": data, "--votes": votes}, {"--out": out})
    face_data = None
    if data is not None:
        from fer_edge.data import load_dataset
        from fer_edge.model.checkpoint import load_checkpoint

        dataset = str(load_checkpoint(checkpoint)["dataset"])
        face_data = load_dataset(data, dataset=dataset, votes=votes)
    if parity_images < 1:
        raise FerEdgeError("--parity-images must be at least 1")
    report = export_checkpoint(checkpoint, out, face_data, max_parity_images=parity_images, use_ema=ema)
    typer.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    typer.echo(
        f"parity on {report.images} {report.source} images: max |dlogit| {report.max_abs_diff:.2e} "
        f"(limit {PARITY_MAX_ABS:.0e}), top-1 agreement {report.agreement:.2%} "
        f"(limit {PARITY_MIN_AGREEMENT:.1%})"
    )
    if report.torch_accuracy is not None and report.onnx_accuracy is not None:
        typer.echo(f"accuracy: PyTorch {report.torch_accuracy:.2%}, ONNX {report.onnx_accuracy:.2%}")

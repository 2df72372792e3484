"""``fer-edge evaluate``: accuracy, per-class precision/recall/F1 and a confusion matrix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

import typer
from typing_extensions import Annotated

from fer_edge.commands import options
from fer_edge.commands.options import number
from fer_edge.core.errors import FerEdgeError


def evaluate(
    model: Annotated[
        Optional[Path], typer.Argument(
            help="A .pt checkpoint, .onnx or .engine (default: shipped FER2013 INT8; CPU layout without a GPU)."
        )
    ] = None,
    data: options.OptionalData = None,
    votes: options.Votes = None,
    split: Annotated[str, typer.Option(help="Training, PublicTest or PrivateTest.")] = "PrivateTest",
    device: options.Device = "auto",
    threads: options.Threads = None,
    batch_size: Annotated[int, number(help="Batch size.", min=1, max=options.MAX_BATCH)] = 256,
    tta: Annotated[bool, typer.Option(help="Also report flip test-time augmentation (separately).")] = False,
    exclude_train_duplicates: Annotated[
        bool, typer.Option(help="Also report accuracy without the test images that have a pixel copy in Training.")
    ] = False,
    confusion: Annotated[Optional[Path], typer.Option(help="Write the confusion matrix PNG here.")] = None,
    record: Annotated[
        bool,
        typer.Option(
            help="Store the accuracy, with the split and image count it was measured on, in the model "
            "file (.pt metrics or ONNX metadata)."
        ),
    ] = False,
    record_subset: Annotated[
        bool,
        typer.Option(
            help="With --record: replace a recorded figure even when this split is not the full "
            "FER2013/FERPlus split (another image count)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
) -> None:
    """Evaluate a model on one split: top-1 accuracy, per-class figures, confusion matrix."""
    from rich.console import Console
    from rich.progress import Progress

    from fer_edge.bench.evaluate import (
        Measurement,
        check_recordable,
        check_subset_record,
        evaluate_model,
        record_accuracy,
    )
    from fer_edge.core.paths import guard_outputs
    from fer_edge.data import load_dataset
    from fer_edge.model.shipped import default_model
    from fer_edge.runtime.classifier import load_backend

    if data is None:
        raise FerEdgeError("--data is required: the fer2013.csv(.gz) file (or image folders) to evaluate on")
    model = model or default_model(device)
    guard_outputs({"MODEL": model, "--data": data, "--votes": votes}, {"--confusion": confusion})
    if record:
        check_recordable(model)
    console = Console(stderr=True)
    with load_backend(model, device=device, threads=threads) as backend:
        dataset = backend.dataset
        full = load_dataset(data, dataset=dataset, votes=votes)
        faces = full.split(split)
        if record:  # before any inference: a figure that may not be recorded is refused now
            check_subset_record(model, Measurement(split, 0.0, len(faces), Path(data).name, dataset), record_subset)
        exclude = None
        if exclude_train_duplicates:
            from fer_edge.data.duplicates import train_duplicate_mask

            exclude = train_duplicate_mask(full, split)
        with Progress(console=console, transient=True, disable=as_json) as progress:
            report = evaluate_model(backend, faces, batch_size=batch_size, tta=tta, progress=progress, exclude=exclude)
        report.update(
            model=str(model),
            backend=backend.name,
            precision=backend.precision,
            dataset=dataset,
            split=split,
            data=str(data),
        )
    # The figures are printed first: a record or plot that then fails (a full disk) loses nothing.
    if as_json:
        typer.echo(json.dumps(report))
    else:
        _print_tables(report, model, backend.name, backend.precision, dataset, split, tta)
    try:
        if record:
            measured = Measurement(split, report["accuracy"], int(report["n"]), Path(data).name, dataset)
            record_accuracy(model, measured, allow_subset=record_subset)
            console.print(f"recorded {split} accuracy {report['accuracy']:.2f}% in {model} "
                          f"(measured on {measured.describe()})", soft_wrap=True, markup=False)
        if confusion is not None:
            from fer_edge.core.figures import plot_confusion_matrix

            plot_confusion_matrix(
                report["confusion_matrix"],
                faces.class_names,
                confusion,
                title=f"{model.name} on {dataset} {split} ({report['accuracy']:.2f}%)",
            )
    except FerEdgeError as exc:
        raise FerEdgeError(f"{exc} (the figures are printed above)") from None


def _print_tables(report: Dict[str, Any], model: Path, backend: str, precision: str, dataset: str, split: str,
                  tta: bool) -> None:
    from rich.console import Console

    from fer_edge.core.tables import FitTable

    table = FitTable(f"{model.name} on {dataset} {split} ({report['n']} images, {backend} {precision})")
    table.add_column("class", justify="left")
    for col in ("precision %", "recall %", "F1 %", "support"):
        table.add_column(col)
    for name, row in report["per_class"].items():
        table.add_row(name, f"{row['precision']:.1f}", f"{row['recall']:.1f}", f"{row['f1']:.1f}", str(row["support"]))
    out = Console()
    out.print(table)
    out.print(f"accuracy {report['accuracy']:.2f}%  macro F1 {report['macro_f1']:.2f}%")
    if tta:
        out.print(
            f"accuracy with flip TTA {report['accuracy_flip_tta']:.2f}% (reported separately; headline is single pass)"
        )
    if "accuracy_without_train_duplicates" in report:
        tta_note = f", flip TTA {report['accuracy_flip_tta_without_train_duplicates']:.2f}%" if tta else ""
        out.print(
            f"without the {report['train_duplicates']} images copied in Training "
            f"({report['n_without_train_duplicates']} left): accuracy "
            f"{report['accuracy_without_train_duplicates']:.2f}%{tta_note}"
        )

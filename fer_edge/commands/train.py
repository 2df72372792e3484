"""``fer-edge train``: train the paper's CNN on FER2013 or FERPlus."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import typer
from typing_extensions import Annotated

from fer_edge.commands import options
from fer_edge.commands.options import number
from fer_edge.core.errors import FerEdgeError

# what a run writes into --out
RUN_FILES = ("best.pt", "last.pt", "history.json", "history.csv", "learning_curve.png", "metrics.json")


def train(
    data: options.Data,
    out: Annotated[Path, typer.Option(help="Run folder: best.pt, last.pt, history.csv/json, learning_curve.png.")],
    dataset: Annotated[
        str, typer.Option(help="fer2013 (7 classes) or ferplus (8 classes, needs --votes).")
    ] = "fer2013",
    votes: options.Votes = None,
    epochs: Annotated[int, number(help="Epochs.", min=1, max=10_000)] = 60,
    batch_size: Annotated[int, number(help="Batch size.", min=1, max=options.MAX_BATCH)] = 64,
    lr: Annotated[float, number(help="Peak learning rate (SGD, Nesterov).", above=0, max=10)] = 0.05,
    weight_decay: Annotated[float, number(help="Weight decay.", min=0, max=1)] = 5e-4,
    schedule: Annotated[str, typer.Option(help="onecycle or cosine.")] = "onecycle",
    label_smoothing: Annotated[float, number(help="Label smoothing (0 to 0.99).", min=0, max=0.99)] = 0.1,
    soft_labels: Annotated[bool, typer.Option(help="FERPlus: train on the vote distribution.")] = True,
    ema: Annotated[
        float, number(help="EMA decay of the weights (below 1); 0 disables averaging.", min=0, max=0.99999)
    ] = 0.999,
    dropout: Annotated[float, number(help="Dropout in the FC layers (0 to 0.95).", min=0, max=0.95)] = 0.4,
    depth: Annotated[int, number(help="Conv layers (2-7; the paper's model has 6).", min=2, max=7)] = 6,
    kernel_size: Annotated[int, number(help="Conv kernel size (2-5; the paper's model uses 2).", min=2, max=5)] = 2,
    erase: Annotated[float, number(help="Probability of random erasing.", min=0, max=1)] = 0.5,
    rotate: Annotated[float, number(help="Max rotation (degrees, 0-180).", min=0, max=180)] = 15.0,
    shift: Annotated[float, number(help="Max shift (fraction of the image, 0-0.5).", min=0, max=0.5)] = 0.12,
    seed: options.Seed = 0,
    limit: Annotated[
        Optional[int], number(help="Train on the first N training images (smoke runs).", min=1, max=10**9)
    ] = None,
    device: options.TorchDevice = "auto",
    amp: Annotated[
        Optional[bool], typer.Option("--amp/--no-amp", help="bf16 autocast (default: on CUDA and AVX-512 CPUs).")
    ] = None,
    threads: options.Threads = None,
    teacher: Annotated[
        Optional[Path],
        typer.Option(help="Distil from cached teacher outputs (teachers.npz from scripts/train_teachers.py)."),
    ] = None,
    kd_temperature: Annotated[
        float, number(help="Distillation temperature T (with --teacher).", above=0, max=100)
    ] = 4.0,
    kd_weight: Annotated[
        float,
        number(help="Weight A of the distillation term: (1-A) usual loss + A T^2 KL (with --teacher).", min=0, max=1),
    ] = 0.7,
    time_budget: Annotated[
        Optional[float],
        number(help="Seconds: stop before an epoch that would end past it (then --resume continues).",
               above=0, max=options.YEAR_S),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/last.pt.")] = False,
    cache: Annotated[bool, typer.Option(help="Use the parsed-data cache.")] = True,
) -> None:
    """Train the paper's CNN; keeps best.pt (selected on PublicTest) and last.pt every epoch.

    With --teacher it learns from an ensemble's cached outputs too (knowledge distillation).
    """
    from fer_edge.core.optional import import_torch
    from fer_edge.core.paths import guard_outputs
    from fer_edge.data import load_dataset

    guard_outputs(
        {"--data": data, "--votes": votes, "--teacher": teacher},
        {"--out": out, **{f"--out ({name})": out / name for name in RUN_FILES}},
        folders=("--out",),
    )
    torch = import_torch()
    if threads:
        torch.set_num_threads(threads)
    from fer_edge.train.loop import TrainConfig, Trainer

    if not resume and (out / "last.pt").exists():
        raise FerEdgeError(
            "already holds a run (last.pt); pass --resume to continue it or choose another --out", path=out
        )
    face_data = load_dataset(data, dataset=dataset, votes=votes, cache=cache)
    cfg = TrainConfig(
        data=str(data),
        dataset=dataset,
        out=str(out),
        votes=str(votes) if votes else None,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        schedule=schedule,
        label_smoothing=label_smoothing,
        soft_labels=soft_labels,
        ema_decay=ema,
        dropout=dropout,
        depth=depth,
        kernel_size=kernel_size,
        seed=seed,
        limit=limit,
        device=device,
        amp=amp,
        erase=erase,
        rotate=rotate,
        shift=shift,
        teacher=str(teacher) if teacher else None,
        kd_temperature=kd_temperature,
        kd_weight=kd_weight,
        time_budget=time_budget,
    )
    trainer = Trainer(cfg, face_data)
    if resume:
        trainer.resume()
        if trainer.start_epoch >= epochs:
            typer.echo(f"{out / 'last.pt'} already finished {trainer.start_epoch} epochs; nothing to do", err=True)
            metrics = trainer.finish()
            typer.echo(summary_line(metrics))
            return
    try:
        metrics = trainer.fit()
    except KeyboardInterrupt:
        typer.echo(f"interrupted: {out / 'last.pt'} holds the last finished epoch; continue with --resume", err=True)
        raise typer.Exit(130) from None
    typer.echo(summary_line(metrics))


def summary_line(metrics: Dict[str, Any]) -> str:
    """best.pt in one line: its epoch, the accuracy it was selected on, then each test split's.

    ``selected_on`` names the key that holds the selection accuracy ("PublicTest", or the held-out part
    of Training when the data has no PublicTest), so the name is printed once, beside its figure."""
    selected = metrics.get("selected_on")
    parts = [f"best.pt: epoch {metrics['best_epoch']}"]
    if selected in metrics:
        parts.append(f"{selected} {_percent(metrics[selected])} (selected on)")
    suffix = "_without_train_duplicates"
    for key, value in metrics.items():
        if key in ("selected_on", "best_epoch", selected) or key.endswith(suffix):
            continue
        clean = metrics.get(key + suffix)
        extra = f" ({_percent(clean)} without its copies in Training)" if clean is not None else ""
        parts.append(f"{key} {_percent(value)}{extra}")
    return ", ".join(parts)


def _percent(value: Any) -> str:
    return f"{value:.2f}%" if isinstance(value, (int, float)) else str(value)

"""Train an ensemble of teachers in one process and write their outputs for `fer-edge train --teacher`.

    python scripts/train_teachers.py --data fer2013.csv.gz --out runs/teachers_fer2013 \\
        --members d6k2f32x4,d6k3f32x2,d6k2f48x2 --epochs 300 --time-budget 480

Writes OUT/teachers.npz (every member's logits on each Training image, plain and flipped, and on
PublicTest/PrivateTest; float16, a few MB) and OUT/teachers.json (members, seeds, epochs, times,
per-epoch history, the ensemble's accuracies single pass and with flip TTA, with and without the
test images copied in Training). Runs on the CPU too: --device cpu --limit 256 --epochs 1.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from dataclasses import fields
from pathlib import Path

from fer_edge.core.atomic import write_text_atomic
from fer_edge.core.errors import FerEdgeError

HELP = {
    "data": "fer2013.csv(.gz) or an image-folder tree",
    "out": "folder for teachers.npz and teachers.json (must not hold a teachers.npz yet)",
    "dataset": "fer2013 or ferplus (needs --votes)",
    "votes": "FERPlus votes file fer2013new.csv",
    "members": "comma-separated dNkNfN[fcN]xN: depth, kernel, base filters, FC width, number of seeds",
    "epochs": "the most epochs; a time budget can end the schedule sooner",
    "batch_size": "images per step (every member sees its own view of each)",
    "lr": "peak learning rate (SGD, Nesterov), cosine to zero",
    "momentum": "SGD momentum",
    "weight_decay": "weight decay",
    "label_smoothing": "label smoothing of the targets",
    "ema_decay": "EMA decay of the weights (the outputs come from the averaged weights); 0 disables",
    "dropout": "dropout in the FC layers",
    "erase": "probability of random erasing",
    "rotate": "max rotation (degrees)",
    "shift": "max shift (fraction of the image)",
    "mixup_alpha": "Beta(a, a) of mixup/CutMix; 0 disables both",
    "cutmix": "share of mixed batches that use CutMix instead of mixup",
    "mix_prob": "share of batches that are mixed",
    "seed": "member j is seeded seed * 1000 + j",
    "device": "auto, cpu or cuda",
    "eval_every": "score the ensemble on PublicTest every N epochs",
    "time_budget": "seconds for the whole run; training stops early enough to write its outputs",
    "reserve": "seconds of the budget kept for the final outputs",
    "limit": "train on the first N Training images (outputs still cover every image)",
    "amp": "bf16 autocast: 1 or 0 (default: on CUDA)",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from fer_edge.train.teachers import TeacherConfig

    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    for f in fields(TeacherConfig):
        default = f.default
        kind = {"int": int, "float": float, "str": str}.get(type(default).__name__, str)
        if f.name in ("limit",):
            kind = int
        elif f.name in ("time_budget",):
            kind = float
        elif f.name == "amp":
            kind = int
        flag = "--" + f.name.replace("_", "-")
        required = f.name in ("data", "out")
        ap.add_argument(
            flag, type=kind, default=None if required else default, required=required, help=HELP.get(f.name)
        )
    return ap.parse_args(argv)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # A background job of a script starts with SIGINT ignored, and `timeout` sends SIGTERM: both
    # become KeyboardInterrupt, on which training stops and the outputs are still written.
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run(parse_args(argv))
    except FerEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run(args: argparse.Namespace) -> int:
    from fer_edge.model.checkpoint import import_torch

    torch = import_torch()
    if args.threads:
        torch.set_num_threads(args.threads)
    from fer_edge.data import load_dataset
    from fer_edge.train.teacher_file import save_teacher_outputs
    from fer_edge.train.teachers import TeacherConfig, TeacherTrainer

    out = Path(args.out)
    target = out / "teachers.npz"
    if target.exists():
        raise FerEdgeError("already holds teachers.npz; choose another --out", path=out)
    values = {f.name: getattr(args, f.name) for f in fields(TeacherConfig)}
    values["amp"] = None if args.amp is None else bool(args.amp)
    cfg = TeacherConfig(**values)
    trainer = TeacherTrainer(cfg, load_dataset(cfg.data, dataset=cfg.dataset, votes=cfg.votes))
    outputs, report = trainer.fit()
    save_teacher_outputs(target, outputs)
    write_text_atomic(out / "teachers.json", json.dumps({**outputs.meta, "history": report["history"]}, indent=1))
    for split, row in report["ensemble"].items():
        extra = ""
        if "single_without_train_duplicates" in row:
            extra = (
                f"; without the {row['n'] - row['n_without_train_duplicates']} copied in Training "
                f"{row['single_without_train_duplicates']:.2f}% "
                f"(flip TTA {row['flip_tta_without_train_duplicates']:.2f}%)"
            )
        print(f"ensemble {split}: {row['single']:.2f}% single pass, {row['flip_tta']:.2f}% flip TTA{extra}")
    print(
        f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB), {len(outputs.meta['members'])} members, "
        f"{outputs.meta['epochs_done']} epochs (stopped by {outputs.meta['stopped_by']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

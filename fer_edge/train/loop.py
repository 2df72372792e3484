"""The training loop: batched on-device augmentation, one-cycle/cosine SGD, EMA, resumable."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from fer_edge.core.atomic import write_text_atomic
from fer_edge.core.errors import FerEdgeError
from fer_edge.data.core import FaceData
from fer_edge.data.duplicates import train_duplicate_mask
from fer_edge.model.checkpoint import load_checkpoint, save_checkpoint
from fer_edge.model.net import FerCNN, ModelConfig, build_model, count_parameters
from fer_edge.model.scoring import accuracy
from fer_edge.train.augment import AugmentConfig, augment_with_flip
from fer_edge.train.common import EMA, autocast, bf16_is_fast, pick_device, restore_rng_state, rng_state


@dataclass
class TrainConfig:
    data: str
    dataset: str
    out: str
    votes: str | None = None
    epochs: int = 60
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # or "cosine"
    label_smoothing: float = 0.1
    soft_labels: bool = True  # FERPlus only: train on the vote distribution
    ema_decay: float = 0.999  # 0 disables weight averaging
    dropout: float = 0.4
    depth: int = 6
    kernel_size: int = 2
    seed: int = 0
    limit: int | None = None
    device: str = "auto"
    amp: bool | None = None  # None: bf16 where it is fast (CUDA, CPUs with AVX-512)
    workers_threads: int | None = None
    erase: float = 0.5
    rotate: float = 15.0
    shift: float = 0.12
    teacher: str | None = None  # cached teacher outputs (scripts/train_teachers.py): distil from them
    kd_temperature: float = 4.0
    kd_weight: float = 0.7
    teacher_sha256: str | None = None
    time_budget: float | None = None  # seconds: no epoch starts that would end past it


def split_train_val(data: FaceData, seed: int) -> tuple[FaceData, FaceData, str]:
    train = data.split("Training")
    if data.has_split("PublicTest"):
        return train, data.split("PublicTest"), "PublicTest"
    # The image-folder download has no PublicTest: hold out 10% of Training, stratified.
    rng = np.random.default_rng(seed)
    val_idx = np.concatenate(
        [
            rng.permutation(np.flatnonzero(train.labels == c))[: max(1, (train.labels == c).sum() // 10)]
            for c in range(train.num_classes)
            if (train.labels == c).any()
        ]
    )
    mask = np.zeros(len(train), dtype=bool)
    mask[val_idx] = True
    return train.subset(np.flatnonzero(~mask)), train.subset(np.flatnonzero(mask)), "held-out 10% of Training"


@torch.no_grad()
def predict_logits(
    model: FerCNN,
    images: np.ndarray | torch.Tensor,
    device: torch.device,
    amp: bool,
    batch_size: int = 512,
    flip: bool = False,
) -> torch.Tensor:
    model.eval()
    x_all = torch.as_tensor(images)
    out = []
    for i in range(0, len(x_all), batch_size):
        x = x_all[i : i + batch_size].to(device).unsqueeze(1).float()
        if flip:
            x = torch.flip(x, dims=[3])
        with autocast(device, amp):
            out.append(model(x).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, model.config.num_classes)


class Trainer:
    def __init__(self, cfg: TrainConfig, data: FaceData, console: Console | None = None) -> None:
        self.cfg = cfg
        self.console = console or Console(stderr=True)
        self.device = pick_device(cfg.device)
        self.amp = bf16_is_fast(self.device) if cfg.amp is None else cfg.amp
        cfg.amp = self.amp
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed 48x48 shapes: let cuDNN pick its fastest kernels
        self.out = Path(cfg.out)
        train, val, self.val_name = split_train_val(data, cfg.seed)
        if cfg.limit is not None:
            if cfg.limit < 1:
                raise FerEdgeError(f"--limit must be at least 1, got {cfg.limit}")
            train = train.subset(np.arange(min(cfg.limit, len(train))))
        self.train_data, self.val_data, self.full = train, val, data
        self.model_config = ModelConfig(
            num_classes=data.num_classes, depth=cfg.depth, kernel_size=cfg.kernel_size, dropout=cfg.dropout
        )
        torch.manual_seed(cfg.seed)
        self.model = build_model(self.model_config).to(self.device)
        self.ema = EMA(self.model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
        self.opt = torch.optim.SGD(
            self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
        )
        total = cfg.epochs * self.steps_per_epoch
        if cfg.schedule == "onecycle":
            self.sched: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.OneCycleLR(
                self.opt, max_lr=cfg.lr, total_steps=total, pct_start=0.15, div_factor=20, final_div_factor=200
            )
        elif cfg.schedule == "cosine":
            warm = self.steps_per_epoch * min(3, cfg.epochs)
            self.sched = torch.optim.lr_scheduler.LambdaLR(
                self.opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))
            )
        else:
            raise FerEdgeError(f"unknown --schedule {cfg.schedule!r}; choose onecycle or cosine")
        self.aug = AugmentConfig(rotate_deg=cfg.rotate, shift=cfg.shift, erase=cfg.erase)
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0
        self.best_acc = -1.0
        x = torch.from_numpy(train.images).to(self.device)
        self.x_train = x.unsqueeze(1)
        self.y_train = torch.from_numpy(train.labels).to(self.device)
        use_soft = cfg.soft_labels and train.soft is not None
        self.soft_train = torch.from_numpy(train.soft).to(self.device) if use_soft and train.soft is not None else None
        self.distiller = None
        self.stopped_at: int | None = None
        if cfg.teacher:
            from fer_edge.train.distill import Distiller

            self.distiller = Distiller.from_file(
                cfg.teacher, data, train, cfg.kd_temperature, cfg.kd_weight, self.device
            )
            cfg.teacher_sha256 = self.distiller.sha256

    # ---- checkpoints -------------------------------------------------------------------
    def _payload(self, state_dict: dict[str, torch.Tensor], epoch: int, metrics: dict[str, Any]) -> dict[str, Any]:
        return {
            "model_config": self.model_config.to_dict(),
            "arch": self.model_config.arch,
            "dataset": self.full.dataset,
            "labels": list(self.full.class_names),
            "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
            "epoch": epoch,
            "train_args": asdict(self.cfg),
            "metrics": metrics,
            "history": self.history,
            "parameters": count_parameters(self.model),
        }

    def eval_model(self) -> FerCNN:
        model = self.ema.model if self.ema is not None else self.model
        assert isinstance(model, FerCNN)
        return model

    def save_last(self, epoch: int) -> None:
        payload = self._payload(self.model.state_dict(), epoch, {"best_val_acc": self.best_acc})
        payload.update(
            optimizer=self.opt.state_dict(),
            scheduler=self.sched.state_dict(),
            ema_state_dict={k: v.cpu() for k, v in self.ema.model.state_dict().items()} if self.ema else None,
            ema_updates=self.ema.updates if self.ema else 0,
            best_val_acc=self.best_acc,
            rng=rng_state(),
        )
        save_checkpoint(self.out / "last.pt", payload)

    def resume(self) -> None:
        path = self.out / "last.pt"
        if not path.exists():
            raise FerEdgeError("nothing to resume: no last.pt here", path=self.out)
        ckpt = load_checkpoint(path)
        if ckpt["model_config"] != self.model_config.to_dict():
            raise FerEdgeError("checkpoint has a different architecture than the requested run", path=path)
        saved_epochs = ckpt.get("train_args", {}).get("epochs", self.cfg.epochs)
        if saved_epochs != self.cfg.epochs:
            # The learning-rate schedule was laid out for the original length; stepping it
            # further fails (one-cycle) or restarts it (cosine), so a resume keeps the length.
            raise FerEdgeError(
                f"is a run of {saved_epochs} epochs; resume it with --epochs {saved_epochs} "
                "(or start a new run in another --out)",
                path=path,
            )
        if ckpt.get("train_args", {}).get("teacher_sha256") != self.cfg.teacher_sha256:
            raise FerEdgeError(
                "was trained with another --teacher file (or none); resume it with the same one", path=path
            )
        self.model.load_state_dict(ckpt["state_dict"])
        self.opt.load_state_dict(ckpt["optimizer"])
        self.sched.load_state_dict(ckpt["scheduler"])
        if self.ema is not None and ckpt.get("ema_state_dict"):
            self.ema.model.load_state_dict(ckpt["ema_state_dict"])
            self.ema.updates = int(ckpt.get("ema_updates", 0))
        self.history = list(ckpt.get("history", []))
        self.best_acc = float(ckpt.get("best_val_acc", -1.0))
        self.start_epoch = int(ckpt["epoch"])
        restore_rng_state(ckpt.get("rng"))  # dropout draws from it: same masks as an uninterrupted run
        self.console.print(
            f"resuming {path} after epoch {self.start_epoch} (best {self.val_name} {self.best_acc:.2f}%)"
        )

    # ---- the loop ----------------------------------------------------------------------
    def _epoch_batches(self, epoch: int) -> Iterator[torch.Tensor]:
        # Seeded per epoch: a resumed run sees exactly the batches an uninterrupted one would.
        g = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
        perm = torch.randperm(len(self.train_data), generator=g).to(self.device)
        for i in range(self.steps_per_epoch):
            yield perm[i * self.cfg.batch_size : (i + 1) * self.cfg.batch_size]

    def _loss(self, logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if self.soft_train is not None:
            target = self.soft_train[idx]
            eps = self.cfg.label_smoothing
            target = target * (1 - eps) + eps / target.shape[1]
            return torch.sum(-target * F.log_softmax(logits.float(), dim=1), dim=1).mean()
        return F.cross_entropy(logits.float(), self.y_train[idx], label_smoothing=self.cfg.label_smoothing)

    def _evaluate(self) -> tuple[float, float]:
        model = self.eval_model()
        logits = predict_logits(model, self.val_data.images, self.device, self.amp)
        labels = torch.from_numpy(self.val_data.labels)
        loss = float(F.cross_entropy(logits, labels))
        acc = float((logits.argmax(1) == labels).float().mean() * 100)
        return loss, acc

    def fit(self) -> dict[str, Any]:
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        t_fit = time.perf_counter()
        self.console.print(
            f"training {self.model_config.arch} ({count_parameters(self.model):,} parameters) on "
            f"{len(self.train_data)} {self.full.dataset} images, selecting on {self.val_name} "
            f"({len(self.val_data)}), device {self.device}{' bf16' if self.amp else ''}, {cfg.epochs} epochs"
        )
        progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("loss {task.fields[loss]:.3f} acc {task.fields[acc]:.1f}% {task.fields[ips]:.0f} img/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        with progress:
            task = progress.add_task(
                "train",
                total=self.steps_per_epoch * (cfg.epochs - self.start_epoch),
                epoch=self.start_epoch + 1,
                loss=0.0,
                acc=0.0,
                ips=0.0,
            )
            for epoch in range(self.start_epoch, cfg.epochs):
                self.model.train()
                gen = torch.Generator(device="cpu").manual_seed(cfg.seed * 7_919 + epoch)
                t0 = time.perf_counter()
                seen = shown = 0
                # Summed on the device: reading a number back every step would stall a GPU.
                loss_sum_t = torch.zeros((), dtype=torch.float64, device=self.device)
                correct_t = torch.zeros((), dtype=torch.int64, device=self.device)
                for step, idx in enumerate(self._epoch_batches(epoch)):
                    x, flipped = augment_with_flip(self.x_train[idx].float(), self.aug, gen)
                    with autocast(self.device, self.amp):
                        logits = self.model(x)
                    loss = self._loss(logits, idx)
                    if self.distiller is not None:
                        loss = self.distiller.loss(loss, logits, idx, flipped.to(self.device))
                    self.opt.zero_grad(set_to_none=True)
                    loss.backward()
                    self.opt.step()
                    self.sched.step()
                    if self.ema is not None:
                        self.ema.update(self.model)
                    n = len(idx)
                    seen += n
                    loss_sum_t += loss.detach().double() * n
                    correct_t += (logits.argmax(1) == self.y_train[idx]).sum()
                    if step % 20 == 19 or step == self.steps_per_epoch - 1:
                        progress.update(
                            task,
                            advance=step + 1 - shown,
                            epoch=epoch + 1,
                            loss=float(loss_sum_t) / seen,
                            acc=100 * int(correct_t) / seen,
                            ips=seen / (time.perf_counter() - t0),
                        )
                        shown = step + 1
                loss_sum, correct = float(loss_sum_t), int(correct_t)
                train_time = time.perf_counter() - t0
                val_loss, val_acc = self._evaluate()
                row = {
                    "epoch": epoch + 1,
                    "train_loss": round(loss_sum / seen, 5),
                    "train_acc": round(100 * correct / seen, 3),
                    "val_loss": round(val_loss, 5),
                    "val_acc": round(val_acc, 3),
                    "lr": self.sched.get_last_lr()[0],
                    "epoch_seconds": round(train_time, 2),
                    "images_per_second": round(seen / train_time, 1),
                }
                self.history.append(row)
                improved = val_acc > self.best_acc
                if improved:
                    self.best_acc = val_acc
                    save_checkpoint(
                        self.out / "best.pt",
                        self._payload(
                            self.eval_model().state_dict(),
                            epoch + 1,
                            {"selected_on": self.val_name, self.val_name: round(val_acc, 2)},
                        ),
                    )
                self.save_last(epoch + 1)
                self._write_history()
                progress.console.print(
                    f"epoch {epoch + 1}/{cfg.epochs} loss {row['train_loss']:.3f} train {row['train_acc']:.1f}% "
                    f"{self.val_name} {val_acc:.2f}%{' *' if improved else ''} "
                    f"({row['images_per_second']:.0f} img/s, {train_time:.0f} s)"
                )
                epoch_wall = time.perf_counter() - t0
                if (
                    cfg.time_budget
                    and epoch + 1 < cfg.epochs
                    and (time.perf_counter() - t_fit + epoch_wall > cfg.time_budget)
                ):
                    progress.console.print(
                        f"stopping after epoch {epoch + 1}: another epoch would pass --time-budget "
                        f"{cfg.time_budget:.0f} s; continue with --resume"
                    )
                    self.stopped_at = epoch + 1
                    break
        return self.finish()

    def _write_history(self) -> None:
        from fer_edge.core.figures import plot_learning_curve

        write_text_atomic(self.out / "history.json", json.dumps(self.history, indent=1))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(self.history[0]))
        writer.writeheader()
        writer.writerows(self.history)
        write_text_atomic(self.out / "history.csv", buf.getvalue())
        plot_learning_curve(
            self.history, self.out / "learning_curve.png", title=f"{self.full.dataset} {self.model_config.arch}"
        )

    def finish(self) -> dict[str, Any]:
        """Score best.pt on every available split; record the figures in best.pt itself."""
        ckpt = load_checkpoint(self.out / "best.pt")
        model = build_model(self.model_config).to(self.device)
        model.load_state_dict(ckpt["state_dict"])
        metrics = dict(ckpt["metrics"])
        metrics["best_epoch"] = ckpt["epoch"]
        metrics.pop("stopped_by_time_budget_after_epoch", None)
        if self.stopped_at is not None:
            metrics["stopped_by_time_budget_after_epoch"] = self.stopped_at
        for split in ("PublicTest", "PrivateTest"):
            if self.full.has_split(split):
                part = self.full.split(split)
                # Reported figures come from a full-precision pass, as export and evaluate do.
                logits = predict_logits(model, part.images, self.device, amp=False)
                metrics[split] = round(accuracy(part.labels, logits.argmax(1).numpy()), 2)
                # Honest figures: also without the test images that have a pixel copy in Training.
                keep = ~train_duplicate_mask(self.full, split)
                metrics[f"{split}_without_train_duplicates"] = round(
                    accuracy(part.labels[keep], logits.argmax(1).numpy()[keep]), 2
                )
        ckpt["metrics"] = metrics
        ckpt["history"] = self.history
        save_checkpoint(self.out / "best.pt", {k: v for k, v in ckpt.items() if k not in ("format", "format_version")})
        write_text_atomic(self.out / "metrics.json", json.dumps(metrics, indent=1))
        return metrics

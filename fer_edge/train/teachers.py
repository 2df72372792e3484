"""Train an ensemble of teachers at once on one device and cache their outputs in a teacher file.

Members with the same architecture run as one :class:`StackedFerCNN`; each member sees its own
augmented (and mixed) view of the same batch of images. The learning rate follows a cosine over
``progress = max(step / total steps, elapsed / time budget)``, so a run cut short by its time
budget still anneals to the end and stops cleanly, with everything it has written down.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console

from fer_edge.core.errors import FerEdgeError
from fer_edge.data.core import FaceData
from fer_edge.data.duplicates import train_duplicate_mask
from fer_edge.model.net import FerCNN, ModelConfig, count_parameters
from fer_edge.model.scoring import accuracy
from fer_edge.train.augment import AugmentConfig, augment, mix
from fer_edge.train.common import EMA, autocast, bf16_is_fast, pick_device
from fer_edge.train.stacked import StackedFerCNN
from fer_edge.train.teacher_file import (
    FORMAT,
    FORMAT_VERSION,
    TEST_SPLITS,
    TeacherOutputs,
    ensemble_accuracies,
    training_fingerprint,
)

MEMBER_SPEC = re.compile(r"^d(\d)k(\d)f(\d+)(?:fc(\d+))?x(\d+)$")


def parse_members(spec: str, num_classes: int, dropout: float) -> list[tuple[ModelConfig, int]]:
    """``"d6k2f32x4,d6k3f32x2"``: depth, kernel, base filters (, FC width), number of seeds."""
    groups = []
    for part in spec.replace(" ", "").split(","):
        m = MEMBER_SPEC.match(part)
        if not m:
            raise FerEdgeError(
                f"--members entry {part!r} is not like d6k2f32x4 (depth 6, kernel 2, 32 base filters, 4 seeds)"
            )
        depth, kernel, filters, fc, count = (int(g) if g else None for g in m.groups())
        assert depth and kernel and filters and count is not None
        if count < 1 or filters < 1:
            raise FerEdgeError(f"--members entry {part!r} needs at least one seed and one filter")
        config = ModelConfig(
            num_classes=num_classes,
            depth=depth,
            kernel_size=kernel,
            base_filters=filters,
            fc_width=fc or 512,
            dropout=dropout,
        )
        groups.append((config, count))
    return groups


@dataclass
class TeacherConfig:
    data: str
    out: str
    dataset: str = "fer2013"
    votes: str | None = None
    members: str = "d6k2f32x4"
    epochs: int = 200
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    ema_decay: float = 0.999
    dropout: float = 0.4
    erase: float = 0.5
    rotate: float = 15.0
    shift: float = 0.12
    mixup_alpha: float = 0.4  # 0 disables mixup and cutmix
    cutmix: float = 0.5  # share of mixed batches that use CutMix rather than mixup
    mix_prob: float = 0.8  # share of batches that are mixed at all
    seed: int = 0
    limit: int | None = None
    device: str = "auto"
    amp: bool | None = None
    time_budget: float | None = None  # seconds for the whole run, loading and outputs included
    reserve: float = 30.0  # seconds kept back from the budget for the outputs and the file
    eval_every: int = 5


class TeacherTrainer:
    def __init__(self, cfg: TeacherConfig, data: FaceData, console: Console | None = None) -> None:
        self.t_start = time.monotonic()
        self.cfg, self.full = cfg, data
        self.console = console or Console(stderr=True)
        self.device = pick_device(cfg.device)
        self.amp = bf16_is_fast(self.device) if cfg.amp is None else cfg.amp
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if cfg.limit is not None and cfg.limit < 1:
            raise FerEdgeError(f"--limit must be at least 1, got {cfg.limit}")
        self.train_all = data.split("Training")
        n = len(self.train_all) if cfg.limit is None else min(cfg.limit, len(self.train_all))
        self.x = torch.from_numpy(self.train_all.images[:n]).to(self.device)
        if self.train_all.soft is not None:
            target = torch.from_numpy(self.train_all.soft[:n]).float()
        else:
            target = F.one_hot(torch.from_numpy(self.train_all.labels[:n]), data.num_classes).float()
        eps = cfg.label_smoothing
        self.target = (target * (1 - eps) + eps / data.num_classes).to(self.device)
        self.labels = torch.from_numpy(self.train_all.labels[:n]).to(self.device)
        self.groups: list[StackedFerCNN] = []
        self.member_info: list[dict[str, Any]] = []
        for config, count in parse_members(cfg.members, data.num_classes, cfg.dropout):
            members = []
            for _ in range(count):
                seed = cfg.seed * 1000 + len(self.member_info)
                torch.manual_seed(seed)
                members.append(FerCNN(config))
                self.member_info.append(
                    {
                        "arch": config.arch,
                        "config": config.to_dict(),
                        "seed": seed,
                        "parameters": count_parameters(members[-1]),
                    }
                )
            self.groups.append(StackedFerCNN.from_members(members).to(self.device))
        params = [p for g in self.groups for p in g.parameters()]
        self.opt = torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
        )
        self.emas = [EMA(g, cfg.ema_decay) for g in self.groups] if cfg.ema_decay > 0 else []
        self.aug = AugmentConfig(rotate_deg=cfg.rotate, shift=cfg.shift, erase=cfg.erase)
        self.steps_per_epoch = math.ceil(n / cfg.batch_size)
        self.history: list[dict[str, Any]] = []

    # ---- schedule ----------------------------------------------------------------------
    def _deadline(self) -> float | None:
        if self.cfg.time_budget is None:
            return None
        return self.t_start + self.cfg.time_budget - self.cfg.reserve

    @staticmethod
    def lr_factor(progress: float) -> float:
        """Linear warm-up over the first 3%, then a cosine to zero."""
        warm = 0.03
        if progress < warm:
            return (progress + 1e-3) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warm) / (1 - warm))))

    # ---- training ----------------------------------------------------------------------
    def _step_inputs(
        self, idx: torch.Tensor, k: int, gen: torch.Generator, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b = len(idx)
        views = self.x[idx].float().unsqueeze(1).expand(b, k, 48, 48).reshape(b * k, 1, 48, 48)
        target = self.target[idx].unsqueeze(1).expand(b, k, -1).reshape(b * k, -1)
        views = augment(views, self.aug, gen)
        if self.cfg.mixup_alpha > 0 and rng.random() < self.cfg.mix_prob:
            views, target = mix(views, target, gen, rng, self.cfg.mixup_alpha, self.cfg.cutmix)
        return views.reshape(b, k, 48, 48), target.reshape(b, k, -1).transpose(0, 1)

    def fit(self) -> tuple[TeacherOutputs, dict[str, Any]]:
        cfg = self.cfg
        total_steps = cfg.epochs * self.steps_per_epoch
        n_members = len(self.member_info)
        self.console.print(
            f"training {n_members} teachers ({cfg.members}) on {len(self.x)} {self.full.dataset} images, "
            f"device {self.device}{' bf16' if self.amp else ''}, up to {cfg.epochs} epochs"
            + (f", time budget {cfg.time_budget:.0f} s" if cfg.time_budget else "")
        )
        gen = torch.Generator(device=self.device).manual_seed(cfg.seed)  # augmentation draws stay on the device
        rng = np.random.default_rng(cfg.seed)
        deadline = self._deadline()
        t_train = time.monotonic()
        self.step, self.epoch, self.stopped_by = 0, 0, "epochs"
        try:
            self._train(gen, rng, total_steps, deadline, t_train)
        except KeyboardInterrupt:
            # SIGINT or SIGTERM from outside (scripts/train_teachers.py maps both): keep what was learnt.
            self.stopped_by = "interrupted"
        train_seconds = time.monotonic() - t_train
        return self._outputs(self.epoch, self.stopped_by, train_seconds)

    def _train(
        self,
        gen: torch.Generator,
        rng: np.random.Generator,
        total_steps: int,
        deadline: float | None,
        t_train: float,
    ) -> None:
        cfg = self.cfg
        n_members = len(self.member_info)
        progress = 0.0
        for epoch in range(1, cfg.epochs + 1):
            self.epoch = epoch
            for g in self.groups:
                g.train()
            t0 = time.monotonic()
            loss_sum = torch.zeros((), device=self.device)
            perm = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
            perm = perm.to(self.device)
            for i in range(self.steps_per_epoch):
                idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
                elapsed = 0.0 if deadline is None else (time.monotonic() - t_train) / max(deadline - t_train, 1e-9)
                progress = max(self.step / total_steps, elapsed)
                for group in self.opt.param_groups:
                    group["lr"] = cfg.lr * self.lr_factor(progress)
                loss = torch.zeros((), device=self.device)
                for g in self.groups:
                    x, target = self._step_inputs(idx, g.k, gen, rng)
                    with autocast(self.device, self.amp):
                        logits = g(x)
                    # sum over members of each member's mean loss: the members' gradients stay independent
                    loss = loss + torch.sum(-target * F.log_softmax(logits.float(), dim=-1), dim=-1).mean(1).sum()
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                for ema, g in zip(self.emas, self.groups):
                    ema.update(g)
                loss_sum += loss.detach()
                self.step += 1
                if progress >= 1.0:
                    break
            row: dict[str, Any] = {
                "epoch": epoch,
                "loss_per_member": round(float(loss_sum) / max(1, i + 1) / n_members, 5),
                "lr": round(cfg.lr * self.lr_factor(progress), 6),
                "epoch_seconds": round(time.monotonic() - t0, 2),
                "images_per_second_per_member": round(
                    min(len(self.x), (i + 1) * cfg.batch_size) / (time.monotonic() - t0), 1
                ),
            }
            last = progress >= 1.0 or epoch == cfg.epochs
            if self.full.has_split("PublicTest") and (epoch % cfg.eval_every == 0 or last):
                logits = self.predict(self.full.split("PublicTest").images, amp=self.amp)
                labels = self.full.split("PublicTest").labels
                probs = torch.softmax(logits, -1)
                row["PublicTest_ensemble"] = round(accuracy(labels, probs.mean(0).argmax(-1).numpy()), 2)
                row["PublicTest_members_mean"] = round(
                    float(np.mean([accuracy(labels, p.argmax(-1).numpy()) for p in probs])), 2
                )
            self.history.append(row)
            self.console.print(" ".join(f"{k} {v}" for k, v in row.items()))
            if progress >= 1.0:
                self.stopped_by = "epochs" if self.step >= total_steps else "time budget"
                break

    # ---- outputs -----------------------------------------------------------------------
    def eval_models(self) -> list[StackedFerCNN]:
        return [cast(StackedFerCNN, e.model) for e in self.emas] if self.emas else list(self.groups)

    @torch.no_grad()
    def predict(self, images: np.ndarray, amp: bool = False, flip: bool = False, batch: int = 1024) -> torch.Tensor:
        """Every member's logits ``[K, N, C]`` (float32, CPU) for uint8 faces ``[N, 48, 48]``."""
        models = self.eval_models()
        for m in models:
            m.eval()
        out = []
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i : i + batch]).to(self.device).float()
            if flip:
                x = torch.flip(x, dims=[2])
            with autocast(self.device, amp):
                out.append(torch.cat([m(x.unsqueeze(1).expand(-1, m.k, -1, -1)).float() for m in models]).cpu())
        return torch.cat(out, dim=1)

    def _outputs(
        self, epochs_done: int, stopped_by: str, train_seconds: float
    ) -> tuple[TeacherOutputs, dict[str, Any]]:
        # Full-precision passes, as evaluate and export make.
        outputs = TeacherOutputs(meta={})
        keys = [("train", self.train_all)] + [(s, self.full.split(s)) for s in TEST_SPLITS if self.full.has_split(s)]
        for key, part in keys:
            outputs.rows[key] = part.rows
            outputs.logits[key] = self.predict(part.images).numpy()
            outputs.logits[f"{key}_flip"] = self.predict(part.images, flip=True).numpy()
        exclude = {s: train_duplicate_mask(self.full, s) for s in TEST_SPLITS if self.full.has_split(s)}
        members = []
        for j, info in enumerate(self.member_info):
            row = dict(info)
            for s in TEST_SPLITS:
                if s in outputs.logits:
                    row[s] = round(accuracy(self.full.split(s).labels, outputs.logits[s][j].argmax(-1)), 2)
            members.append(row)
        outputs.meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dataset": self.full.dataset,
            "labels": list(self.full.class_names),
            "training_sha256": training_fingerprint(self.full),
            "training_images": len(self.train_all),
            "trained_on_first": len(self.x),
            "members": members,
            "args": asdict(self.cfg),
            "epochs_done": epochs_done,
            "stopped_by": stopped_by,
            "train_seconds": round(train_seconds, 1),
            "device": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu",
            "torch": torch.__version__,
        }
        report = ensemble_accuracies(outputs, self.full, exclude)
        outputs.meta["ensemble"] = report
        return outputs, {"ensemble": report, "members": members, "history": self.history}

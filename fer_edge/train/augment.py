"""Batched augmentation for 48x48 faces, run on the training device.

Done on whole batches with ``affine_grid``/``grid_sample`` rather than per image in Python, so
two CPU cores keep up with the model and a GPU is never starved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = 0.5
    rotate_deg: float = 15.0
    scale: tuple[float, float] = (0.85, 1.15)
    shift: float = 0.12  # fraction of the image size, like a padded random crop
    erase: float = 0.5
    erase_area: tuple[float, float] = (0.02, 0.2)


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """``x``: float raw pixels ``[N,1,48,48]``. Returns an augmented copy."""
    return augment_with_flip(x, cfg, gen)[0]


def augment_with_flip(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """As :func:`augment`, and which images were flipped (bool ``[N]``), for flip-aware targets."""
    n, dev = x.shape[0], x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen, device=gen.device).to(dev)

    angle = (rand(n) * 2 - 1) * math.radians(cfg.rotate_deg)
    scale = cfg.scale[0] + rand(n) * (cfg.scale[1] - cfg.scale[0])
    flip = torch.where(rand(n) < cfg.flip, -1.0, 1.0)
    tx, ty = (rand(n) * 2 - 1) * cfg.shift * 2, (rand(n) * 2 - 1) * cfg.shift * 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    if cfg.erase > 0:
        h, w = x.shape[-2:]
        area = cfg.erase_area[0] + rand(n) * (cfg.erase_area[1] - cfg.erase_area[0])
        aspect = torch.exp((rand(n) * 2 - 1) * math.log(2.0))
        eh = (torch.sqrt(area * aspect) * h).clamp(1, h)
        ew = (torch.sqrt(area / aspect) * w).clamp(1, w)
        y0 = rand(n) * (h - eh)
        x0 = rand(n) * (w - ew)
        ys = torch.arange(h, device=dev).view(1, h, 1)
        xs = torch.arange(w, device=dev).view(1, 1, w)
        box = (
            (ys >= y0.view(n, 1, 1))
            & (ys < (y0 + eh).view(n, 1, 1))
            & (xs >= x0.view(n, 1, 1))
            & (xs < (x0 + ew).view(n, 1, 1))
        )
        box &= (rand(n) < cfg.erase).view(n, 1, 1)
        noise = rand(n, 1, h, w) * 255.0
        out = torch.where(box.unsqueeze(1), noise, out)
    return out, flip < 0


def mix(
    x: torch.Tensor,
    target: torch.Tensor,
    gen: torch.Generator,
    rng: np.random.Generator,
    alpha: float = 0.4,
    cutmix: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or CutMix (Zhang et al. 2018; Yun et al. 2019) over a batch, one pairing per batch.

    ``x`` ``[N,1,H,W]``, ``target`` a distribution ``[N,C]``. With probability ``cutmix`` a box of
    the partner image is pasted in, else the images are blended; the targets mix by the share
    of pixels (or the blend weight) each image keeps. The scalars come from the host ``rng``, so
    no draw waits on the device.
    """
    if alpha <= 0:
        return x, target
    lam = float(rng.beta(alpha, alpha))
    perm = torch.randperm(x.shape[0], generator=gen, device=gen.device).to(x.device)
    if rng.random() < cutmix:
        h, w = x.shape[-2:]
        cut = math.sqrt(1 - lam)
        ch, cw = int(h * cut), int(w * cut)
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
        x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
        out = x.clone()
        out[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    else:
        out = lam * x + (1 - lam) * x[perm]
    return out, lam * target + (1 - lam) * target[perm]

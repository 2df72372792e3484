"""The CNN of Salimov & Yoo (2021): six 2x2 convolutions 32..1024, three FC-512, 7 or 8 outputs.

Depth (2-7) and kernel size (2-5) are configurable to re-run the paper's Table 3 ablation.
Input is raw grayscale pixels in [0, 255]; normalisation is the model's first operation, so
every deployment (ONNX, TensorRT, the camera) feeds the same raw pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from fer_edge.core.errors import FerEdgeError

# FER2013 training-set pixel statistics (mean 129.4, std 65.0), rounded.
PIXEL_MEAN = 129.4
PIXEL_STD = 65.0


@dataclass(frozen=True)
class ModelConfig:
    num_classes: int = 7
    depth: int = 6
    kernel_size: int = 2
    base_filters: int = 32
    fc_width: int = 512
    fc_layers: int = 3
    dropout: float = 0.4
    batch_norm: bool = True
    image_size: int = 48
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 2 <= self.depth <= 7:
            raise FerEdgeError(f"depth must be in 2..7, got {self.depth}")
        if not 2 <= self.kernel_size <= 5:
            raise FerEdgeError(f"kernel size must be in 2..5, got {self.kernel_size}")
        if self.num_classes < 2:
            raise FerEdgeError(f"need at least 2 classes, got {self.num_classes}")

    @property
    def arch(self) -> str:
        return f"salimov-cnn-d{self.depth}-k{self.kernel_size}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class FerCNN(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.mean: torch.Tensor
        self.inv_std: torch.Tensor
        self.register_buffer("mean", torch.tensor(PIXEL_MEAN), persistent=False)
        self.register_buffer("inv_std", torch.tensor(1.0 / PIXEL_STD), persistent=False)
        layers: list[nn.Module] = []
        channels, size = 1, config.image_size
        for i in range(config.depth):
            out = config.base_filters * 2**i
            layers.append(nn.Conv2d(channels, out, config.kernel_size, padding="same", bias=not config.batch_norm))
            if config.batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            # Pool after every conv but the first, while there is anything left to pool.
            if i > 0 and size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            channels = out
        self.features = nn.Sequential(*layers)
        fc: list[nn.Module] = [nn.Flatten()]
        width = channels * size * size
        for _ in range(config.fc_layers):
            fc += [nn.Linear(width, config.fc_width), nn.ReLU(inplace=True), nn.Dropout(config.dropout)]
            width = config.fc_width
        fc.append(nn.Linear(width, config.num_classes))
        self.classifier = nn.Sequential(*fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: raw pixels ``[N, 1, H, W]`` (any float or uint8 dtype), values in [0, 255]."""
        x = (x.float() - self.mean) * self.inv_std
        return self.classifier(self.features(x))


def build_model(config: ModelConfig) -> FerCNN:
    return FerCNN(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

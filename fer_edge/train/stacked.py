"""K independent copies of the paper's CNN run as one network, for training an ensemble at once.

Member k's convolutions are group k of grouped convolutions, its BatchNorm channels are its own
slice, and its fully connected layers are slice k of batched matrix products. The members share
no weights and no statistics, so the result is exactly K separate networks, but a training step
launches the kernels of one network instead of K: on a GPU, small networks are bound by kernel
launches, not by arithmetic.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fer_edge.model.net import PIXEL_MEAN, PIXEL_STD, FerCNN, ModelConfig


class StackedLinear(nn.Module):
    """``K`` independent linear layers: ``[K, N, in] -> [K, N, out]``."""

    def __init__(self, k: int, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(k, n_in, n_out))
        self.bias = nn.Parameter(torch.empty(k, 1, n_out))
        bound = 1 / math.sqrt(n_in)  # nn.Linear's default initialisation, per member
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class StackedFerCNN(nn.Module):
    def __init__(self, config: ModelConfig, k: int) -> None:
        super().__init__()
        self.config, self.k = config, k
        self.mean: torch.Tensor
        self.inv_std: torch.Tensor
        self.register_buffer("mean", torch.tensor(PIXEL_MEAN), persistent=False)
        self.register_buffer("inv_std", torch.tensor(1.0 / PIXEL_STD), persistent=False)
        # Same layer sequence as FerCNN.features, so member weights map index by index.
        layers: list[nn.Module] = []
        channels, size = 1, config.image_size
        for i in range(config.depth):
            out = config.base_filters * 2**i
            layers.append(
                nn.Conv2d(
                    k * channels, k * out, config.kernel_size, padding="same", groups=k, bias=not config.batch_norm
                )
            )
            if config.batch_norm:
                layers.append(nn.BatchNorm2d(k * out))
            layers.append(nn.ReLU(inplace=True))
            if i > 0 and size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            channels = out
        self.features = nn.Sequential(*layers)
        width = channels * size * size
        self.fc = nn.ModuleList()
        for _ in range(config.fc_layers):
            self.fc.append(StackedLinear(k, width, config.fc_width))
            width = config.fc_width
        self.fc.append(StackedLinear(k, width, config.num_classes))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: raw pixels ``[N, K, H, W]``, member k reading channel k. Returns logits ``[K, N, C]``."""
        n = x.shape[0]
        h = self.features((x.float() - self.mean) * self.inv_std)
        h = h.reshape(n, self.k, -1).transpose(0, 1)  # member k's channels are contiguous: its own flatten order
        for i, layer in enumerate(self.fc):
            h = layer(h)
            if i < len(self.fc) - 1:
                h = self.dropout(torch.relu(h))
        return h

    @classmethod
    def from_members(cls, members: list[FerCNN]) -> StackedFerCNN:
        config = members[0].config
        if any(m.config != config for m in members):
            raise ValueError("stacked members must share one ModelConfig")
        stacked = cls(config, len(members))
        with torch.no_grad():
            for mine, theirs in zip(stacked._weighted(), zip(*(_weighted_of(m) for m in members))):
                _stack_into(mine, list(theirs))
        return stacked

    def member_state_dict(self, i: int) -> dict[str, torch.Tensor]:
        """Member ``i`` as a :class:`FerCNN` state dict (loads into ``build_model(self.config)``)."""
        member = FerCNN(self.config)
        with torch.no_grad():
            for mine, theirs in zip(self._weighted(), _weighted_of(member)):
                _slice_into(mine, theirs, i, self.k)
        return member.state_dict()

    def _weighted(self) -> list[nn.Module]:
        return [m for m in self.features if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))] + list(self.fc)


def _weighted_of(model: FerCNN) -> list[nn.Module]:
    return [m for m in [*model.features, *model.classifier] if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]


def _stack_into(mine: nn.Module, theirs: list[nn.Module]) -> None:
    if isinstance(mine, StackedLinear):
        mine.weight.copy_(torch.stack([t.state_dict()["weight"].t() for t in theirs]))
        mine.bias.copy_(torch.stack([t.state_dict()["bias"] for t in theirs]).unsqueeze(1))
        return
    for name, tensor in mine.state_dict().items():
        parts = [t.state_dict()[name] for t in theirs]
        tensor.copy_(parts[0] if tensor.ndim == 0 else torch.cat(parts))


def _slice_into(mine: nn.Module, theirs: nn.Module, i: int, k: int) -> None:
    target = theirs.state_dict()  # tensors sharing the module's storage
    if isinstance(mine, StackedLinear):
        target["weight"].copy_(mine.weight[i].t())
        target["bias"].copy_(mine.bias[i, 0])
        return
    for name, tensor in mine.state_dict().items():
        target[name].copy_(tensor if tensor.ndim == 0 else tensor.chunk(k)[i])

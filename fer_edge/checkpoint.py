"""Checkpoints (``.pt``): weights plus everything ``evaluate``, ``info`` and ``export`` need.

Layout (a plain dict saved with ``torch.save``)::

    format: "fer-edge-checkpoint", format_version: 1, fer_edge_version
    model_config: ModelConfig.to_dict(), arch, dataset, labels (list, output order)
    state_dict: model weights
    epoch: last completed epoch (1-based), train_args: dict, metrics: dict
    history: list of per-epoch metric dicts
    optimizer / scheduler / scaler / ema_state_dict / rng: only in ``last.pt``, for ``--resume``
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fer_edge import __version__
from fer_edge.atomic import atomic_path
from fer_edge.errors import FerEdgeError, missing_dependency

if TYPE_CHECKING:
    from fer_edge.model import FerCNN

FORMAT = "fer-edge-checkpoint"
FORMAT_VERSION = 1


def import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise missing_dependency("torch", "this command", "pip install 'fer-edge[train]'") from None
    return torch


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write atomically: a kill mid-write leaves the previous checkpoint intact."""
    torch = import_torch()
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "fer_edge_version": __version__, **payload}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    torch = import_torch()
    path = Path(path)
    if not path.exists():
        raise FerEdgeError("file not found", path=path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise FerEdgeError(f"not a readable PyTorch checkpoint ({type(exc).__name__})", path=path) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise FerEdgeError("not a fer-edge checkpoint (no 'format: fer-edge-checkpoint' entry)", path=path)
    for key in ("model_config", "state_dict", "labels", "dataset"):
        if key not in ckpt:
            raise FerEdgeError(f"fer-edge checkpoint without {key!r}", path=path)
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any], use_ema: bool = True) -> FerCNN:
    """Rebuild the model in eval mode. ``use_ema`` prefers averaged weights where saved."""
    from fer_edge.model import ModelConfig, build_model

    model = build_model(ModelConfig.from_dict(ckpt["model_config"]))
    ema = ckpt.get("ema_state_dict")
    state = ema if use_ema and ema else ckpt["state_dict"]
    model.load_state_dict(state)
    return model.eval()

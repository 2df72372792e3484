"""Checkpoints (``.pt``): weights plus everything ``evaluate``, ``info`` and ``export`` need.

Layout (a plain dict saved with ``torch.save``)::

    format: "fer-edge-checkpoint", format_version: 1, fer_edge_version
    model_config: ModelConfig.to_dict(), arch, dataset, labels (list, output order)
    state_dict: model weights
    epoch: last completed epoch (1-based), train_args: dict, metrics: dict
    history: list of per-epoch metric dicts
    optimizer / scheduler / scaler / ema_state_dict / rng: only in ``last.pt``, for ``--resume``

Only tensors, dicts, lists, tuples, numbers, strings and None are saved, so a checkpoint loads
with ``torch.load(weights_only=True)``: loading never runs code from the file. ``last.pt`` files
written before the RNG state was saved as plain lists hold NumPy arrays; those NumPy types (and
nothing else) are also allowed.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fer_edge import __version__
from fer_edge.core.atomic import write_bytes_atomic
from fer_edge.core.errors import FerEdgeError
from fer_edge.core.optional import import_torch
from fer_edge.core.paths import require_file

if TYPE_CHECKING:
    from fer_edge.model.net import FerCNN

FORMAT = "fer-edge-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write atomically: a kill mid-write leaves the previous checkpoint intact."""
    torch = import_torch()
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "fer_edge_version": __version__, **payload}
    # Serialised in memory first: a full disk then fails in a plain write (an OSError that names
    # the file and the reason), not deep inside torch's zip writer.
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_bytes_atomic(path, buf.getvalue())


def _legacy_numpy_globals() -> list[Any]:
    """The NumPy types an older ``last.pt`` holds (the RNG key array): data, not code."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    allowed: list[Any] = [_reconstruct, np.ndarray, np.dtype]
    # the dtype classes of the arrays that appear (NumPy >= 1.25 pickles them by class)
    dtypes = getattr(np, "dtypes", None)
    for name in ("UInt32DType", "Int64DType", "Float64DType"):
        if dtypes is not None and hasattr(dtypes, name):
            allowed.append(getattr(dtypes, name))
    return allowed


def _safe_load(torch: Any, path: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's note about the pickle protocol of a foreign file
        safe_globals = getattr(torch.serialization, "safe_globals", None)
        if safe_globals is None:  # torch < 2.5: no allow-list, plain tensors and containers only
            return torch.load(path, map_location="cpu", weights_only=True)
        with safe_globals(_legacy_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)


def _refusal(exc: Exception) -> str:
    """torch's multi-paragraph refusal as one line naming what the file wanted to build."""
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    what = f" ({found.group(1)})" if found else ""
    return (
        f"refused: the file holds Python objects{what} that fer-edge checkpoints never contain, and "
        "loading them could run code; only load checkpoints written by fer-edge train"
    )


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    import pickle

    torch = import_torch()
    path = Path(path)
    require_file(path, "checkpoint file")
    try:
        ckpt = _safe_load(torch, path)
    except pickle.UnpicklingError as exc:
        # a file that asks for a Python callable (GLOBAL) is refused as such; other opcodes the
        # restricted unpickler does not know mean a damaged or foreign file
        if "GLOBAL" in str(exc):
            raise FerEdgeError(_refusal(exc), path=path) from None
        raise FerEdgeError(f"not a readable PyTorch checkpoint ({type(exc).__name__})", path=path) from None
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise FerEdgeError(f"not a readable PyTorch checkpoint ({type(exc).__name__})", path=path) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise FerEdgeError("not a fer-edge checkpoint (no 'format: fer-edge-checkpoint' entry)", path=path)
    for key in ("model_config", "state_dict", "labels", "dataset"):
        if key not in ckpt:
            raise FerEdgeError(f"fer-edge checkpoint without {key!r}", path=path)
    _check_types(ckpt, path)
    return ckpt


def _check_types(ckpt: dict[str, Any], path: Path) -> None:
    """Wrong-typed entries (a hand-made or damaged file) are refused here, not later as a crash."""
    expected = {"model_config": dict, "state_dict": dict, "labels": list, "dataset": str}
    for key, kind in expected.items():
        if not isinstance(ckpt[key], kind):
            raise FerEdgeError(f"checkpoint entry {key!r} is a {type(ckpt[key]).__name__}, not a {kind.__name__}",
                               path=path)
    if not ckpt["labels"] or not all(isinstance(x, str) for x in ckpt["labels"]):
        raise FerEdgeError("checkpoint entry 'labels' is not a non-empty list of class names", path=path)
    for key in ("metrics", "train_args"):
        if key in ckpt and ckpt[key] is not None and not isinstance(ckpt[key], dict):
            raise FerEdgeError(f"checkpoint entry {key!r} is not a dict", path=path)


def _first_problem(exc: Exception) -> str:
    """``size mismatch for fc1.weight: ...`` out of torch's multi-line load_state_dict error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = next((line for line in lines if not line.startswith("Error(s) in loading")), "")
    detail = detail[:200] + ("..." if len(detail) > 200 else "")
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def plain_numpy_rng_state(state: Any) -> dict[str, Any]:
    """``np.random.get_state()`` as plain types (the key array as a list of ints)."""
    name, keys, pos, has_gauss, cached = state
    return {"bit_generator": str(name), "keys": [int(k) for k in keys], "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def numpy_rng_state(saved: Any) -> tuple[Any, ...]:
    """What ``np.random.set_state`` takes, from the plain form or the older tuple with an array."""
    import numpy as np

    if isinstance(saved, dict):
        keys = np.asarray(saved["keys"], dtype=np.uint32)
        return (saved["bit_generator"], keys, saved["pos"], saved["has_gauss"], saved["cached_gaussian"])
    return tuple(saved)


def model_from_checkpoint(ckpt: dict[str, Any], use_ema: bool = True, path: str | Path | None = None) -> FerCNN:
    """Rebuild the model in eval mode. ``use_ema`` prefers averaged weights where saved; ``path`` (the
    checkpoint's file) is named when the weights do not fit the config."""
    from fer_edge.model.net import ModelConfig, build_model

    try:
        model = build_model(ModelConfig.from_dict(ckpt["model_config"]))
        ema = ckpt.get("ema_state_dict")
        state = ema if use_ema and ema else ckpt["state_dict"]
        model.load_state_dict(state)
    except Exception as exc:  # a config torch cannot build, or weights of another shape
        raise FerEdgeError(f"checkpoint weights do not fit its model config ({_first_problem(exc)})",
                           path=path) from None
    return model.eval()

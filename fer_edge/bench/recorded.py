"""The accuracy a model file records about itself (metadata ``metrics``, written by export/quantize)."""

from __future__ import annotations

import json
from typing import Any

_ACCURACY_KEYS = ("accuracy", "top1", "acc")


def _as_percent(value: Any) -> float | None:
    if isinstance(value, dict):
        for key in _ACCURACY_KEYS:
            if key in value:
                return _as_percent(value[key])
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    # Percent is the contract (e.g. 69.5); a fraction (0.695) is accepted and converted.
    return float(value) * 100.0 if 0.0 <= value <= 1.0 else float(value)


FALLBACK_SPLITS = ("PrivateTest", "PublicTest")


def _lookup(metrics: dict[str, Any], split: str) -> float | None:
    if split in metrics:
        return _as_percent(metrics[split])
    for key, value in metrics.items():
        low = key.lower()
        if low.startswith(split.lower()) and any(k in low for k in _ACCURACY_KEYS):
            return _as_percent(value)
    return None


def recorded_accuracy(metadata: dict[str, str], split: str) -> tuple[float | None, str | None]:
    """Accuracy (%) recorded in ``metadata['metrics']`` and the split it is for.

    ``split`` first; if the model recorded none for it, PrivateTest then PublicTest (the caller
    shows which). Accepts ``{"PrivateTest": 69.5}``, ``{"PrivateTest": {"accuracy": 69.5}}``,
    ``{"PrivateTest_accuracy": 69.5}`` and fractions (0.695). ``(None, None)`` when nothing fits.
    """
    raw = metadata.get("metrics")
    if not raw:
        return None, None
    try:
        metrics = json.loads(raw)
    except (json.JSONDecodeError, TypeError, RecursionError):  # RecursionError: hostile nesting
        return None, None
    if not isinstance(metrics, dict):
        return None, None
    for candidate in (split, *[s for s in FALLBACK_SPLITS if s != split]):
        value = _lookup(metrics, candidate)
        if value is not None:
            return value, candidate
    return None, None

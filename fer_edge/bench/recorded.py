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
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # Percent is the contract (e.g. 69.5); a fraction (0.695) is accepted and converted.
    return float(value) * 100.0 if 0.0 <= value <= 1.0 else float(value)


def recorded_accuracy(metadata: dict[str, str], split: str) -> float | None:
    """Accuracy (%) on ``split`` recorded in ``metadata['metrics']``, or None if there is none.

    Accepts ``{"PrivateTest": 69.5}``, ``{"PrivateTest": {"accuracy": 69.5}}`` and
    ``{"PrivateTest_accuracy": 69.5}``-style flat keys.
    """
    raw = metadata.get("metrics")
    if not raw:
        return None
    try:
        metrics = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(metrics, dict):
        return None
    if split in metrics:
        return _as_percent(metrics[split])
    for key, value in metrics.items():
        low = key.lower()
        if low.startswith(split.lower()) and any(k in low for k in _ACCURACY_KEYS):
            return _as_percent(value)
    return None

"""``nvidia-smi`` queries live in :mod:`fer_edge.core.machine`; this name stays until the layout move."""

from __future__ import annotations

from fer_edge.core.machine import query_nvidia_smi

__all__ = ["query_nvidia_smi"]

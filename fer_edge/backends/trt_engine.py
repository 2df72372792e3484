"""TensorRT backend (placeholder while the runner is written)."""

from __future__ import annotations

from pathlib import Path

from fer_edge.backends.base import Backend
from fer_edge.errors import FerEdgeError


def open_engine(path: str | Path) -> Backend:
    raise FerEdgeError("the TensorRT runner is not implemented yet", path=path)

"""Placeholder: being written (see the open issue for this command)."""

from __future__ import annotations

from fer_edge.errors import FerEdgeError


def quantize() -> None:
    """Not implemented yet."""
    raise FerEdgeError("this command is not implemented yet")

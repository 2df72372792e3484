"""Placeholder: being written."""

from __future__ import annotations

from fer_edge.errors import FerEdgeError


def info() -> None:
    """Not implemented yet."""
    raise FerEdgeError("this command is not implemented yet")

"""Which Python the host-side commands (train, export, quantize) need.

The device side runs on Python 3.8 (JetPack 5) and 3.10 (JetPack 6) without torch; training,
export and quantisation run on a workstation with torch, which needs Python >= 3.10. On an
older Python those commands refuse in one line before importing anything heavy.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from fer_edge.core.errors import FerEdgeError

HOST_PYTHON = (3, 10)
HOST_COMMANDS = ("train", "export", "quantize")


def require_host_python(command: str, version: Sequence[int] | None = None) -> None:
    """Raise when this Python is older than :data:`HOST_PYTHON` (``version`` defaults to the running one)."""
    major, minor = tuple((version or sys.version_info)[:2])
    if (major, minor) < HOST_PYTHON:
        raise FerEdgeError(
            f"fer-edge {command} needs Python >= {HOST_PYTHON[0]}.{HOST_PYTHON[1]} with torch; this is Python "
            f"{major}.{minor}, a device-side install (JetPack 5): run '{command}' on a workstation "
            "(pip install torch==2.13.0 && pip install -e '.[train,cpu]') and copy the .onnx to this device"
        )

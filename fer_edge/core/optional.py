"""Optional libraries, imported when a feature first needs them, or one line naming the extra to install.

fer-edge imports on a machine that has none of its extras (a Jetson without torch, a server without
OpenCV); the error comes when a feature is used, not when the package loads. Every optional library
is here once, with the extra that installs it, so the message is the same wherever it is raised.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Dict, Optional, Tuple

from fer_edge.core.errors import FerEdgeError, first_line, missing_dependency

ORT_INSTALL = (
    "pip install 'fer-edge[cpu]' (CPU) or 'fer-edge[gpu]' (CUDA, x86); on a Jetson run "
    "scripts/jetson_setup.sh, which installs the build for its JetPack"
)

# top-level module -> (what a person calls it, how to install it)
EXTRAS: Dict[str, Tuple[str, str]] = {
    "cv2": ("OpenCV", "pip install 'fer-edge[opencv]' (on a Jetson use JetPack's OpenCV)"),
    "onnxruntime": ("ONNX Runtime", ORT_INSTALL),
    "torch": ("torch", "pip install 'fer-edge[train]'"),
    "psycopg": ("psycopg 3", "pip install 'fer-edge[fleet]'"),
    "onnxconverter_common": ("onnxconverter-common", "pip install 'fer-edge[fp16]'"),
}


def optional_import(module: str, feature: Optional[str] = None) -> ModuleType:
    """``module`` imported, or a :class:`FerEdgeError` naming the extra that installs it.

    A library that is installed but fails to import (onnxruntime-gpu without the CUDA libraries it
    links, a torch built for another CPU) is a different problem from a missing one, and says so.
    """
    top = module.split(".")[0]
    package, install = EXTRAS[top]
    try:
        __import__(module)  # through builtins.__import__, as an import statement goes
    except ImportError as exc:
        missing = exc.name is None or exc.name in (top, module) or module.startswith(exc.name + ".")
        if missing:
            raise missing_dependency(package, feature, install) from None
        raise FerEdgeError(
            f"{package} is installed but does not import ({first_line(exc)}); reinstall one build: {install}"
        ) from None
    return sys.modules[module]


def import_cv2() -> ModuleType:
    return optional_import("cv2", "the camera pipeline")


def import_torch() -> ModuleType:
    return optional_import("torch", "this command")


def import_psycopg() -> ModuleType:
    return optional_import("psycopg", "syncing to PostgreSQL")


def import_onnxruntime() -> ModuleType:
    return optional_import("onnxruntime")

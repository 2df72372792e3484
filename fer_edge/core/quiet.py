"""Only fer-edge speaks unless asked: third-party logging that tells a user nothing, turned down in one place.

The CLI calls :func:`configure` once, before any command imports OpenCV, torch or ONNX Runtime;
``fer-edge --verbose`` leaves every library at its own default level instead. A setting the user made in the
environment (``OPENCV_LOG_LEVEL=INFO``) always wins over ours.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Dict, List, Tuple, Type

# Read by OpenCV's C++ code when it first logs or opens a video backend, so they are set before cv2 is used.
# OPENCV_FFMPEG_LOGLEVEL is FFmpeg's av_log level (-8 = AV_LOG_QUIET): FFmpeg's own C code prints
# "[tcp @ 0x...] Connection refused" and "moov atom not found" before our one-line error says the same.
QUIET_ENV: Dict[str, str] = {
    "OPENCV_LOG_LEVEL": "SILENT",  # also its ERROR lines (e.g. the obsensor backend probing a camera index)
    "OPENCV_FFMPEG_LOGLEVEL": "-8",
}

# Warnings about our own model that a user can do nothing about: (message regex, category).
# padding='same' with the paper's even (2x2) kernels: PyTorch pads a copy of the input, which is intended.
KNOWN_WARNINGS: List[Tuple[str, Type[Warning]]] = [
    (r"Using padding='same' with even kernel lengths", UserWarning),
]

ORT_QUIET, ORT_VERBOSE = 3, 2  # ONNX Runtime severities: 3 errors only, 2 also warnings (its default)

_state = {"verbose": False}
_set_by_us: Dict[str, str] = {}


def configure(verbose: bool = False) -> None:
    """Quiet (the default) or ``verbose`` third-party output for this process and the processes it starts.

    Called once per process: the warning filters it adds stay for the life of the process."""
    _state["verbose"] = verbose
    if verbose:
        for name, value in list(_set_by_us.items()):  # undo only what we set, in case this process set it
            if os.environ.get(name) == value:
                del os.environ[name]
            del _set_by_us[name]
        _set_cv2_level(os.environ.get("OPENCV_LOG_LEVEL", "WARNING"))  # OpenCV's own default
        return
    for name, value in QUIET_ENV.items():
        if name not in os.environ:
            os.environ[name] = value
            _set_by_us[name] = value
    _set_cv2_level(os.environ["OPENCV_LOG_LEVEL"])
    for message, category in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


def is_verbose() -> bool:
    return _state["verbose"]


def ort_log_severity() -> int:
    """``SessionOptions.log_severity_level`` for ONNX Runtime sessions: errors only unless --verbose."""
    return ORT_VERBOSE if _state["verbose"] else ORT_QUIET


def _set_cv2_level(level: str) -> None:
    # The variable only counts before OpenCV first logs; an OpenCV already imported (tests, library use)
    # is told directly.
    cv2 = sys.modules.get("cv2")
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    value = getattr(logging, f"LOG_LEVEL_{level.upper()}", None)
    if value is not None:
        logging.setLogLevel(value)  # type: ignore[union-attr]

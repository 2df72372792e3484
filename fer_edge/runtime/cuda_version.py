"""Which CUDA this device has, which Python binding matches it, and why a context failed.

Jetsons have no CUDA minor-version compatibility: a binding built for a newer CUDA than the
board's (cuda-python 12.9 on JetPack 6.1's CUDA 12.6) cannot create a context and fails with
``cudaErrorInsufficientDriver``. ``scripts/jetson_setup.sh`` applies the same rule as
:func:`binding_for_cuda` when it installs one. Nothing here imports a binding.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
from pathlib import Path

# Overridable so tests (and unusual installs) can point at another file.
CUDA_VERSION_JSON_ENV = "FER_EDGE_CUDA_VERSION_JSON"
DEFAULT_CUDA_VERSION_JSON = "/usr/local/cuda/version.json"


def cuda_version_json_path() -> Path:
    return Path(os.environ.get(CUDA_VERSION_JSON_ENV, DEFAULT_CUDA_VERSION_JSON))


def parse_cuda_version_json(text: str) -> str | None:
    """``{"cuda": {"name": "CUDA SDK", "version": "12.6.68"}, ...}`` → ``"12.6"`` (None if not that)."""
    try:
        data = json.loads(text)
        version = str(data["cuda"]["version"])
    except (ValueError, KeyError, TypeError):
        return None
    match = re.match(r"^(\d+)\.(\d+)", version)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def toolkit_cuda_version() -> str | None:
    """The CUDA toolkit installed here (JetPack puts it in /usr/local/cuda), as ``"major.minor"``."""
    try:
        return parse_cuda_version_json(cuda_version_json_path().read_text())
    except OSError:
        return None


def driver_version_string(code: int) -> str:
    """``cudaDriverGetVersion``'s integer (12060) → ``"12.6"``."""
    return f"{code // 1000}.{(code % 1000) // 10}"


def binding_for_cuda(version: str | None) -> str:
    """The pip requirement of the binding that matches CUDA ``version`` ("major.minor")."""
    match = re.match(r"^(\d+)\.(\d+)$", version or "")
    if not match:
        return "the binding for this device's CUDA (scripts/jetson_setup.sh reads it and installs one)"
    major, minor = int(match.group(1)), int(match.group(2))
    if major >= 12:
        return f"pip install 'cuda-python>={major}.{minor},<{major}.{minor + 1}'"
    # cuda-python has no release for CUDA 11.4 (JetPack 5) and its runtime needs a driver at
    # least as new as its own CUDA; pycuda is compiled on the board against the CUDA it has.
    return "pip install pycuda (it builds against /usr/local/cuda)"


def explain_context_failure(reason: str, device_cuda: str | None) -> str:
    """What to do about a binding that could not create a context, from its error text."""
    if "InsufficientDriver" in reason or "code 35)" in reason or "driver version is insufficient" in reason:
        have = f"CUDA {device_cuda}" if device_cuda else "an older CUDA"
        return f"the binding is built for a newer CUDA than this device's ({have}); {binding_for_cuda(device_cuda)}"
    if "NoDevice" in reason or "code 100)" in reason or "no CUDA-capable device" in reason:
        return "no CUDA device is visible to this user: check nvidia-smi or, on a Jetson, membership of the video group"
    if "libcuda" in reason or "cannot open shared object" in reason:
        return "the CUDA driver library (libcuda.so) is missing: install the NVIDIA driver (JetPack has it)"
    return f"check the CUDA install ({binding_for_cuda(device_cuda)}); see docs/jetson.md"


def binding_version(name: str) -> str:
    """The installed version of ``cuda-python`` (or its ``cuda-bindings``) or ``pycuda``; "" if none."""
    for dist in ("cuda-python", "cuda-bindings") if name == "cuda-python" else (name,):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return ""

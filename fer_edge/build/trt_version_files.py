"""Which TensorRT a machine has when its Python bindings cannot be imported (for ``--print-trtexec``).

JetPack installs TensorRT's C++ header and its Debian packages beside the bindings, so either
tells the version: ``NvInferVersion.h`` (``libnvinfer-dev``) and ``dpkg-query`` on ``tensorrt``
or ``libnvinfer-bin`` (which ships trtexec itself). The header's defines come in two forms:
plain numbers up to 10.12 (``#define NV_TENSORRT_MAJOR 10``) and, from 10.13 and in 11.x, names
of other defines (``#define NV_TENSORRT_MAJOR TRT_MAJOR_ENTERPRISE`` with
``#define TRT_MAJOR_ENTERPRISE 11``), as in NVIDIA/TensorRT's include/NvInferVersion.h.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

NVINFER_HEADERS: tuple[Path, ...] = (
    Path("/usr/include/aarch64-linux-gnu/NvInferVersion.h"),  # JetPack, SBSA
    Path("/usr/include/x86_64-linux-gnu/NvInferVersion.h"),  # x86 Debian packages
    Path("/usr/include/NvInferVersion.h"),
)
DPKG_PACKAGES: tuple[str, ...] = ("tensorrt", "libnvinfer-bin")
_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)[ \t]+([^\s/]+)", re.MULTILINE)
_PARTS = ("NV_TENSORRT_MAJOR", "NV_TENSORRT_MINOR", "NV_TENSORRT_PATCH")


def version_from_header(text: str) -> str | None:
    """``"10.3.0"`` from the text of ``NvInferVersion.h``; None when it has no version defines.

    The build number is left out: the one in a header need not be the one of the library that
    came with it, and a sidecar's shorter version matches every build of that release."""
    defines = dict(_DEFINE.findall(text))

    def resolve(name: str) -> str | None:
        value = defines.get(name)
        for _ in range(4):  # a define naming another define, as 10.13+ headers do
            if value is None or value.isdigit():
                break
            value = defines.get(value)
        return value if value is not None and value.isdigit() else None

    parts = [resolve(name) for name in _PARTS]
    if parts[0] is None or parts[1] is None:
        return None
    return ".".join(p for p in parts if p is not None)


def version_from_dpkg(output: str) -> str | None:
    """``"10.3.0.30"`` from dpkg's ``10.3.0.30-1+cuda12.5``; None for an empty or odd version."""
    match = re.match(r"^\s*(?:\d+:)?(\d+\.\d+(?:\.\d+)*)", output)
    return match.group(1) if match else None


def dpkg_version(package: str) -> str | None:
    """The installed version of ``package`` per ``dpkg-query``; None without dpkg or the package."""
    exe = shutil.which("dpkg-query")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "-W", "-f=${Version}", package], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return version_from_dpkg(done.stdout) if done.returncode == 0 else None


def installed_trt_version(
    headers: Sequence[Path] | None = None, packages: Sequence[str] = DPKG_PACKAGES
) -> tuple[str, str] | None:
    """``(version, where it was read)`` from the first header, else the first dpkg package, that
    names one; None when neither does."""
    for header in NVINFER_HEADERS if headers is None else headers:
        try:
            text = header.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        version = version_from_header(text)
        if version is not None:
            return version, str(header)
    for package in packages:
        version = dpkg_version(package)
        if version is not None:
            return version, f"dpkg package {package}"
    return None

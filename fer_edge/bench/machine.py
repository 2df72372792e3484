"""The machine record a result carries: CPU, cores, GPU, OS, package versions, the command, the load."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from fer_edge.core.machine import cpu_flags, cpu_max_mhz, cpu_model, gpu_names, jetson_model, load_average

__all__ = ["cpu_flags", "cpu_model", "machine_info"]  # scripts read the CPU's name and flags from here

PACKAGES = ("fer-edge", "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "torch", "tensorrt", "cuda-python")


def package_versions() -> dict[str, str]:
    from fer_edge import __version__

    versions: dict[str, str] = {"fer-edge": __version__}  # also when run from a checkout
    for name in PACKAGES:
        if name in versions:
            continue
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def command_line(argv: list[str] | None = None) -> str:
    argv = sys.argv if argv is None else argv
    prog = Path(argv[0]).name if argv else "fer-edge"
    if prog in ("__main__.py", "cli.py") or prog.startswith("python"):
        prog = "fer-edge"
    return shlex.join([prog, *argv[1:]])


def machine_info(argv: list[str] | None = None) -> dict[str, Any]:
    mhz = cpu_max_mhz()
    return {
        "load_average": load_average(),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_mhz": round(mhz) if mhz else None,
        "cores": os.cpu_count(),
        "gpu": gpu_names(),
        "jetson": jetson_model(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "command": command_line(argv),
    }

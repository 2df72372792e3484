"""What machine a result was measured on: CPU, cores, GPU, OS, package versions, the command."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from fer_edge.envinfo import parse_cpu_model
from fer_edge.nvidia_smi import query_nvidia_smi

PACKAGES = ("fer-edge", "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "torch", "tensorrt", "cuda-python")


def cpu_model() -> str:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        cpuinfo = ""
    return parse_cpu_model(cpuinfo) or platform.processor() or platform.machine()


# The instruction sets that decide INT8 and FP32 speed on x86 (VNNI: int8 dot products) and Arm.
SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm", "sve")


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("flags", "features")):
                present = set(line.split(":", 1)[1].split())
                return [f for f in SIMD_FLAGS if f in present]
    except OSError:
        pass
    return []


def jetson_model() -> str | None:
    """The board name on a Jetson (device tree), None elsewhere."""
    path = Path("/proc/device-tree/model")
    try:
        text = path.read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return None
    return text if "jetson" in text.lower() or "orin" in text.lower() else None


def gpu_names() -> list[str]:
    names: list[str] = []
    out = query_nvidia_smi("--query-gpu=name,driver_version", "--format=csv,noheader")
    if out:
        names += [ln.strip() for ln in out.splitlines() if ln.strip()]
    board = jetson_model()
    if board and not names:
        names.append(f"{board} (integrated GPU)")
    return names


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


def load_average() -> list[float] | None:
    """1/5/15-minute load: a busy machine explains wide latency percentiles."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info(argv: list[str] | None = None) -> dict[str, Any]:
    return {
        "load_average": load_average(),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "gpu": gpu_names(),
        "jetson": jetson_model(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "command": command_line(argv),
    }

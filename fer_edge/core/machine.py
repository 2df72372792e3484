"""Facts about this machine: CPU (model, SIMD flags, cores, clock), NVIDIA GPUs, Jetson board, memory, load.

The one place that reads ``/proc``, ``/sys`` and ``nvidia-smi``. Parsing is done by pure functions over
file contents, so tests feed them sample strings; the readers return ``None`` (or an empty list) where
a fact is not available here, never raise.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Union

CPUINFO = Path("/proc/cpuinfo")
MEMINFO = Path("/proc/meminfo")
DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
CPU_MAX_FREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")  # kHz

# The instruction sets that decide INT8 and FP32 speed on x86 (VNNI: int8 dot products) and Arm.
SIMD_FLAGS = (
    "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "asimd", "asimddp", "i8mm", "sve"
)


def read_bytes(path: Path) -> Optional[bytes]:
    try:
        return path.read_bytes()
    except OSError:
        return None


def read_text(path: Path) -> str:
    raw = read_bytes(path)
    return raw.decode("utf-8", "replace") if raw else ""


# -- parsers (pure) --------------------------------------------------------------------------------


def parse_cpu_model(cpuinfo: str) -> Optional[str]:
    for key in ("model name", "Hardware", "Model", "cpu model"):
        match = re.search(rf"^{key}\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
        if match:
            return match.group(1).strip()
    return None


def parse_cpu_flags(cpuinfo: str) -> List[str]:
    """Every flag of the first CPU (``flags`` on x86, ``Features`` on Arm), in file order."""
    for line in cpuinfo.splitlines():
        if line.lower().startswith(("flags", "features")) and ":" in line:
            return line.split(":", 1)[1].split()
    return []


def parse_cpu_mhz(cpuinfo: str) -> Optional[float]:
    """The highest ``cpu MHz`` in /proc/cpuinfo (x86; Arm kernels do not print it)."""
    values = [float(m) for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.MULTILINE)]
    return max(values) if values else None


def parse_device_tree_model(raw: Union[bytes, str]) -> Optional[str]:
    """The device-tree model (NUL-terminated in /proc), e.g. ``NVIDIA Jetson AGX Orin Developer Kit``."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = text.replace("\x00", "").strip()
    return text or None


def mem_total_bytes(meminfo: Union[bytes, str, None]) -> Optional[int]:
    """``MemTotal`` of /proc/meminfo, in bytes."""
    if not meminfo:
        return None
    text = meminfo.decode("utf-8", "replace") if isinstance(meminfo, bytes) else meminfo
    match = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def parse_nvidia_smi(text: str) -> List[Dict[str, str]]:
    """Rows of ``nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total``
    ``--format=csv,noheader``."""
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0]:
            row = {"name": parts[0], "compute_capability": parts[1]}
            if len(parts) > 2:
                row["driver"] = parts[2]
            if len(parts) > 3:
                row["memory"] = parts[3]
            gpus.append(row)
    return gpus


# -- readers (this machine) ------------------------------------------------------------------------


def cpu_model() -> str:
    return parse_cpu_model(read_text(CPUINFO)) or platform.processor() or platform.machine()


def cpu_flags(everything: bool = False) -> List[str]:
    """The SIMD flags that matter for inference speed (:data:`SIMD_FLAGS`), or every flag."""
    present = parse_cpu_flags(read_text(CPUINFO))
    return present if everything else [f for f in SIMD_FLAGS if f in present]


def cpu_max_mhz() -> Optional[float]:
    """The cores' top clock: cpufreq's maximum where the kernel has it, else /proc/cpuinfo's ``cpu MHz``."""
    khz = read_text(CPU_MAX_FREQ).strip()
    if khz.isdigit() and int(khz) > 0:
        return int(khz) / 1000.0
    return parse_cpu_mhz(read_text(CPUINFO))


def cpu_cores() -> int:
    """Cores this process may run on (a container's or taskset's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def device_tree_model() -> Optional[str]:
    raw = read_bytes(DEVICE_TREE_MODEL)
    return parse_device_tree_model(raw) if raw else None


def jetson_model() -> Optional[str]:
    """The board name on a Jetson (device tree), None elsewhere."""
    model = device_tree_model()
    return model if model and ("jetson" in model.lower() or "orin" in model.lower()) else None


def nvidia_gpu_present() -> bool:
    """A cheap check (no CUDA context): a discrete GPU's device node or a Jetson's GPU node."""
    return Path("/dev/nvidia0").exists() or Path("/dev/nvhost-ctrl-gpu").exists()


def query_nvidia_smi(*args: str) -> Optional[str]:
    """The standard output of ``nvidia-smi ARGS``, or ``None`` (no NVIDIA driver, error, time-out)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def gpu_names() -> List[str]:
    """``name, driver`` per NVIDIA GPU from nvidia-smi; on a Jetson (no nvidia-smi) the board's GPU."""
    out = query_nvidia_smi("--query-gpu=name,driver_version", "--format=csv,noheader")
    names = [ln.strip() for ln in out.splitlines() if ln.strip()] if out else []
    board = jetson_model()
    if board and not names:
        names.append(f"{board} (integrated GPU)")
    return names


def load_average() -> Optional[List[float]]:
    """1/5/15-minute load: a busy machine explains wide latency percentiles."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None

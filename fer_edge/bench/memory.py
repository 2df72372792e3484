"""Process memory figures: resident set now and its high-water mark, GPU memory where there is one.

Read inside the benchmark's child process, so each row's peak is its own (see isolation.py).
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

from fer_edge.core.machine import query_nvidia_smi

_STATUS = Path("/proc/self/status")


def _status_kb(key: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024.0


def peak_rss_mb() -> float:
    """The process's resident-set high-water mark (VmHWM on Linux, ru_maxrss elsewhere)."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024.0
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is kilobytes on Linux and bytes on macOS.
    return maxrss / (1024.0 * 1024.0) if sys.platform == "darwin" else maxrss / 1024.0


def gpu_memory_mb(pid: int | None = None) -> float | None:
    """GPU memory this process holds on a discrete NVIDIA GPU (``nvidia-smi``), or None.

    Jetsons have no per-process figure here (CPU and GPU share one memory): their rows report RSS.
    """
    out = query_nvidia_smi("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits")
    if out is None:
        return None
    pid = os.getpid() if pid is None else pid
    total = 0.0
    found = False
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid):
            try:
                total += float(parts[1])
                found = True
            except ValueError:
                continue
    return total if found else None

"""One way to ask ``nvidia-smi``: where it is absent or fails, the answer is ``None``."""

from __future__ import annotations

import shutil
import subprocess


def query_nvidia_smi(*args: str) -> str | None:
    """The standard output of ``nvidia-smi ARGS``, or ``None`` (no NVIDIA driver, error, time-out)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None

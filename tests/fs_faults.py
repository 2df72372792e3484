"""Real file-system faults for tests: a tiny tmpfs (full disk) and a read-only mount.

These machines run tests as root, where ``chmod`` does not stop a write, so the faults are made
with ``mount``. Tests skip, with the reason, where mounting is not permitted.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True, timeout=30)


@contextlib.contextmanager
def tmpfs(where: Path, size: str = "64k") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (created), unmounted afterwards."""
    where.mkdir(parents=True, exist_ok=True)
    try:
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where))
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount permission): {str(detail).strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def remount_read_only(where: Path) -> None:
    _mount("-o", "remount,ro", str(where))


def fill(where: Path) -> None:
    """Fill the file system at ``where`` to the last byte."""
    with open(where / "filler", "wb", buffering=0) as f:
        for chunk in (4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * chunk)

"""The temporary folder a quantisation works in: per process, cleaned up after a kill, and a full
temporary disk reported as such (not as a broken model).

Its name carries the process id (``fer-edge-quant-<pid>-*``, as the atomic writer's temporary
files do), so the next run removes what a SIGKILLed one left behind without touching a folder that a
running quantisation still uses.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fer_edge.core.atomic import os_error_reason, pid_alive
from fer_edge.core.errors import FerEdgeError

PREFIX = "fer-edge-quant-"
_OWNED = re.compile(r"^" + re.escape(PREFIX) + r"(\d+)-")
_FULL = (errno.ENOSPC, errno.EDQUOT)
# After a failed write, less than this left means the failure was the full disk, whatever the
# library made of it (ONNX Runtime reports a short write as a bad model).
NEARLY_FULL_BYTES = 1 << 20
COPIES = 4  # model-sized files a quantisation holds at once, at most


def remove_stale_workspaces(root: str | Path | None = None) -> list[Path]:
    """Delete the quantisation folders in ``root`` (the temporary folder) whose process is gone."""
    root = Path(root or tempfile.gettempdir())
    removed: list[Path] = []
    with contextlib.suppress(OSError):
        for entry in root.iterdir():
            match = _OWNED.match(entry.name)
            if not match or not entry.is_dir() or entry.is_symlink():
                continue
            pid = int(match.group(1))
            if pid == os.getpid() or pid_alive(pid):
                continue
            shutil.rmtree(entry, ignore_errors=True)
            if not entry.exists():
                removed.append(entry)
    return removed


def _caused_by_full_disk(exc: BaseException, folder: Path) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _FULL:
            return True
        if "No space left on device" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    try:
        return shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
    except OSError:
        return False


def _full_error(folder: Path) -> FerEdgeError:
    return FerEdgeError(
        "the temporary folder is full (quantisation writes a few copies of the model there); free space "
        "or point TMPDIR at a folder with room; nothing was written",
        path=folder.parent,
    )


def check_temp_space(model: Path) -> None:
    """Before any work: refuse a temporary folder without room for the copies a quantisation writes
    (the pre-processed graph, one candidate per attempt: a few times the model's size)."""
    root = Path(tempfile.gettempdir())
    try:
        free = shutil.disk_usage(root).free
        need = COPIES * model.stat().st_size + NEARLY_FULL_BYTES
    except OSError:
        return  # the work itself will say what is wrong
    if free < need:
        raise FerEdgeError(
            f"the temporary folder is full ({free / 1e6:.1f} MB free, quantising {model.name} needs about "
            f"{need / 1e6:.0f} MB); free space or point TMPDIR at a folder with room; nothing was written",
            path=root,
        )


@contextlib.contextmanager
def quantize_workspace() -> Iterator[Path]:
    """A fresh per-process folder under the temporary folder, removed afterwards."""
    remove_stale_workspaces()
    try:
        folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    except OSError as exc:
        root = Path(tempfile.gettempdir())
        if exc.errno in _FULL:
            raise _full_error(root / "x") from None
        raise FerEdgeError(f"cannot create a temporary folder: {os_error_reason(exc)}", path=root) from None
    try:
        yield folder
    except Exception as exc:
        if _caused_by_full_disk(exc, folder):
            raise _full_error(folder) from None
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)

"""Write-then-rename, so an interrupted command never leaves a half-written artifact.

The temporary file sits beside the target as ``.<name>.<pid>.<random>.tmp``; the data is
fsynced before the rename and the directory after it, so a power cut leaves the old file or
the new one, never an empty one. The pid in the name lets the next write of the same target
remove what a killed process left behind without touching a live process's file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fer_edge.core.errors import FerEdgeError

# Errors a user can act on (free space, another disk); said in words beside the system's text.
_HINTS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is mounted read-only",
    errno.EACCES: "no permission to write there",
    errno.EPERM: "no permission to write there",
    errno.EISDIR: "a directory is in the way",
    errno.ENOTDIR: "a file is in the way of a directory in the path",
}


def os_error_reason(exc: OSError) -> str:
    """``No space left on device (the disk is full)``: the system's words plus what they mean."""
    text = exc.strerror or str(exc) or type(exc).__name__
    hint = _HINTS.get(exc.errno or 0)
    return f"{text} ({hint})" if hint else text


def _temp_pattern(target: Path) -> re.Pattern[str]:
    return re.compile(r"^\." + re.escape(target.name) + r"\.(\d+)\.[^.]+\.tmp$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


pid_alive = _pid_alive  # the same test for other per-process temporaries (quantize's folder)


def remove_stale_temps(target: str | Path) -> list[Path]:
    """Delete temporary files of ``target`` whose writing process is gone; return what went."""
    target = Path(target)
    pattern = _temp_pattern(target)
    removed: list[Path] = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if not match:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        try:
            entry.unlink()
        except OSError:
            continue
        removed.append(entry)
    return removed


def _fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems cannot fsync a directory; the rename is still atomic there.
        if not directory or exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.

    An ``OSError`` while writing (a full disk, a read-only mount) becomes one
    :class:`FerEdgeError` that names ``target``, gives the reason in words and says that the
    previous file (if any) is untouched.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(target)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise write_error(target, exc) from None
    tmp = Path(name)
    try:
        try:
            yield tmp
            # mkstemp makes the file private (0600); give it the mode a plain open() would have.
            os.chmod(tmp, 0o666 & ~_umask())
            _fsync_path(tmp)
            os.replace(tmp, target)
            _fsync_path(target.parent, directory=True)
        except OSError as exc:
            raise write_error(target, exc) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_error(target: Path, exc: OSError) -> FerEdgeError:
    kept = "the previous file is unchanged" if target.is_file() else "nothing was written"
    return FerEdgeError(f"cannot write: {os_error_reason(exc)}; {kept}", path=target)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | Path, text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))

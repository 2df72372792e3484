"""Checks every command runs on its file options before doing any work.

An output must never be one of the command's inputs (the same path after resolving links, or
a hard link to the same file), two outputs must not be one file, and each output must be
writable: its folder exists or can be created, is a folder, and accepts a new file. Root
ignores permission bits, so writability is tested by creating (and removing) a probe file, not
by ``os.access``.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

from fer_edge.core.atomic import os_error_reason, remove_stale_temps
from fer_edge.core.errors import FerEdgeError

PathLike = Union[str, Path]
# option name (as the user typed it, e.g. "--out" or "CHECKPOINT") -> path, or None when unset
Named = Dict[str, Optional[PathLike]]


def _key(path: Path) -> Tuple[Path, Optional[Tuple[int, int]]]:
    resolved = path.expanduser().resolve()
    try:
        st = resolved.stat()
    except OSError:
        return resolved, None
    return resolved, (st.st_dev, st.st_ino)


def same_file(a: PathLike, b: PathLike) -> bool:
    """True when ``a`` and ``b`` name one file: equal after resolving links, or hard links."""
    ka, kb = _key(Path(a)), _key(Path(b))
    return ka[0] == kb[0] or (ka[1] is not None and ka[1] == kb[1])


def _items(named: Named) -> list[tuple[str, Path]]:
    return [(name, Path(p)) for name, p in named.items() if p is not None and str(p) != ""]


SQLITE_MAGIC = b"SQLite format 3\x00"
# A SQLite database is more than one file: overwriting its write-ahead log or journal destroys it.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def _is_sqlite(path: Path) -> bool:
    try:
        if not path.is_file():
            return False
        with path.open("rb") as f:
            return f.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def companions(named: Named, databases: Sequence[str] = ()) -> list[tuple[str, Path]]:
    """The ``-wal``/``-shm``/``-journal`` files of each path that is a SQLite database (named in
    ``databases``, or found to be one), each named after its option."""
    found = []
    for name, path in _items(named):
        if name in databases or _is_sqlite(path):
            found += [(f"{name}'s {suffix} file", Path(f"{path}{suffix}")) for suffix in SQLITE_COMPANIONS]
    return found


def refuse_output_overlap(inputs: Named, outputs: Named, databases: Sequence[str] = ()) -> None:
    """One-line error when an output is an input (a SQLite input's companion files included), or two
    outputs are one file (an output database's companions included)."""
    outs = _items(outputs)
    ins = _items(inputs) + companions(inputs, databases) + companions(outputs, databases)
    for out_name, out in outs:
        for in_name, src in ins:
            if same_file(out, src):
                raise FerEdgeError(
                    f"{out_name} {out} is the input {in_name} {src}; an output never overwrites an input, "
                    f"choose another {out_name} path"
                )
    for comp_name, comp in companions(outputs, databases):  # SQLite writes these beside an output database
        for in_name, src in _items(inputs):
            if same_file(comp, src):
                raise FerEdgeError(f"{in_name} {src} is {comp_name}, which SQLite overwrites; give it another path")
    for i, (name_a, a) in enumerate(outs):
        for name_b, b in outs[i + 1 :]:
            if same_file(a, b):
                raise FerEdgeError(f"{name_a} and {name_b} are the same file {a}; give each its own path")


def check_writable(name: str, path: PathLike, *, directory: bool = False) -> None:
    """Refuse, in one line, an output that cannot be written.

    ``directory``: the output is a folder that files are written into (``train --out``). Missing
    folders are not created here (a refused command leaves nothing behind); the nearest existing
    one must accept a new entry, and the writer creates the rest.
    """
    path = Path(path).expanduser()
    if directory:
        if path.exists() and not path.is_dir():
            raise FerEdgeError(f"{name} must be a folder, but this is a file", path=path)
        folder = path
    else:
        if path.is_dir():
            raise FerEdgeError(f"{name} is a folder; give a file path", path=path)
        folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise FerEdgeError(f"cannot create the folder for {name}: {existing} is a file, not a folder", path=path)
    if existing == folder and not directory:
        remove_stale_temps(path)
    try:
        fd, probe = tempfile.mkstemp(prefix=f".fer-edge-probe.{os.getpid()}.", suffix=".tmp", dir=existing)
    except OSError as exc:
        what = "cannot be written" if existing == folder else f"cannot be created in {existing}"
        raise FerEdgeError(f"{name} {what}: {os_error_reason(exc)}", path=path) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def guard_outputs(inputs: Named, outputs: Named, folders: Sequence[str] = (), databases: Sequence[str] = ()) -> None:
    """Everything a command checks about its file options before any work.

    ``outputs`` maps option names to output paths; those named in ``folders`` are folders, those
    in ``databases`` SQLite files (also when they do not exist yet; existing ones are recognised).
    """
    refuse_output_overlap(inputs, outputs, databases)
    for name, path in _items(outputs):
        check_writable(name, path, directory=name in folders)


def inside(path: PathLike, folder: PathLike) -> bool:
    """True when ``path`` (after resolving links) lies in ``folder``."""
    p = Path(path).expanduser().resolve()
    f = Path(folder).expanduser().resolve()
    return p == f or f in p.parents


def require_file(path: PathLike, what: str = "file", folder_ok: bool = False, article: str = "a") -> Path:
    """``path`` when it is a regular file (or a folder, with ``folder_ok``); otherwise one line that
    says what is there instead: not found, a folder, a device, a named pipe or a socket.

    A device or a pipe read as a file never ends (``/dev/zero``) or blocks (a FIFO): refused unopened.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FerEdgeError(f"{what} not found", path=path) from None
    except OSError as exc:
        raise FerEdgeError(f"cannot read the {what}: {os_error_reason(exc)}", path=path) from None
    if stat.S_ISREG(mode) or (folder_ok and stat.S_ISDIR(mode)):
        return path
    kind = (
        "a folder" if stat.S_ISDIR(mode)
        else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "a named pipe" if stat.S_ISFIFO(mode)
        else "a socket" if stat.S_ISSOCK(mode)
        else "not a regular file"
    )
    raise FerEdgeError(f"is {kind}, not {article} {what}" if kind.startswith("a ") else
                       f"{kind}; expected {article} {what}", path=path)

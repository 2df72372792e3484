"""A file's SHA-256 and fer-edge's cache folder: the two file facts several layers need."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Union

CHUNK = 1 << 22  # 4 MiB: a data file or an engine is hashed without being read whole


def file_sha256(path: Union[str, Path], chunk: int = CHUNK) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """``$FER_EDGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/fer-edge``, else ``~/.cache/fer-edge`` (not created)."""
    root = os.environ.get("FER_EDGE_CACHE_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fer-edge"

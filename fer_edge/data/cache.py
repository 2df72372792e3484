"""Parsed-data cache keyed by the content hash of the source file.

Parsing the full CSV takes seconds; loading the cached arrays takes a fraction of one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fer_edge.atomic import atomic_path

CACHE_VERSION = 1


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_dir() -> Path:
    root = os.environ.get("FER_EDGE_CACHE_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fer-edge"


def cached_arrays(key: str, build: Callable[[], dict[str, np.ndarray]], enabled: bool = True) -> dict[str, np.ndarray]:
    """Return the arrays cached under ``key``, building and storing them on a miss.

    A cache that cannot be written (read-only home) is skipped silently: it only saves time.
    """
    if not enabled:
        return build()
    path = cache_dir() / f"{key}.v{CACHE_VERSION}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
    arrays = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
    except OSError:
        pass
    return arrays

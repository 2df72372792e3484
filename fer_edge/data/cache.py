"""Parsed-data cache keyed by the content hash of the source file.

Parsing the full CSV takes seconds; loading the cached arrays takes a fraction of one.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Dict

import numpy as np

from fer_edge.core.atomic import atomic_path
from fer_edge.core.errors import FerEdgeError, first_line
from fer_edge.core.files import cache_dir

CACHE_VERSION = 1


Check = Callable[[Dict[str, np.ndarray]], None]


def _read_cache(path: Path, keys: Sequence[str], check: Check | None = None) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None (with one line on stderr) for a damaged cache, which is removed.

    ``check`` raises ``ValueError`` for arrays that read but cannot be what was cached (wrong shape,
    labels out of range): such a cache is discarded like an unreadable one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        missing = [k for k in keys if k not in arrays]
        if missing:
            raise ValueError(f"no {missing[0]!r} array")
        if len({len(a) for a in arrays.values()}) > 1:
            raise ValueError("arrays of different lengths")
        if check is not None:
            check(arrays)
        return arrays
    # A 0-byte or cut-short file raises EOFError, zipfile.BadZipFile, zlib.error or ValueError.
    except Exception as exc:
        reason = first_line(exc)
        print(f"note: discarded the damaged parse cache {path} ({reason}); parsing the data again",
              file=sys.stderr, flush=True)
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def cached_arrays(
    key: str,
    build: Callable[[], dict[str, np.ndarray]],
    enabled: bool = True,
    keys: Sequence[str] = (),
    check: Check | None = None,
) -> dict[str, np.ndarray]:
    """Return the arrays cached under ``key``, building and storing them on a miss.

    ``keys``: the arrays a valid cache holds. An empty, truncated or otherwise damaged cache file
    is discarded (said once on stderr) and rebuilt. A cache that cannot be written (read-only
    home, full disk) is skipped silently: it only saves time.
    """
    if not enabled:
        return build()
    path = cache_dir() / f"{key}.v{CACHE_VERSION}.npz"
    if path.is_file():
        cached = _read_cache(path, keys, check)
        if cached is not None:
            return cached
    arrays = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
    except (OSError, FerEdgeError):
        pass
    return arrays

"""Where the YuNet file comes from: fer-edge's cache dir, filled by ``fer-edge fetch-detector``.

YuNet is third-party weights (MIT, OpenCV Zoo) and is not shipped. The file fer-edge pins is
OpenCV Zoo's re-export of the 2023mar network with a dynamic HxW input (``2026may``: the same
weights; the original 2023mar ONNX declares a fixed 640x640 input that ONNX Runtime enforces).
It is fetched from a pinned OpenCV Zoo commit and accepted only with the SHA-256 below.
"""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from fer_edge.core.atomic import atomic_path
from fer_edge.core.errors import FerEdgeError
from fer_edge.core.files import cache_dir, file_sha256
from fer_edge.core.paths import require_file

YUNET_FILE = "face_detection_yunet_2026may.onnx"
YUNET_COMMIT = "26cc381e4d2594bb9f47a26eb8fd96c94a13660d"
YUNET_URL = (
    f"https://media.githubusercontent.com/media/opencv/opencv_zoo/{YUNET_COMMIT}/models/"
    f"face_detection_yunet/{YUNET_FILE}"
)
YUNET_SHA256 = "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"
YUNET_BYTES = 229_738
# Measured by scripts/measure_crop_rule.py on 800 PrivateTest faces pasted into 640x480 frames
# (benchmarks/camera/crop_rule_*.json): detection rates 0.959 (YuNet) and 0.736 (Haar).
HAAR_HINT = (
    "no YuNet face detector found ({where}): using OpenCV's Haar cascade, which misses about 1 face "
    "in 4 (it found 74% of 800 test faces, YuNet 96%); run `fer-edge fetch-detector` once (230 KB) "
    "or pass --detector-model"
)


def cached_yunet() -> Path:
    """``$FER_EDGE_CACHE_DIR`` (or ``~/.cache/fer-edge``) / the pinned YuNet file name."""
    return cache_dir() / YUNET_FILE


def find_detector(explicit: Path | None) -> Path | None:
    """``--detector-model`` when given, else the cached YuNet if it is there, else None (Haar)."""
    if explicit is not None:
        return explicit
    cached = cached_yunet()
    return cached if cached.is_file() else None


def _copy_checked(source: IO[bytes], target: Path, what: str) -> Path:
    """Stream ``source`` into ``target`` atomically, only if its SHA-256 is the pinned one."""
    digest = hashlib.sha256()
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as out:
            while True:
                block = source.read(1 << 16)
                if not block:
                    break
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != YUNET_SHA256:
            raise FerEdgeError(
                f"SHA-256 {digest.hexdigest()} is not the pinned YuNet's {YUNET_SHA256}; the file was "
                f"not installed. Download {YUNET_URL} by hand, check it, and pass it as "
                "--from-file (or to run as --detector-model)",
                path=what,
            )
    return target


def install_yunet(
    target: Path | None = None,
    from_file: Path | None = None,
    opener: Callable[[str], Any] = urllib.request.urlopen,
) -> Path:
    """Put the pinned YuNet into ``target`` (default: the cache dir), from ``from_file`` or the
    OpenCV Zoo URL; nothing is written unless the SHA-256 matches."""
    target = target or cached_yunet()
    if target.is_file() and file_sha256(target) == YUNET_SHA256:
        return target
    if from_file is not None:
        require_file(from_file)
        if from_file.resolve() == target.resolve():
            raise FerEdgeError("--from-file is the target itself; give another copy", path=from_file)
        with open(from_file, "rb") as f:
            return _copy_checked(f, target, str(from_file))
    try:
        with opener(YUNET_URL) as response:
            return _copy_checked(response, target, YUNET_URL)
    except OSError as exc:  # URLError, timeouts, DNS: a one-line reason, and what to do
        reason = getattr(exc, "reason", None) or exc
        raise FerEdgeError(
            f"cannot download YuNet ({reason}); on a machine without internet, copy {YUNET_FILE} over "
            f"and run fetch-detector --from-file {YUNET_FILE}",
            path=YUNET_URL,
        ) from None

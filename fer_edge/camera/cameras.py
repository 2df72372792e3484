"""Which cameras one ``fer-edge run`` serves: ``--source URL`` (one camera, named ``cam0``),
``--source NAME=URL`` repeated, or ``--cameras cameras.toml``::

    [[camera]]
    name = "entrance"
    source = "rtsp://cam1.local/stream"
    width = 640            # optional: capture size and rate (camera sources)
    height = 480
    fps = 30
    window = 60            # optional: seconds per mood-log window (default: --window)
    zones = [              # optional: areas where faces are never classified (frame pixels)
      {rect = [0, 300, 200, 480]},
      {polygon = [[400, 0], [640, 0], [640, 200]]},
    ]

Every mistake is a one-line error naming the file (or the option) and the camera, before any
model loads or camera opens.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from fer_edge.camera.sources import SourceSpec, parse_source
from fer_edge.camera.zones import Zone, check_zones, parse_zone
from fer_edge.core.errors import FerEdgeError

DEFAULT_NAME = "cam0"
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
CAMERA_KEYS = ("name", "source", "width", "height", "fps", "window", "zones")


@dataclass(frozen=True)
class CameraSpec:
    name: str
    source: SourceSpec
    window_s: Optional[float] = None  # None: the run's --window
    zones: Tuple[Zone, ...] = ()


def split_named(text: str) -> Tuple[Optional[str], str]:
    """``entrance=rtsp://...`` -> (``entrance``, ``rtsp://...``); a bare source has no name. A URL's
    query (``?a=b``) or a file whose name holds ``=`` is not a name."""
    head, sep, tail = text.partition("=")
    if not sep or not NAME.fullmatch(head) or Path(text).is_file():
        return None, text
    return head, tail


def cameras_from_sources(
    sources: Sequence[str], width: Optional[int], height: Optional[int], fps: Optional[float]
) -> List[CameraSpec]:
    """The cameras of ``--source`` given once or more."""
    named = [split_named(s) for s in sources]
    if len(named) > 1 and any(name is None for name, _ in named):
        raise FerEdgeError("--source: with several cameras each needs a name, --source NAME=URL")
    cameras = [
        CameraSpec(name or DEFAULT_NAME, parse_source(url, width, height, fps)) for name, url in named
    ]
    check_unique([c.name for c in cameras], "--source")
    return cameras


def check_unique(names: Sequence[str], where: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise FerEdgeError(f"{where}: camera name {name!r} is given twice")
        seen.add(name)


def load_toml(path: Path) -> Dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.8 / 3.10 (JetPack)
        import tomli as tomllib
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise FerEdgeError("cameras file not found", path=path) from None
    except OSError as exc:
        raise FerEdgeError(f"cannot read the cameras file ({exc.strerror or exc})", path=path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FerEdgeError(f"not a TOML cameras file ({exc})", path=path) from None


def load_cameras(path: Path, defaults: Optional[Dict[str, Any]] = None) -> List[CameraSpec]:
    """The cameras of a cameras file (``[[camera]]`` tables), checked; ``defaults`` (``width``,
    ``height``, ``fps`` from the command line) apply where a camera does not say."""
    data = load_toml(path)
    unknown = sorted(set(data) - {"camera"})
    if unknown:
        raise FerEdgeError(f"unknown key {unknown[0]!r} (a cameras file has [[camera]] tables)", path=path)
    tables = data.get("camera")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise FerEdgeError("no cameras: add a [[camera]] table with name and source", path=path)
    given = {k: v for k, v in (defaults or {}).items() if v is not None}
    cameras = [_camera({**given, **table}, i, path) for i, table in enumerate(tables, 1)]
    check_unique([c.name for c in cameras], str(path))
    return cameras


def _camera(table: Dict[str, Any], index: int, path: Path) -> CameraSpec:
    where = f"{path}: camera {table.get('name', index)!r}" if "name" in table else f"{path}: camera {index}"
    unknown = [k for k in table if k not in CAMERA_KEYS]
    if unknown:
        raise FerEdgeError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(CAMERA_KEYS)})")
    for key in ("name", "source"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise FerEdgeError(f"{where}: {key} is required (a string)")
    name = table["name"]
    if not NAME.fullmatch(name):
        raise FerEdgeError(f"{where}: name must start with a letter and hold only letters, digits, '.', '_', "
                           "'-' (at most 64)")
    width, height = (_number(table, k, where, whole=True) for k in ("width", "height"))
    fps, window = (_number(table, k, where) for k in ("fps", "window"))
    zones_value = table.get("zones", [])
    if not isinstance(zones_value, list):
        raise FerEdgeError(f"{where}: zones must be a list of {{rect = ...}} or {{polygon = ...}}")
    zones = tuple(parse_zone(z, where) for z in zones_value)
    if width and height:
        check_zones(zones, int(width), int(height), where)
    try:
        source = parse_source(table["source"], _int(width), _int(height), fps)
    except FerEdgeError as exc:
        raise FerEdgeError(f"{where}: {exc}") from None
    return CameraSpec(name, source, window, zones)


def _number(table: Dict[str, Any], key: str, where: str, whole: bool = False) -> Optional[float]:
    value = table.get(key)
    if value is None:
        return None
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        kind = "a whole number" if whole else "a number"
        raise FerEdgeError(f"{where}: {key} must be {kind} above 0, got {value!r}")
    if key == "window" and value < 0.1:
        raise FerEdgeError(f"{where}: window must be at least 0.1 s, got {value!r}")
    return float(value)


def _int(value: Optional[float]) -> Optional[int]:
    return None if value is None else int(value)


def resolve_cameras(
    sources: Sequence[str],
    cameras_file: Optional[Path],
    width: Optional[int],
    height: Optional[int],
    fps: Optional[float],
) -> List[CameraSpec]:
    """The cameras of a run: ``--cameras`` or ``--source`` (one of them)."""
    if cameras_file is not None:
        if sources:
            raise FerEdgeError("--cameras and --source: give one of them (the cameras file names every source)")
        return load_cameras(cameras_file, {"width": width, "height": height, "fps": fps})
    if not sources:
        raise FerEdgeError("--source or --cameras is required (or FER_EDGE_SOURCE / FER_EDGE_CAMERAS)")
    return cameras_from_sources(sources, width, height, fps)

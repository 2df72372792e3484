"""The YuNet detector as a TensorRT engine: its HxW optimisation profile, built from the camera's
resolution, and the check that a camera's frames fit it (pure, except :func:`build_detector_engine`).

YuNet's input is ``[1, 3, H, W]`` with H and W multiples of 32 (frames are padded up). A camera
gives one resolution, so the default profile is static at the padded camera size, which is the
fastest engine; ``min:opt:max`` sizes make a dynamic one (several cameras, or --detect-width).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fer_edge.core.errors import FerEdgeError

DETECTOR_KIND = "yunet-detector"  # the sidecar's dataset field marks a detector engine
SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
MAX_SIDE = 4096


def _padded(size: tuple[int, int]) -> tuple[int, int]:
    from fer_edge.runtime.detector_yunet import padded_size

    return padded_size(*size)


@dataclass(frozen=True)
class DetectorProfile:
    """Padded (W, H) input sizes the engine accepts: every W and H between min and max."""

    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]

    def shapes(self) -> dict[str, list[int]]:
        """The sidecar's form: ``{"min": [1, 3, H, W], ...}``."""
        return {k: [1, 3, s[1], s[0]] for k, s in (("min", self.min), ("opt", self.opt), ("max", self.max))}

    def accepts(self, width: int, height: int) -> bool:
        return self.min[0] <= width <= self.max[0] and self.min[1] <= height <= self.max[1]

    def __str__(self) -> str:
        return ":".join(f"{w}x{h}" for w, h in (self.min, self.opt, self.max))


def parse_detector_size(text: str) -> DetectorProfile:
    """``"640x480"`` (static, padded to 640x480) or ``"320x240:640x480:1280x720"`` (min:opt:max)."""
    parts = text.split(":")
    if len(parts) == 1:
        parts = parts * 3
    sizes = []
    for part in parts if len(parts) == 3 else []:
        match = SIZE_RE.match(part)
        if not match:
            break
        w, h = int(match.group(1)), int(match.group(2))
        if not (16 <= w <= MAX_SIDE and 16 <= h <= MAX_SIDE):
            raise FerEdgeError(f"--detector {text!r}: sides must be 16..{MAX_SIDE} pixels")
        sizes.append(_padded((w, h)))
    if len(sizes) != 3:
        raise FerEdgeError(
            f"--detector {text!r}: give the camera's resolution WIDTHxHEIGHT (e.g. 640x480 or 1280x720), "
            "or min:opt:max sizes (e.g. 320x240:640x480:1280x720)"
        )
    low, opt, high = sizes
    if not (low[0] <= opt[0] <= high[0] and low[1] <= opt[1] <= high[1]):
        raise FerEdgeError(f"--detector {text!r}: needs min <= opt <= max in both width and height")
    return DetectorProfile(low, opt, high)


def profile_from_sidecar(shapes: dict[str, list[int]], path: Path | str) -> DetectorProfile:
    try:
        pick = {k: (int(shapes[k][3]), int(shapes[k][2])) for k in ("min", "opt", "max")}
    except (KeyError, IndexError, TypeError, ValueError):
        raise FerEdgeError(f"sidecar profile {shapes!r} is not a detector's [1, 3, H, W]", path=path) from None
    return DetectorProfile(pick["min"], pick["opt"], pick["max"])


def check_frame_size(profile: DetectorProfile, width: int, height: int, path: Path | str) -> None:
    """A camera whose (padded) frames fall outside the profile: one line with the rebuild command."""
    if profile.accepts(width, height):
        return
    raise FerEdgeError(
        f"the camera's frames pad to {width}x{height} but this detector engine takes {profile} "
        f"(min:opt:max); rebuild it for the camera: fer-edge build-engine YUNET.onnx --detector "
        f"{width}x{height} --out {Path(path).name}, or shrink frames with --detect-width",
        path=path,
    )

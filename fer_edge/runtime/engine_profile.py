"""The dynamic-batch optimisation profile, from ``--batch min:opt:max`` (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from fer_edge.core.errors import FerEdgeError

IMAGE_SHAPE: tuple[int, int, int] = (1, 48, 48)
DEFAULT_BATCH = "1:8:32"
MAX_BATCH = 4096


@dataclass(frozen=True)
class BatchProfile:
    min: int
    opt: int
    max: int

    @property
    def is_static(self) -> bool:
        return self.min == self.opt == self.max

    def shape(self, batch: int) -> tuple[int, int, int, int]:
        return (batch, *IMAGE_SHAPE)

    def shapes(self) -> dict[str, list[int]]:
        """``{"min": [1, 1, 48, 48], "opt": [...], "max": [...]}`` (the sidecar's form)."""
        return {"min": list(self.shape(self.min)), "opt": list(self.shape(self.opt)),
                "max": list(self.shape(self.max))}

    def __str__(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}"


def parse_batch(text: str) -> BatchProfile:
    """``"1:8:32"`` → BatchProfile; ``"8"`` means the static profile 8:8:8.

    Refuses non-integers, values < 1, values above 4096 and min <= opt <= max violations.
    """
    parts = text.strip().split(":")
    if len(parts) == 1:
        parts = parts * 3
    if len(parts) != 3:
        raise FerEdgeError(f"--batch {text!r}: expected min:opt:max, e.g. {DEFAULT_BATCH}, or one number")
    try:
        low, opt, high = (int(p) for p in parts)
    except ValueError:
        raise FerEdgeError(
            f"--batch {text!r}: min:opt:max must be whole numbers, e.g. {DEFAULT_BATCH}"
        ) from None
    if min(low, opt, high) < 1:
        raise FerEdgeError(f"--batch {text!r}: batch sizes must be at least 1")
    if high > MAX_BATCH:
        raise FerEdgeError(f"--batch {text!r}: max batch {high} is above {MAX_BATCH}")
    if not low <= opt <= high:
        raise FerEdgeError(f"--batch {text!r}: needs min <= opt <= max")
    return BatchProfile(low, opt, high)


def profile_from_shapes(shapes: dict[str, list[int]]) -> BatchProfile:
    """The inverse of :meth:`BatchProfile.shapes` (for a sidecar)."""
    try:
        return BatchProfile(int(shapes["min"][0]), int(shapes["opt"][0]), int(shapes["max"][0]))
    except (KeyError, IndexError, TypeError, ValueError):
        raise FerEdgeError(f"malformed profile shapes {shapes!r}") from None


def chunks_for(batch: int, profile: BatchProfile) -> list[tuple[int, int, int]]:
    """Split ``batch`` rows into runs the engine accepts: ``(start, stop, run_batch)``.

    Runs are at most ``profile.max`` rows; a run shorter than ``profile.min`` (a static engine)
    is padded up to ``run_batch = profile.min`` rows.
    """
    runs = []
    for start in range(0, batch, profile.max):
        stop = min(start + profile.max, batch)
        runs.append((start, stop, max(stop - start, profile.min)))
    return runs

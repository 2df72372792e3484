"""Per-stage latency bookkeeping (capture, detect, track, classify, log, other) and the periodic FPS line."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

STAGES: tuple[str, ...] = ("capture", "detect", "track", "classify", "log", "other")


@dataclass
class StageTimes:
    """Sums of milliseconds per stage over some frames; ``mean_ms()`` per frame."""

    frames: int = 0
    faces: int = 0
    detector_runs: int = 0
    seconds: float = 0.0
    ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def add(self, stage_ms: dict[str, float], faces: int, seconds: float, detected: bool = True) -> None:
        self.frames += 1
        self.faces += faces
        self.detector_runs += int(detected)
        self.seconds += seconds
        for k, v in stage_ms.items():
            self.ms[k] += v

    def mean_ms(self) -> dict[str, float]:
        return {k: v / self.frames if self.frames else 0.0 for k, v in self.ms.items()}

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        means = self.mean_ms()
        stages = " | ".join(f"{k} {means[k]:.1f} ms" for k in STAGES)
        per_frame = self.faces / self.frames if self.frames else 0.0
        return (
            f"{self.frames} frames | {self.fps:.1f} fps | {stages} | {per_frame:.2f} faces/frame | "
            f"detector on {self.detector_runs}"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "frames": self.frames,
            "faces": self.faces,
            "detector_runs": self.detector_runs,
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 2),
            "mean_ms": {k: round(v, 3) for k, v in self.mean_ms().items()},
        }


class Stopwatch:
    """Laps in milliseconds between successive ``lap()`` calls."""

    def __init__(self) -> None:
        self._t = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        ms = (now - self._t) * 1000.0
        self._t = now
        return ms

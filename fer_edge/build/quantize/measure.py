"""Measuring a model on the CPU: top-1 predictions, batch-1 latency, and the quantisation report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.model.onnx_contract import INPUT_NAME, OUTPUT_NAME


def session(path: str | Path, threads: int | None = None) -> Any:
    from fer_edge.runtime.ort_session import cpu_session

    return cpu_session(path, threads or None)


def predict(path: str | Path, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """Top-1 class of each uint8 ``[N,48,48]`` image."""
    sess = session(path)
    preds = [
        sess.run([OUTPUT_NAME], {INPUT_NAME: images[i : i + batch, None].astype(np.float32)})[0].argmax(1)
        for i in range(0, len(images), batch)
    ]
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def latency_ms(paths: Sequence[str | Path], threads: int = 2, runs: int = 300, rounds: int = 5,
               warmup: int = 30, image: np.ndarray | None = None) -> list[float]:
    """Median batch-1 latency (ms) of each model, measured in interleaved rounds.

    Interleaving spreads background load over all models alike; the reported figure is the
    lowest of the per-round medians (the least-disturbed round).
    """
    import time

    from fer_edge.build.export import generated_faces

    # A fixed face-like image (the latency of these kernels does not depend on the values).
    x = generated_faces(4, seed=1)[2:3, None].astype(np.float32) if image is None else image
    sessions = [session(p, threads) for p in paths]
    for s in sessions:
        for _ in range(warmup):
            s.run(None, {INPUT_NAME: x})
    best = [float("inf")] * len(sessions)
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for i, s in enumerate(sessions):
            times = np.empty(per_round)
            for j in range(per_round):
                t0 = time.perf_counter()
                s.run(None, {INPUT_NAME: x})
                times[j] = time.perf_counter() - t0
            best[i] = min(best[i], float(np.median(times)) * 1000)
    return best


@dataclass
class QuantReport:
    target: str
    method: str
    calibration_images: int
    eval_split: str
    eval_images: int
    fp32_accuracy: float
    int8_accuracy: float
    agreement: float
    fp32_bytes: int
    int8_bytes: int
    fp32_latency_ms: float | None = None
    int8_latency_ms: float | None = None
    fp32_layers: list[str] = field(default_factory=list)
    sensitivity: list[dict[str, Any]] = field(default_factory=list)
    rule_violations: list[str] = field(default_factory=list)

    @property
    def drop_points(self) -> float:
        return 100.0 * (self.fp32_accuracy - self.int8_accuracy)

    @property
    def size_ratio(self) -> float:
        return self.int8_bytes / self.fp32_bytes

    @property
    def speedup(self) -> float | None:
        if self.fp32_latency_ms and self.int8_latency_ms:
            return self.fp32_latency_ms / self.int8_latency_ms
        return None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self), "drop_points": self.drop_points, "size_ratio": self.size_ratio,
                "speedup": self.speedup}


"""Fake backends for the bench tests, loaded in the bench's child processes by "bench_fakes:load_fake".

A fake model file is JSON describing the behaviour: ``sleep_ms`` per call, ``alloc_mb`` held
while loaded, ``fail`` (a reason: load raises FerEdgeError), ``crash`` (the process dies),
``precision``, ``metrics`` (recorded accuracy), ``gpu_ms`` (what CUDA events would report per call).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.core.errors import FerEdgeError
from fer_edge.model.labels import FER2013_LABELS


class FakeBackend:
    def __init__(self, path: Path, behaviour: dict[str, Any]) -> None:
        self.path = path
        self.behaviour = behaviour
        self.name = behaviour.get("name", "fake-cpu")
        self.precision = behaviour.get("precision", "fp32")
        self.labels = FER2013_LABELS
        self.dataset = "fer2013"
        self.metadata = {"metrics": json.dumps(behaviour["metrics"])} if "metrics" in behaviour else {}
        self.last_latency_ms: float | None = None
        self.last_gpu_ms: float | None = None
        self._held: np.ndarray | None = None

    def __enter__(self) -> FakeBackend:
        mb = int(self.behaviour.get("alloc_mb", 0))
        if mb:
            self._held = np.ones(mb * 1024 * 1024, dtype=np.uint8)  # ones(): every page is touched
        return self

    def __exit__(self, *exc: object) -> None:
        self._held = None

    def infer(self, batch: np.ndarray) -> np.ndarray:
        time.sleep(float(self.behaviour.get("sleep_ms", 0)) / 1000.0)
        if "gpu_ms" in self.behaviour:
            self.last_gpu_ms = float(self.behaviour["gpu_ms"])
        n = len(batch)
        logits = np.zeros((n, len(self.labels)), dtype=np.float32)
        # Predict the class of the mean pixel so accuracy is not trivially 0 or 100.
        logits[np.arange(n), np.asarray(batch).reshape(n, -1).mean(axis=1).astype(int) % len(self.labels)] = 1
        return logits


def load_fake(path: str | Path, device: str = "auto", threads: int | None = None) -> FakeBackend:
    path = Path(path)
    behaviour = json.loads(path.read_text())
    if behaviour.get("fail"):
        raise FerEdgeError(behaviour["fail"], path=path)
    if behaviour.get("crash"):
        os._exit(3)
    return FakeBackend(path, behaviour)


def write_fake(path: Path, **behaviour: Any) -> Path:
    path.write_text(json.dumps(behaviour))
    return path

"""Timing loops: warm-up, then at least ``min_iters`` calls AND at least ``min_time_s`` seconds.

The harness knows nothing about models: it times a zero-argument callable. A ``sync`` hook
runs after every call inside the timed region, so a GPU backend whose ``infer`` returns before
the device has finished (asynchronous launches) is charged for the work, not for the launch.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from fer_edge.core.errors import FerEdgeError

Clock = Callable[[], float]


@dataclass(frozen=True)
class MeasureConfig:
    """How long to measure. Both minimums must be met; ``max_time_s`` stops a runaway row."""

    warmup_iters: int = 10
    warmup_time_s: float = 0.2
    min_iters: int = 100
    min_time_s: float = 1.0
    max_time_s: float = 60.0

    def __post_init__(self) -> None:
        if self.min_iters < 1:
            raise FerEdgeError(f"--min-iters must be at least 1, got {self.min_iters}")
        if self.min_time_s < 0 or self.warmup_time_s < 0:
            raise FerEdgeError("--min-time must not be negative")
        if self.max_time_s < self.min_time_s:
            raise FerEdgeError(f"max time {self.max_time_s}s is below the minimum time {self.min_time_s}s")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MeasureConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class LatencyStats:
    """Per-call latency of one measurement (milliseconds) and the loop's wall time."""

    iterations: int
    total_s: float
    mean_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ThroughputStats:
    batch: int
    iterations: int
    images_per_s: float
    ms_per_batch_p50: float
    ms_per_image: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _no_sync() -> None:
    return None


def run_loop(
    call: Callable[[], object],
    config: MeasureConfig,
    sync: Callable[[], None] | None = None,
    clock: Clock = time.perf_counter,
) -> tuple[list[float], float]:
    """Warm up, then time ``call`` until both minimums are met. Returns (samples in ms, wall s).

    The garbage collector is paused while timing (as ``timeit`` does): a collection landing in
    one call would show up as a p99 outlier that belongs to Python, not to the backend.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _run_loop(call, config, sync or _no_sync, clock)
    finally:
        if gc_was_enabled:
            gc.enable()


def _run_loop(
    call: Callable[[], object], config: MeasureConfig, sync: Callable[[], None], clock: Clock
) -> tuple[list[float], float]:
    start = clock()
    done = 0
    # Warm-up: first calls pay for allocation, kernel selection and cold caches.
    while done < config.warmup_iters or clock() - start < config.warmup_time_s:
        call()
        sync()
        done += 1
        if clock() - start > config.max_time_s:
            break
    samples: list[float] = []
    loop_start = clock()
    while True:
        t0 = clock()
        call()
        sync()
        t1 = clock()
        samples.append((t1 - t0) * 1000.0)
        elapsed = t1 - loop_start
        if len(samples) >= config.min_iters and elapsed >= config.min_time_s:
            break
        if elapsed >= config.max_time_s:
            break
    return samples, clock() - loop_start


def latency_stats(samples_ms: list[float] | np.ndarray, total_s: float | None = None) -> LatencyStats:
    """Median and percentiles (linear interpolation between order statistics)."""
    arr = np.asarray(samples_ms, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no samples")
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return LatencyStats(
        iterations=int(arr.size),
        total_s=float(total_s if total_s is not None else arr.sum() / 1000.0),
        mean_ms=float(arr.mean()),
        min_ms=float(arr.min()),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        max_ms=float(arr.max()),
    )


def measure_latency(
    call: Callable[[], object],
    config: MeasureConfig,
    sync: Callable[[], None] | None = None,
    clock: Clock = time.perf_counter,
) -> LatencyStats:
    samples, total = run_loop(call, config, sync, clock)
    return latency_stats(samples, total)


def throughput_config(config: MeasureConfig, batch: int) -> MeasureConfig:
    """At batch ``b`` the minimum is ``min_iters`` images (at least 5 calls), not ``min_iters`` calls."""
    iters = max(5, math.ceil(config.min_iters / batch))
    return MeasureConfig(
        warmup_iters=max(2, math.ceil(config.warmup_iters / batch)),
        warmup_time_s=config.warmup_time_s,
        min_iters=iters,
        min_time_s=config.min_time_s,
        max_time_s=config.max_time_s,
    )


def measure_throughput(
    call: Callable[[], object],
    batch: int,
    config: MeasureConfig,
    sync: Callable[[], None] | None = None,
    clock: Clock = time.perf_counter,
) -> ThroughputStats:
    """Images per second of back-to-back calls on batches of ``batch`` images."""
    if batch < 1:
        raise FerEdgeError(f"batch size must be at least 1, got {batch}")
    samples, total = run_loop(call, throughput_config(config, batch), sync, clock)
    stats = latency_stats(samples, total)
    images = batch * stats.iterations
    busy_s = sum(samples) / 1000.0
    return ThroughputStats(
        batch=batch,
        iterations=stats.iterations,
        images_per_s=images / busy_s if busy_s > 0 else float("inf"),
        ms_per_batch_p50=stats.p50_ms,
        ms_per_image=busy_s * 1000.0 / images,
    )

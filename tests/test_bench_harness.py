"""The timing harness: percentiles, minimum iterations and time, warm-up, the sync hook."""

from __future__ import annotations

import time

import numpy as np
import pytest

from fer_edge.bench.harness import MeasureConfig, latency_stats, measure_latency, measure_throughput, run_loop
from fer_edge.core.errors import FerEdgeError


class FakeClock:
    """A clock that only moves when the fake workload says so: exact, machine-independent timings."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def workload(clock: FakeClock, durations_ms: list[float]):  # noqa: ANN201 - a test helper
    state = {"i": 0}

    def call() -> None:
        clock.now += durations_ms[state["i"] % len(durations_ms)] / 1000.0
        state["i"] += 1

    return call, state


def test_percentiles_of_a_known_distribution_are_exact() -> None:
    clock = FakeClock()
    # 100 calls: 1..100 ms, so p50 = 50.5, p90 = 90.1, p99 = 99.01 (linear interpolation).
    call, _ = workload(clock, [float(i) for i in range(1, 101)])
    config = MeasureConfig(warmup_iters=0, warmup_time_s=0.0, min_iters=100, min_time_s=0.0)
    stats = measure_latency(call, config, clock=clock)
    assert stats.iterations == 100
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p90_ms == pytest.approx(90.1)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.min_ms == pytest.approx(1.0) and stats.max_ms == pytest.approx(100.0)
    assert stats.total_s == pytest.approx(5.05)


def test_both_minimums_must_be_met() -> None:
    clock = FakeClock()
    call, _ = workload(clock, [10.0])
    # min_time dominates: 0.5 s of 10 ms calls is 50 calls, more than min_iters = 5.
    samples, total = run_loop(
        call, MeasureConfig(warmup_iters=0, warmup_time_s=0, min_iters=5, min_time_s=0.5), clock=clock
    )
    assert len(samples) == 50 and total == pytest.approx(0.5)
    # min_iters dominates: 200 calls take 2 s, more than min_time = 0.1 s.
    samples, _ = run_loop(
        call, MeasureConfig(warmup_iters=0, warmup_time_s=0, min_iters=200, min_time_s=0.1), clock=clock
    )
    assert len(samples) == 200


def test_warmup_calls_are_not_timed() -> None:
    clock = FakeClock()
    # The first 3 calls are slow (cold start); 3 warm-up iterations absorb them.
    durations = [500.0, 500.0, 500.0] + [2.0] * 1000
    call, state = workload(clock, durations)
    stats = measure_latency(
        call, MeasureConfig(warmup_iters=3, warmup_time_s=0, min_iters=20, min_time_s=0), clock=clock
    )
    assert stats.max_ms == pytest.approx(2.0)
    assert state["i"] == 3 + 20


def test_sync_hook_runs_after_every_call_inside_the_timed_region() -> None:
    clock = FakeClock()
    call, state = workload(clock, [1.0])
    syncs = {"n": 0}

    def sync() -> None:  # a device barrier that takes 4 ms: it must be charged to the call
        syncs["n"] += 1
        clock.now += 0.004

    stats = measure_latency(
        call,
        MeasureConfig(warmup_iters=2, warmup_time_s=0, min_iters=10, min_time_s=0),
        sync=sync,
        clock=clock,
    )
    assert syncs["n"] == state["i"] == 12
    assert stats.p50_ms == pytest.approx(5.0)


def test_max_time_stops_a_runaway_measurement() -> None:
    clock = FakeClock()
    call, _ = workload(clock, [1000.0])
    config = MeasureConfig(warmup_iters=0, warmup_time_s=0, min_iters=10_000, min_time_s=0, max_time_s=3.0)
    samples, _ = run_loop(call, config, clock=clock)
    assert len(samples) == 3


def test_real_sleeps_give_the_right_percentiles_and_ordering() -> None:
    """A fake slow backend: 2 ms per call, every 20th call 15 ms (5 % of calls)."""
    count = {"i": 0}

    def slow_backend_call() -> None:
        count["i"] += 1
        time.sleep(0.015 if count["i"] % 20 == 0 else 0.002)

    stats = measure_latency(
        slow_backend_call, MeasureConfig(warmup_iters=0, warmup_time_s=0, min_iters=200, min_time_s=0)
    )
    assert stats.iterations == 200
    assert stats.min_ms <= stats.p50_ms <= stats.p90_ms <= stats.p99_ms <= stats.max_ms
    assert 2.0 <= stats.p50_ms < 4.0
    assert stats.p90_ms < 8.0  # 95 % of calls are fast
    assert 15.0 <= stats.p99_ms < 30.0  # the slow 5 % set p99


def test_throughput_counts_images_not_calls() -> None:
    clock = FakeClock()
    call, _ = workload(clock, [8.0])  # 8 ms per batch of 16 -> 2000 images/s
    stats = measure_throughput(
        call, 16, MeasureConfig(warmup_iters=0, warmup_time_s=0, min_iters=64, min_time_s=0), clock=clock
    )
    assert stats.images_per_s == pytest.approx(2000.0)
    assert stats.ms_per_image == pytest.approx(0.5)
    assert stats.iterations == 5  # 64 images at batch 16 is 4 calls; at least 5


def test_bad_settings_are_user_errors() -> None:
    with pytest.raises(FerEdgeError):
        MeasureConfig(min_iters=0)
    with pytest.raises(FerEdgeError):
        measure_throughput(lambda: None, 0, MeasureConfig())
    with pytest.raises(ValueError):
        latency_stats(np.array([]))

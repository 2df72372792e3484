"""``--rounds N``: every row N times, in turn, and one row per model out of them.

On a shared machine a burst of someone else's work lands on whichever row is running, and a
single pass turns it into a false speed-up or slow-down. Running the rows round-robin exposes
each of them to the same phases; the medians across rounds, and the speed-up taken as the median
of each round's own ratio (baseline and row measured minutes apart at most), are what stays.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

from fer_edge.bench.compare import apply_baseline, choose_baseline
from fer_edge.bench.rows import RowResult

MAX_ROUNDS = 20


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def round_speedups(rounds: list[list[RowResult]], baseline_index: int) -> list[list[float]]:
    """Per row, the speed-up over the baseline measured within each round (rounds it ran in)."""
    out: list[list[float]] = [[] for _ in rounds[0]]
    for rows in rounds:
        base = rows[baseline_index]
        if not (base.ok and base.latency_ms_p50):
            continue
        for i, row in enumerate(rows):
            if row.ok and row.latency_ms_p50:
                out[i].append(base.latency_ms_p50 / row.latency_ms_p50)
    return out


def merge_row(runs: list[RowResult]) -> RowResult:
    """One row from the same model's rounds: first round's facts, medians of the timings."""
    first = runs[0]
    ok = [r for r in runs if r.ok]
    if not first.ok or not ok:
        return first
    batches = {b for r in ok for b in r.throughput}
    return replace(
        first,
        latency_ms_p50=_median([r.latency_ms_p50 for r in ok]),
        latency_ms_p90=_median([r.latency_ms_p90 for r in ok]),
        latency_ms_p99=_median([r.latency_ms_p99 for r in ok]),
        latency_ms_mean=_median([r.latency_ms_mean for r in ok]),
        latency_iterations=sum(r.latency_iterations or 0 for r in ok),
        gpu_latency_ms_p50=_median([r.gpu_latency_ms_p50 for r in ok]),
        gpu_latency_ms_p99=_median([r.gpu_latency_ms_p99 for r in ok]),
        host_overhead_ms_p50=_median([r.host_overhead_ms_p50 for r in ok]),
        throughput={
            b: v
            for b in sorted(batches, key=int)
            if (v := _median([r.throughput.get(b) for r in ok])) is not None
        },
        peak_memory_mb=max((r.peak_memory_mb for r in ok if r.peak_memory_mb is not None), default=None),
        load_time_s=_median([r.load_time_s for r in ok]),
        wall_time_s=sum(r.wall_time_s or 0.0 for r in runs),
        rounds=len(ok),
    )


def merge_rounds(rounds: list[list[RowResult]]) -> tuple[list[RowResult], RowResult | None]:
    """Merged rows with baseline comparisons applied; with more than one round the speed-up is
    the median of the per-round ratios and ``speedup_rounds`` keeps them all."""
    if not rounds:
        return [], None
    # Every round has one row per spec (a row that failed in round 1 is carried, not retried).
    merged = [merge_row([rows[i] for rows in rounds]) for i in range(len(rounds[0]))]
    baseline = choose_baseline(merged)
    apply_baseline(merged, baseline)
    if baseline is None or len(rounds) == 1:
        return merged, baseline
    per_row = round_speedups(rounds, merged.index(baseline))
    for row, ratios in zip(merged, per_row):
        if row.ok and ratios:
            row.speedup = 1.0 if row.baseline else statistics.median(ratios)
            row.speedup_rounds = [round(r, 4) for r in ratios]
    return merged, baseline

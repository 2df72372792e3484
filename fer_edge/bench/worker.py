"""The child process of one benchmark row: load, measure, write one JSON row, exit.

Run as ``python -m fer_edge.bench.worker SPEC.json RESULT.json``. Running each row in a fresh
process keeps its peak memory and load time its own: a row does not inherit the allocator
arenas, thread pools or cached kernels of the rows before it.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.bench.harness import MeasureConfig, latency_stats, measure_latency, measure_throughput
from fer_edge.bench.inputs import BenchInputs
from fer_edge.bench.memory import current_rss_mb, gpu_memory_mb, peak_rss_mb
from fer_edge.bench.recorded import recorded_accuracy
from fer_edge.bench.rows import RowResult, RowSpec
from fer_edge.core.atomic import write_text_atomic
from fer_edge.core.errors import FerEdgeError, first_line
from fer_edge.core.tegrastats import TegraStats

ACCURACY_BATCH_CAP = 256


def resolve_loader(ref: str) -> Callable[..., Any]:
    module_name, _, func_name = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FerEdgeError(f"cannot import the backend loader {module_name} ({exc})") from None
    func = getattr(module, func_name or "load_backend", None)
    if not callable(func):
        raise FerEdgeError(f"{ref} is not a callable backend loader")
    return func  # type: ignore[no-any-return]


def sync_hook(backend: Any) -> Callable[[], None] | None:
    """A device barrier for backends whose ``infer`` may return before the GPU is done."""
    sync = getattr(backend, "synchronize", None)
    if callable(sync):
        return sync  # type: ignore[no-any-return]
    name = str(getattr(backend, "name", ""))
    if name.startswith("torch") and "cuda" in name:
        import torch

        return torch.cuda.synchronize
    return None


def batches_of(images: np.ndarray, batch: int, count: int) -> list[np.ndarray]:
    """``count`` contiguous batches of ``batch`` faces, cycling through ``images`` (built before timing)."""
    n = len(images)
    out = []
    for i in range(count):
        idx = (np.arange(batch) + i * batch) % n
        out.append(np.ascontiguousarray(images[idx]))
    return out


def cycle(batches: list[np.ndarray], infer: Callable[[np.ndarray], Any]) -> Callable[[], Any]:
    state = {"i": 0}

    def call() -> Any:
        b = batches[state["i"] % len(batches)]
        state["i"] += 1
        return infer(b)

    return call


def recording_gpu_time(
    backend: Any, sink: list[float], host_sink: list[float] | None = None
) -> Callable[[np.ndarray], Any]:
    """``backend.infer`` that also keeps each call's CUDA-event time, where the backend has one,
    and (in ``host_sink``) its host overhead: the backend's ``last_host_ms``, else the call's wall
    time less its device time."""

    def infer(batch: np.ndarray) -> Any:
        start = time.perf_counter()
        out = backend.infer(batch)
        wall_ms = (time.perf_counter() - start) * 1000.0
        gpu_ms = getattr(backend, "last_gpu_ms", None)
        if gpu_ms is not None:
            sink.append(float(gpu_ms))
            if host_sink is not None:
                host_ms = getattr(backend, "last_host_ms", None)
                host_sink.append(float(host_ms) if host_ms is not None else max(wall_ms - float(gpu_ms), 0.0))
        return out

    return infer


def measure_accuracy(backend: Any, inputs: BenchInputs, batch: int) -> tuple[float, int]:
    assert inputs.labels is not None
    correct = 0
    for start in range(0, len(inputs.images), batch):
        logits = np.asarray(backend.infer(inputs.images[start : start + batch]))
        correct += int((logits.argmax(axis=1) == inputs.labels[start : start + batch]).sum())
    return 100.0 * correct / len(inputs.images), len(inputs.images)


def metadata_with_metrics(metadata: dict[str, str], path: Path) -> dict[str, str]:
    """``metadata`` plus a checkpoint's own ``metrics`` where the backend did not pass them on."""
    if "metrics" in metadata or path.suffix.lower() not in (".pt", ".pth"):
        return metadata
    from fer_edge.model.checkpoint import load_checkpoint

    try:
        metrics = load_checkpoint(path).get("metrics")
    except FerEdgeError:
        return metadata
    return {**metadata, "metrics": json.dumps(metrics)} if isinstance(metrics, dict) else metadata


def check_dataset(backend: Any, inputs: BenchInputs) -> None:
    model_ds = getattr(backend, "dataset", None)
    if inputs.dataset and model_ds and model_ds != inputs.dataset:
        hint = "add --votes fer2013new.csv" if model_ds == "ferplus" else "drop --votes"
        raise FerEdgeError(
            f"is a {model_ds} model but the data is {inputs.dataset} ({hint})", path=backend.path
        )
    labels = tuple(getattr(backend, "labels", ()) or ())
    if inputs.labels is not None and labels and int(inputs.labels.max()) >= len(labels):
        raise FerEdgeError(f"has {len(labels)} classes, fewer than the data's labels", path=backend.path)


def run_row(spec: RowSpec) -> RowResult:
    """Everything a row measures, in order: load, accuracy, batch-1 latency, throughput, memory."""
    t_start = time.perf_counter()
    inputs = BenchInputs.load(spec.inputs)
    config = MeasureConfig.from_dict(spec.measure)
    load_backend = resolve_loader(spec.loader)
    rss_before = current_rss_mb()

    t0 = time.perf_counter()
    backend = load_backend(spec.model, device=spec.device, threads=spec.threads)
    with backend:
        backend.infer(inputs.images[:1])  # the first call finishes lazy initialisation: part of loading
        load_time = time.perf_counter() - t0
        row = RowResult(
            model=spec.model,
            device=spec.device,
            backend=str(backend.name),
            precision=str(backend.precision),
            dataset=getattr(backend, "dataset", None),
            load_time_s=load_time,
            rss_before_load_mb=rss_before,
        )
        path = Path(spec.model)
        row.size_mb = path.stat().st_size / 1e6 if path.is_file() else None
        sync = sync_hook(backend)

        if inputs.has_labels:
            check_dataset(backend, inputs)
        if inputs.has_labels and spec.accuracy:
            row.accuracy, row.accuracy_images = measure_accuracy(
                backend, inputs, min(max(spec.batches), ACCURACY_BATCH_CAP)
            )
            row.accuracy_split = inputs.split

        timing = inputs.timing_images()
        singles = batches_of(timing, 1, len(timing))
        with TegraStats() as tegra:  # Jetson only: board RAM and power while timing
            gpu_ms: list[float] = []
            host_ms: list[float] = []
            lat = measure_latency(cycle(singles, recording_gpu_time(backend, gpu_ms, host_ms)), config, sync)
            row.latency_ms_p50, row.latency_ms_p90, row.latency_ms_p99 = lat.p50_ms, lat.p90_ms, lat.p99_ms
            row.latency_ms_mean, row.latency_iterations = lat.mean_ms, lat.iterations
            if len(gpu_ms) >= lat.iterations:  # the timed calls are the last ones; warm-up came first
                gpu = latency_stats(gpu_ms[-lat.iterations :])
                row.gpu_latency_ms_p50, row.gpu_latency_ms_p99 = gpu.p50_ms, gpu.p99_ms
                row.host_overhead_ms_p50 = latency_stats(host_ms[-lat.iterations :]).p50_ms

            for batch in spec.batches:
                count = max(1, min(8, len(timing) // batch))
                tp = measure_throughput(
                    cycle(batches_of(timing, batch, count), backend.infer), batch, config, sync
                )
                row.throughput[str(batch)] = tp.images_per_s
        tegra_summary = tegra.summary()
        if tegra_summary is not None:
            row.board_ram_mb = tegra_summary.ram_used_mb_peak
            row.power_w_mean, row.power_w_peak = tegra_summary.power_w_mean, tegra_summary.power_w_peak

        row.gpu_memory_mb = gpu_memory_mb() if spec.device in ("cuda", "tensorrt") else None
        metadata = dict(getattr(backend, "metadata", {}) or {})
    row.peak_memory_mb = peak_rss_mb()
    if not inputs.has_labels and spec.accuracy:
        # After the peak is read: a checkpoint's metrics may need a second read of the file.
        row.accuracy, row.accuracy_split = recorded_accuracy(
            metadata_with_metrics(metadata, path), spec.split
        )
        row.accuracy_recorded = row.accuracy is not None
    row.wall_time_s = time.perf_counter() - t_start
    return row


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m fer_edge.bench.worker SPEC.json RESULT.json", file=sys.stderr)
        return 2
    spec = RowSpec.from_dict(json.loads(Path(argv[0]).read_text()))
    try:
        row = run_row(spec)
    except FerEdgeError as exc:
        row = RowResult.failed(spec, str(exc))
    except MemoryError:
        row = RowResult.failed(spec, "out of memory")
    except Exception as exc:  # a backend's own error: report it on the row, not as a traceback
        import traceback

        traceback.print_exc(file=sys.stderr)
        row = RowResult.failed(spec, f"{type(exc).__name__}: {first_line(exc)}"[:300])
    write_text_atomic(argv[1], json.dumps(row.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""What one benchmark row is asked to do (:class:`RowSpec`) and what it found (:class:`RowResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_LOADER = "fer_edge.runtime.classifier:load_backend"


@dataclass(frozen=True)
class RowSpec:
    """One (model, device) pair, run in its own child process by :mod:`fer_edge.bench.worker`."""

    model: str
    device: str = "cpu"
    threads: int | None = 2
    batches: tuple[int, ...] = (1, 8, 64)
    inputs: str = ""  # .npz written by fer_edge.bench.inputs: the same faces for every row
    measure: dict[str, Any] = field(default_factory=dict)
    split: str = "PrivateTest"
    loader: str = DEFAULT_LOADER  # "module:function" with load_backend's signature (tests use fakes)
    backend_hint: str = ""  # what the row expects to be, shown if it fails before loading
    precision_hint: str = ""
    layout_note: str = ""  # "laid out for TensorRT": the file was made for another runtime than this row's
    accuracy: bool = True  # False in the later rounds of --rounds: the faces and the model are the same

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["batches"] = list(self.batches)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RowSpec:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["batches"] = tuple(known.get("batches", (1,)))
        return cls(**known)


@dataclass
class RowResult:
    """One row of the table. ``status`` is ``ok`` or ``failed`` (then ``reason`` says why)."""

    model: str
    device: str
    backend: str
    precision: str
    status: str = "ok"
    layout_note: str = ""  # as in RowSpec: why an INT8 file may run slower here than FP32
    reason: str = ""
    size_mb: float | None = None
    dataset: str | None = None
    accuracy: float | None = None
    accuracy_recorded: bool = False  # True: read from the model's metadata, not measured here
    accuracy_split: str | None = None
    accuracy_inherited: bool = False  # recorded INT8 figure that only repeats the FP32 model's
    accuracy_images: int | None = None
    delta_accuracy: float | None = None
    latency_ms_p50: float | None = None
    latency_ms_p90: float | None = None
    latency_ms_p99: float | None = None
    latency_ms_mean: float | None = None
    latency_iterations: int | None = None
    # GPU rows: device time per batch-1 call from CUDA events (H2D copy + kernels + D2H copy)
    gpu_latency_ms_p50: float | None = None
    gpu_latency_ms_p99: float | None = None
    # GPU rows: the rest of each call's wall time (pinned copies, shapes, waits), p50
    host_overhead_ms_p50: float | None = None
    throughput: dict[str, float] = field(default_factory=dict)  # batch size (as text) -> images/s
    speedup: float | None = None
    speedup_rounds: list[float] = field(default_factory=list)  # --rounds: each round's own ratio
    rounds: int = 1  # how many rounds the timings are the median of
    baseline: bool = False
    peak_memory_mb: float | None = None
    rss_before_load_mb: float | None = None
    load_time_s: float | None = None
    gpu_memory_mb: float | None = None  # discrete GPUs (nvidia-smi); Jetsons share memory: see board_ram_mb
    board_ram_mb: float | None = None  # Jetson: RAM in use on the whole board (tegrastats), peak
    power_w_mean: float | None = None  # Jetson: board input power while timing (tegrastats)
    power_w_peak: float | None = None
    wall_time_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RowResult:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @classmethod
    def failed(cls, spec: RowSpec, reason: str) -> RowResult:
        return cls(
            model=spec.model,
            device=spec.device,
            backend=spec.backend_hint or spec.device,
            precision=spec.precision_hint or "?",
            layout_note=spec.layout_note,
            status="failed",
            reason=reason,
        )

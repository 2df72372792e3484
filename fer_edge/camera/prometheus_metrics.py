"""The metric families of ``run --metrics``, built at scrape time from the loop's metrics objects.

Every value is read from :meth:`CameraMetrics.snapshot` (the object the status line reads), the
forwarder's own counters and the newest tegrastats line when Prometheus scrapes: there is no second
bookkeeping to drift from the first. The names are the contract of docs/fleet.md ("Operations")
and of the alert rules in ``scripts/prometheus/``; change them only together.

Per camera (label ``camera``): frames, dropped frames, camera up, reconnects, outage seconds, faces
now, windows written and held for the log (each camera's log writer holds its own), faces per
emotion, latency per stage (histograms). Per device: the build, windows waiting for the central
database (one forwarder per process), sync errors, and on a Jetson the board's power,
temperatures, GPU load and power mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Sequence

from fer_edge.camera.board_metrics import BoardReader, BoardReading
from fer_edge.camera.metrics import STAGE_BUCKETS_S, CameraMetrics, MetricsSnapshot

PREFIX = "fer_edge_"


@dataclass(frozen=True)
class BuildInfo:
    """What this device runs: the labels of ``fer_edge_build_info``."""

    version: str
    model: str
    model_sha256: str
    detector: str
    backend: str
    precision: str

    @classmethod
    def of_pipeline(cls, pipeline: Any) -> BuildInfo:
        """From a ``wiring.CameraPipeline`` (its files, classifier and detector)."""
        from fer_edge import __version__

        return cls(
            version=__version__,
            model=pipeline.files.model.name,
            model_sha256=file_sha256(pipeline.files.model),
            detector=str(pipeline.detector.name),
            backend=str(pipeline.classifier.name),
            precision=str(pipeline.classifier.precision),
        )


def file_sha256(path: Path) -> str:
    """The file's SHA-256 (hex); empty where it cannot be read (a label, never an error)."""
    from fer_edge.core.files import file_sha256 as sha256

    try:
        return sha256(path)
    except OSError:
        return ""


class RunCollector:
    """``collect()`` yields the families of every camera in ``cameras`` (a list that ``run`` fills
    once the pipeline is open; empty before), plus the device's and the board's."""

    def __init__(
        self,
        cameras: Optional[List[CameraMetrics]] = None,
        build: Optional[BuildInfo] = None,
        sync_errors: Callable[[], Optional[int]] = lambda: None,
        board: Optional[BoardReader] = None,
    ) -> None:
        self.cameras: List[CameraMetrics] = cameras if cameras is not None else []
        self.build = build
        self.sync_errors = sync_errors
        self.board = board

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import InfoMetricFamily

        if self.build is not None:
            info = InfoMetricFamily(PREFIX + "build", "The fer-edge release, model and runtime this device runs")
            info.add_metric([], {k: str(v) for k, v in vars(self.build).items()})
            yield info
        snapshots = [camera.snapshot() for camera in list(self.cameras)]
        if snapshots:
            yield from camera_families(snapshots)
            yield from device_families(snapshots, self.sync_errors())
        reading = self.board.reading() if self.board is not None else None
        if reading is not None:
            yield from board_families(reading)


# (name without prefix and suffix, help, kind, value of a snapshot)
_PER_CAMERA: Sequence[tuple] = (
    ("frames", "Frames processed", "counter", lambda s: s.frames),
    ("frames_dropped", "Frames the pipeline could not take (newest frame wins)", "counter",
     lambda s: s.dropped_frames),
    ("camera_up", "1 while the camera delivers frames, 0 while it is down", "gauge", lambda s: int(s.camera_up)),
    ("camera_reconnects", "Times the source was reopened after it dropped", "counter", lambda s: s.reconnects),
    ("outage_seconds", "Seconds without a camera in closed windows", "counter", lambda s: s.outage_s),
    ("faces", "Faces in view now", "gauge", lambda s: s.faces_now),
    ("windows_written", "Mood windows written to the local log", "counter", lambda s: s.windows_written),
    ("windows_held", "Closed windows held in memory, waiting for the mood log", "gauge", lambda s: s.windows_held),
)  # fmt: skip


def camera_families(snapshots: Sequence[MetricsSnapshot]) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    for name, doc, kind, value in _PER_CAMERA:
        family_type = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        family = family_type(PREFIX + name, doc, labels=["camera"])
        for s in snapshots:
            family.add_metric([s.camera], float(value(s)))
        yield family
    emotions = CounterMetricFamily(PREFIX + "emotions", "Faces counted per emotion in closed windows (aggregates only)",
                                   labels=["camera", "emotion"])  # fmt: skip
    for s in snapshots:
        for emotion, n in sorted(s.emotions_total.items()):
            emotions.add_metric([s.camera, emotion], float(n))
    yield emotions
    stages = HistogramMetricFamily(PREFIX + "stage_seconds", "Time per frame in each stage of the camera loop",
                                   labels=["camera", "stage"])  # fmt: skip
    bounds = [f"{b:g}" for b in STAGE_BUCKETS_S] + ["+Inf"]
    for s in snapshots:
        for stage, cumulative in s.stage_buckets.items():
            stages.add_metric([s.camera, stage], list(zip(bounds, (float(c) for c in cumulative))),
                              sum_value=s.stage_ms_total.get(stage, 0.0) / 1000.0)  # fmt: skip
    yield stages


def device_families(snapshots: Sequence[MetricsSnapshot], sync_errors: Optional[int]) -> Iterator[Any]:
    """The forwarder is one per process: every camera reports its count, so the device's figure is
    their maximum, not their sum."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    waiting = [s.to_sync for s in snapshots if s.to_sync is not None]
    if waiting:
        yield GaugeMetricFamily(PREFIX + "windows_unsynced", "Windows waiting for the central database",
                                value=max(waiting))  # fmt: skip
    if sync_errors is not None:
        yield CounterMetricFamily(PREFIX + "sync_errors", "Sync passes that failed", value=sync_errors)


def board_families(reading: BoardReading) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily

    if reading.power_w is not None:
        yield GaugeMetricFamily(PREFIX + "board_power_watts", "Board input power (tegrastats)", value=reading.power_w)
    if reading.temps_c:
        temps = GaugeMetricFamily(PREFIX + "board_temperature_celsius", "Temperature per thermal zone (tegrastats)",
                                  labels=["zone"])  # fmt: skip
        for zone, value in sorted(reading.temps_c.items()):
            temps.add_metric([zone], value)
        yield temps
    if reading.throttle_c:
        trips = GaugeMetricFamily(PREFIX + "board_throttle_celsius",
                                  "Where the kernel starts to throttle each zone (its first passive trip point)",
                                  labels=["zone"])  # fmt: skip
        for zone, value in sorted(reading.throttle_c.items()):
            trips.add_metric([zone], value)
        yield trips
    if reading.gpu_load is not None:
        yield GaugeMetricFamily(PREFIX + "board_gpu_load_ratio", "GPU load, 0 to 1 (tegrastats GR3D)",
                                value=reading.gpu_load)  # fmt: skip
    if reading.power_mode is not None:
        mode = InfoMetricFamily(PREFIX + "board_power_mode", "The nvpmodel power mode")
        mode.add_metric([], {"mode": reading.power_mode, "id": reading.power_mode_id or ""})
        yield mode

"""``run --metrics``: the endpoint bound before the camera opens, then pointed at the loop's metrics.

``open_metrics`` parses the option and binds the port at once, so a malformed value, an address
that is not local without ``--metrics-public`` or a port in use is a one-line error before any
model loads or camera opens. ``watch`` hands it the cameras' metrics objects (a list: one per
camera), the pipeline (for ``fer_edge_build_info``) and the forwarder (for its error count) once
they exist; until then ``/metrics`` has no camera families and ``/healthz`` says "starting".
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from fer_edge.camera.board_metrics import BoardReader
from fer_edge.camera.metrics import CameraMetrics
from fer_edge.camera.metrics_endpoint import MetricsEndpoint, parse_metrics_address
from fer_edge.camera.prometheus_metrics import BuildInfo, RunCollector
from fer_edge.core.errors import FerEdgeError

# No frame from any camera that is up for this long: the loop is stuck (an inference that hangs, a
# frozen capture driver). Far above a frame time, below the 60 s a supervisor's probe usually allows.
STUCK_AFTER_S = 30.0


class LoopHealth:
    """``/healthz``: healthy while the loop runs and frames arrive; not before the loop starts, not
    when every camera is down, not when no frame arrived for ``stuck_after_s``.

    Frames are counted at each check (the metrics keep no "last frame" time): a loop that stops
    moving is reported at the first check ``stuck_after_s`` after the last one that saw it move."""

    def __init__(
        self,
        cameras: List[CameraMetrics],
        stuck_after_s: float = STUCK_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cameras, self.stuck_after_s, self._clock = cameras, stuck_after_s, clock
        self._started: Optional[float] = None
        self._frames = -1
        self._moved_at = 0.0

    def started(self) -> None:
        self._started = self._moved_at = self._clock()

    def __call__(self) -> Tuple[bool, str]:
        if self._started is None or not self.cameras:
            return False, "starting: the camera loop is not running yet"
        snapshots = [c.snapshot() for c in list(self.cameras)]
        now = self._clock()
        frames = sum(s.frames for s in snapshots)
        if frames != self._frames:
            self._frames, self._moved_at = frames, now
        if not any(s.camera_up for s in snapshots):
            names = ", ".join(s.camera for s in snapshots)
            return False, f"every camera is down ({names})"
        idle = now - self._moved_at
        if idle > self.stuck_after_s:
            return False, f"no frame processed for {idle:.0f} s: the camera loop is stuck"
        down = [s.camera for s in snapshots if not s.camera_up]
        return True, (f"down: {', '.join(down)}" if down else "")


class MetricsService:
    """The endpoint of one ``run``: a collector, a health check and (on a Jetson) a tegrastats reader."""

    def __init__(self, board: Optional[BoardReader] = None, stuck_after_s: float = STUCK_AFTER_S) -> None:
        self.board = board if board is not None else BoardReader()
        self.collector = RunCollector(board=self.board)
        self.health = LoopHealth(self.collector.cameras, stuck_after_s)
        self.endpoint = MetricsEndpoint(self.collector.collect, self.health)

    def start(self, host: str, port: int) -> MetricsService:
        self.endpoint.start(host, port)
        self.board.start()
        return self

    @property
    def url(self) -> str:
        host, port = self.endpoint.address
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/metrics"

    def watch(self, cameras: Sequence[CameraMetrics], build: BuildInfo, forwarder: Any = None) -> None:
        """Serve these cameras from now on; ``forwarder`` (``run --sync``'s, or None) has ``errors``."""
        self.collector.build = build
        if forwarder is not None:
            self.collector.sync_errors = lambda: int(forwarder.errors)
        self.collector.cameras.extend(cameras)
        self.health.started()

    def close(self) -> None:
        self.endpoint.close()
        self.board.close()


class HealthFigures:
    """What ``run --sync`` records centrally about this device at each sync (the fields of
    ``fleet.health.HEALTH_FIELDS``), read from the same metrics objects as the endpoint."""

    def __init__(self, cameras: Sequence[CameraMetrics], build: BuildInfo,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.cameras, self.build, self._clock = list(cameras), build, clock
        self._last: Optional[Tuple[float, int]] = None

    def __call__(self) -> Dict[str, Any]:
        snapshots = [c.snapshot() for c in self.cameras]
        now, frames = self._clock(), sum(s.frames for s in snapshots)
        if self._last is not None and now > self._last[0]:
            fps = (frames - self._last[1]) / (now - self._last[0])  # frames per second of wall time since the last
        else:
            fps = sum(s.interval.fps for s in snapshots)
        self._last = (now, frames)
        return {
            "fer_edge_version": self.build.version, "model": self.build.model, "model_sha256": self.build.model_sha256,
            "cameras_up": sum(s.camera_up for s in snapshots), "cameras_total": len(snapshots),
            "fps": round(fps, 2), "windows_held": sum(s.windows_held for s in snapshots),
        }  # fmt: skip


def observe(cameras: Sequence[CameraMetrics], pipeline: Any, forwarder: Any, service: Optional[MetricsService]) -> None:
    """Once the loop's metrics objects exist: the endpoint serves them, and the forwarder (``run
    --sync``) records the device's health from them."""
    if forwarder is None and service is None:
        return
    build = BuildInfo.of_pipeline(pipeline)
    if forwarder is not None:
        forwarder.health.figures = HealthFigures(cameras, build)
    if service is not None:
        service.watch(cameras, build, forwarder)


def open_metrics(value: Optional[str], public: bool, echo: Callable[[str], None] = print) -> Optional[MetricsService]:
    """``--metrics``/``--metrics-public`` -> a bound, serving endpoint (None when not asked)."""
    if value is None:
        if public:
            raise FerEdgeError("--metrics-public needs --metrics ADDR:PORT")
        return None
    host, port = parse_metrics_address(value, public)
    service = MetricsService().start(host, port)
    echo(f"metrics: {service.url} (and /healthz)")
    return service

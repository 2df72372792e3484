"""The board's power, temperatures, GPU load and power mode on a Jetson, for ``run --metrics``.

A daemon thread reads ``tegrastats --interval 1000`` line by line and keeps only the newest parsed
line (``bench.tegrastats.parse_line``), so a scrape reads a value in memory and never waits on a
subprocess. The power mode comes from ``nvpmodel -q`` once at the start (it changes only when an
admin changes it, and then the service is restarted), the throttle points from the thermal zones
(``core.thermal_zones``). Zone names are lower-cased as the thermal zones' are (``CPU@45C`` ->
``cpu``), so that a temperature and its throttle point share the label ``zone``.

Where ``tegrastats`` is absent (any machine but a Jetson) nothing starts and nothing is exported.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

from fer_edge.core.tegrastats import TegraSample, TegrastatsProcess
from fer_edge.core.thermal_zones import SYSFS_THERMAL, throttle_points, zone_label

# A sample older than this is not exported: tegrastats died or stalled, and a stale temperature
# would hide a board that is heating up.
STALE_S = 10.0
_POWER_MODE = re.compile(r"NV Power Mode:\s*(\S.*?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class BoardReading:
    """The newest tegrastats line, zones relabelled, and the board's fixed facts."""

    power_w: Optional[float]
    temps_c: Dict[str, float]
    gpu_load: Optional[float]  # 0..1
    power_mode: Optional[str]  # nvpmodel's name for it (MAXN, 15W, ...)
    power_mode_id: Optional[str]
    throttle_c: Dict[str, float] = field(default_factory=dict)


def power_mode(nvpmodel: Optional[str] = None, timeout: float = 5.0) -> tuple:
    """``(name, id)`` from ``nvpmodel -q`` (``NV Power Mode: MAXN`` then the id on the next line);
    ``(None, None)`` where it is absent or says nothing we know."""
    exe = nvpmodel or shutil.which("nvpmodel")
    if exe is None:
        return None, None
    try:
        done = subprocess.run([exe, "-q"], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None, None
    match = _POWER_MODE.search(done.stdout)
    if match is None:
        return None, None
    rest = done.stdout[match.end():].split()
    return match.group(1), (rest[0] if rest and rest[0].isdigit() else None)


class BoardReader:
    """``start()`` the tegrastats thread (a no-op without tegrastats); ``reading()`` the newest line."""

    def __init__(self, interval_ms: int = 1000, thermal_root: Path = SYSFS_THERMAL) -> None:
        self.interval_ms = interval_ms
        self.thermal_root = thermal_root
        self._lock = threading.Lock()
        self._sample: Optional[TegraSample] = None
        self._at = 0.0
        self._process = TegrastatsProcess(interval_ms, self._keep)
        self._mode: tuple = (None, None)
        self._throttle: Dict[str, float] = {}

    @staticmethod
    def available() -> bool:
        return TegrastatsProcess.available()

    def start(self) -> BoardReader:
        if not self.available():
            return self
        self._mode = power_mode()
        self._throttle = throttle_points(self.thermal_root)
        self._process.start()
        return self

    def _keep(self, sample: TegraSample) -> None:
        with self._lock:
            self._sample, self._at = sample, time.monotonic()

    def reading(self) -> Optional[BoardReading]:
        """The newest line, or None without tegrastats or when its last line is stale."""
        with self._lock:
            sample, at = self._sample, self._at
        if sample is None or time.monotonic() - at > STALE_S:
            return None
        temps: Dict[str, float] = {}
        for name, value in sample.temps_c.items():
            temps.setdefault(zone_label(name), value)
        load = sample.gpu_load_pct
        return BoardReading(
            power_w=sample.power_w,
            temps_c=temps,
            gpu_load=None if load is None else load / 100.0,
            power_mode=self._mode[0],
            power_mode_id=self._mode[1],
            throttle_c=dict(self._throttle),
        )

    def close(self) -> None:
        self._process.stop()

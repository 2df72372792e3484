"""Jetson memory, power, temperatures and GPU load from ``tegrastats`` (present on every JetPack).

On a Jetson, CPU and GPU share one memory, so there is no per-process GPU figure: the row
reports its own RSS, and this adds the board's RAM in use and its power (mean, peak).

Power per board. Boards with a total-input rail report it, and that is the board's power:
``VDD_IN`` (Orin Nano/NX, Xavier NX, TX2) and ``POM_5V_IN`` (Nano; its GPU/CPU rails are parts of
it, not additions). The AGX boards have no total rail, so their known rails are summed: AGX Orin
``VDD_GPU_SOC + VDD_CPU_CV + VIN_SYS_5V0 + VDDQ_VDD2_1V8AO``, AGX Xavier ``GPU + CPU + SOC + CV +
VDDRQ + SYS5V`` (the module's rails, so the carrier board's own draw is not in it). A line whose
rails match no known board gives no power rather than a guess.

Formats across JetPack: rails read ``NAME cur/avg`` in mW (JetPack 4: ``VDD_IN 3140/3208``) or with
units (JetPack 5/6: ``VDD_IN 4567mW/4500mW``); GPU load is ``GR3D_FREQ 0%``, ``0%@76`` or, on Orin,
``0%@[305]`` / ``0%@[0,0]`` (one frequency per GPC); temperatures are ``CPU@45.5C`` / ``tj@44.3C``,
and a sensor that is off reads ``-256C``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from fer_edge.core.retry import Backoff

RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
# "NAME 4567mW/4500mW" or "NAME 3120/2900": a rail has mW or a "/avg" (so "APE 150" is no rail).
RAIL = re.compile(r"(?<![\w@])([A-Z][A-Z0-9_]*) (\d+)(mW)?(?:/(\d+)(?:mW)?)?(?=\s|$)")
TEMP = re.compile(r"(?<![\w@])([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C(?=\s|$)")
GPU_LOAD = re.compile(r"\bGR3D\d*_FREQ (\d+)%")
SENSOR_OFF_C = -256.0

TOTAL_RAILS: Tuple[str, ...] = ("VDD_IN", "POM_5V_IN")
# The rails whose sum is the board's power where there is no total rail; the first two of each
# must be present for a line to count as that board.
BOARD_RAILS: Dict[str, Tuple[str, ...]] = {
    "agx-orin": ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"),
    "agx-xavier": ("GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"),
}


@dataclass
class TegraSample:
    """One tegrastats line. ``power_mw`` is the board's power (see the module docstring)."""

    ram_used_mb: Optional[int]
    power_mw: Optional[int]
    rails_mw: Dict[str, int] = field(default_factory=dict)  # every rail's current reading
    temps_c: Dict[str, float] = field(default_factory=dict)  # per zone; sensors that are off left out
    gpu_load_pct: Optional[float] = None  # GR3D (mean over GR3D/GR3D2 where both are reported)
    power_source: Optional[str] = None  # "VDD_IN", or the summed rails joined by "+"

    @property
    def power_w(self) -> Optional[float]:
        return None if self.power_mw is None else self.power_mw / 1000.0


def board_power(rails: Dict[str, int]) -> Tuple[Optional[int], Optional[str]]:
    """``(mW, source)``: the total input rail where the board has one, else the sum of the known
    rails of an AGX board, else ``(None, None)``."""
    for name in TOTAL_RAILS:
        if name in rails:
            return rails[name], name
    for names in BOARD_RAILS.values():
        if all(name in rails for name in names[:2]):
            present = [name for name in names if name in rails]
            return sum(rails[name] for name in present), "+".join(present)
    return None, None


def parse_line(line: str) -> TegraSample:
    """Parse one tegrastats line (pure); anything it does not carry is None or empty."""
    ram = RAM.search(line)
    rails: Dict[str, int] = {}
    for match in RAIL.finditer(line):
        name, current, unit, average = match.groups()
        if name in ("RAM", "SWAP", "IRAM") or (unit is None and average is None):
            continue
        rails[name] = rails.get(name, 0) + int(current)  # AGX Orin prints two "NC" rails
    temps = {name: float(value) for name, value in TEMP.findall(line) if float(value) > SENSOR_OFF_C}
    loads = [float(x) for x in GPU_LOAD.findall(line)]
    power, source = board_power(rails)
    return TegraSample(
        ram_used_mb=int(ram.group(1)) if ram else None,
        power_mw=power,
        rails_mw=rails,
        temps_c=temps,
        gpu_load_pct=sum(loads) / len(loads) if loads else None,
        power_source=source,
    )


@dataclass
class TegraSummary:
    samples: int
    ram_used_mb_peak: float | None
    power_w_mean: float | None
    power_w_peak: float | None


def summarise(samples: List[TegraSample]) -> TegraSummary:
    ram = [s.ram_used_mb for s in samples if s.ram_used_mb is not None]
    power = [s.power_mw for s in samples if s.power_mw is not None]
    return TegraSummary(
        samples=len(samples),
        ram_used_mb_peak=float(max(ram)) if ram else None,
        power_w_mean=sum(power) / len(power) / 1000.0 if power else None,
        power_w_peak=max(power) / 1000.0 if power else None,
    )


class TegrastatsProcess:
    """``tegrastats --interval MS`` in a background thread, each line parsed and handed to
    ``on_sample``; nothing runs where tegrastats is absent or cannot start. One implementation for
    the bench's summary and the camera's board metrics.

    A tegrastats that exits while we read (killed, or crashed) is started again after a backoff
    (``restarts`` counts them): a camera that runs for months keeps its board figures."""

    def __init__(self, interval_ms: int, on_sample: Callable[[TegraSample], None],
                 name: str = "fer-edge-tegrastats", backoff: Backoff | None = None) -> None:
        self.interval_ms, self.on_sample, self.name = interval_ms, on_sample, name
        self.backoff = backoff or Backoff(first=1.0, cap=60.0)
        self.restarts = 0
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # the reader restarts the process while stop() may end it

    @staticmethod
    def available() -> bool:
        return shutil.which("tegrastats") is not None

    def start(self) -> bool:
        """Start reading; False where there is no tegrastats to read."""
        if not self._spawn():
            return False
        self._stopping.clear()
        self._reader = threading.Thread(target=self._read, name=self.name, daemon=True)
        self._reader.start()
        return True

    def _spawn(self) -> bool:
        exe = shutil.which("tegrastats")
        if exe is None:
            return False
        with self._lock:
            if self._stopping.is_set():
                return False
            try:
                self._proc = subprocess.Popen(
                    [exe, "--interval", str(self.interval_ms)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
            except OSError:
                self._proc = None
                return False
        return True

    def _read(self) -> None:
        while not self._stopping.is_set():
            proc = self._proc
            if proc is not None and proc.stdout is not None:
                for line in proc.stdout:
                    self.on_sample(parse_line(line))
                    self.backoff.reset()
                proc.wait()
            if self.backoff.wait(self._stopping):
                return
            if self._spawn():
                self.restarts += 1

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            proc, self._proc = self._proc, None
        if proc is not None:
            # Python 3.8 (JetPack 5) raises when the process has just exited and the reader reaped it.
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None


@dataclass
class TegraStats:
    """``with TegraStats() as t: ...`` then ``t.summary()``; does nothing where tegrastats is absent."""

    interval_ms: int = 100
    samples: list[TegraSample] = field(default_factory=list)
    _process: TegrastatsProcess | None = None

    @staticmethod
    def available() -> bool:
        return TegrastatsProcess.available()

    def __enter__(self) -> TegraStats:
        self._process = TegrastatsProcess(self.interval_ms, self.samples.append)
        self._process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.stop()

    def summary(self) -> TegraSummary | None:
        return summarise(self.samples) if self.samples else None

"""Jetson memory and power while a row runs, from ``tegrastats`` (present on every JetPack).

On a Jetson, CPU and GPU share one memory, so there is no per-process GPU figure: the row
reports its own RSS, and this adds the board's RAM in use and its input power (mean, peak).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field

RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
# Orin (JetPack 5/6): "VDD_IN 4567mW/4500mW"; Xavier/Nano: "POM_5V_IN 3000/2900" (mW).
POWER = re.compile(r"\b(?:VDD_IN|POM_5V_IN) (\d+)(?:mW)?/(\d+)(?:mW)?")


@dataclass
class TegraSample:
    ram_used_mb: int | None
    power_mw: int | None


def parse_line(line: str) -> TegraSample:
    ram = RAM.search(line)
    power = POWER.search(line)
    return TegraSample(
        ram_used_mb=int(ram.group(1)) if ram else None, power_mw=int(power.group(1)) if power else None
    )


@dataclass
class TegraSummary:
    samples: int
    ram_used_mb_peak: float | None
    power_w_mean: float | None
    power_w_peak: float | None


def summarise(samples: list[TegraSample]) -> TegraSummary:
    ram = [s.ram_used_mb for s in samples if s.ram_used_mb is not None]
    power = [s.power_mw for s in samples if s.power_mw is not None]
    return TegraSummary(
        samples=len(samples),
        ram_used_mb_peak=float(max(ram)) if ram else None,
        power_w_mean=sum(power) / len(power) / 1000.0 if power else None,
        power_w_peak=max(power) / 1000.0 if power else None,
    )


@dataclass
class TegraStats:
    """``with TegraStats() as t: ...`` then ``t.summary()``; does nothing where tegrastats is absent."""

    interval_ms: int = 100
    samples: list[TegraSample] = field(default_factory=list)
    _proc: subprocess.Popen[str] | None = None
    _reader: threading.Thread | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("tegrastats") is not None

    def __enter__(self) -> TegraStats:
        exe = shutil.which("tegrastats")
        if exe is None:
            return self
        try:
            self._proc = subprocess.Popen(
                [exe, "--interval", str(self.interval_ms)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        except OSError:
            self._proc = None
            return self
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self.samples.append(parse_line(line))

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def summary(self) -> TegraSummary | None:
        return summarise(self.samples) if self.samples else None

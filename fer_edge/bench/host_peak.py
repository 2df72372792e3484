"""This CPU's peak multiply-add rates, from its instruction set, cores and clock, for ``--estimate host``.

A floor must be a rate no kernel beats, so it comes from the processor, not from a measured GEMM (a
1024³ MatMul through ONNX Runtime reached 38 GMAC/s here, where the model itself ran at 53). Peak =
MACs per cycle per core (two vector FMA pipes, as Intel and AMD cores since Haswell/Zen 2 and Arm's
Cortex-A78 have; VNNI's ``vpdpbusd`` does 4 byte products a 32-bit lane, ``vpmaddubsw`` + ``vpmaddwd``
take two instructions for it) x cores (the threads asked for; a hyperthread counts as a core, which
only lowers the floor) x the highest clock the kernel reports (cpufreq's maximum, else /proc/cpuinfo's
``cpu MHz``: in a VM a turbo clock above it can make the floor beatable, and the output says which).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np

from fer_edge.core.errors import FerEdgeError

FMA_PIPES = 2
# (flag, MACs per cycle per core, instruction path), best first: the first flag present sets the rate.
FP32_PATHS: Tuple[Tuple[str, int, str], ...] = (
    ("avx512f", FMA_PIPES * 16, "AVX-512 FMA"),
    ("fma", FMA_PIPES * 8, "AVX2 FMA"),
    ("asimd", FMA_PIPES * 4, "NEON FMA"),
    ("sse2", FMA_PIPES * 4, "SSE mul+add"),
)
INT8_PATHS: Tuple[Tuple[str, int, str], ...] = (
    ("amx_int8", 1024, "AMX INT8 tiles"),
    ("avx512_vnni", FMA_PIPES * 64, "AVX-512 VNNI vpdpbusd"),
    ("avx_vnni", FMA_PIPES * 32, "AVX-VNNI vpdpbusd"),
    ("avx512bw", FMA_PIPES * 32, "AVX-512BW vpmaddubsw"),
    ("avx2", FMA_PIPES * 16, "AVX2 vpmaddubsw"),
    ("i8mm", FMA_PIPES * 32, "NEON smmla (i8mm)"),
    ("asimddp", FMA_PIPES * 16, "NEON sdot"),
    ("asimd", FMA_PIPES * 8, "NEON smlal"),
    ("sse2", FMA_PIPES * 8, "SSE pmaddwd"),
)


def isa_rate(flags: Sequence[str], paths: Tuple[Tuple[str, int, str], ...]) -> Tuple[int, str]:
    """(MACs per cycle per core, the instruction path) of the best path the flags allow."""
    for flag, macs, name in paths:
        if flag in flags:
            return macs, name
    return paths[-1][1], f"{paths[-1][2]} (assumed: no SIMD flag read)"


@dataclass(frozen=True)
class HostPeaks:
    """Peak rates of a CPU; also the device that the roofline arithmetic takes."""

    fp32_gmacs: float
    int8_gmacs: float
    memory_gbs: float
    threads: int
    cpu: str
    ghz: float
    clock_source: str
    fp32_path: str
    int8_path: str
    basis: str = "isa"  # how the peak was found: cores x clock x MACs/cycle of the instruction set
    precisions: Tuple[str, str] = ("int8", "fp32")

    @property
    def name(self) -> str:
        return f"{self.cpu}, {self.threads} thread{'s' if self.threads != 1 else ''}"

    @property
    def memory_bandwidth_gbs(self) -> float:
        return self.memory_gbs

    def dense_tops(self, precision: str) -> float:
        """Peak operations (2 per multiply-add) per second, in units of 10^12."""
        if precision not in self.precisions:
            raise FerEdgeError(f"the host roofline has int8 and fp32 rates, not {precision!r}")
        return 2.0 * (self.int8_gmacs if precision == "int8" else self.fp32_gmacs) / 1e3

    @property
    def method(self) -> str:
        return (f"peak from the instruction set: {self.threads} core(s) x {self.ghz:.2f} GHz ({self.clock_source}) x "
                f"MACs/cycle: FP32 {self.fp32_path}, INT8 {self.int8_path}; memory: one numpy copy (read + write)")

    @property
    def caption(self) -> str:
        return (f"{self.name}: {self.int8_gmacs:.1f} INT8 GMAC/s, {self.fp32_gmacs:.1f} FP32 GMAC/s, "
                f"{self.memory_gbs:.1f} GB/s. {self.method}.\nEach layer max(compute, memory), summed; weights that "
                "stay in the CPU's cache can beat the DRAM term, so the floors below are the compute term alone.")

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "precisions"}, "method": self.method}


def host_peaks(
    threads: int, flags: Sequence[str], ghz: float, cpu: str, memory_gbs: float, clock_source: str
) -> HostPeaks:
    """The peaks of a CPU with these flags, at this clock, on ``threads`` cores (pure)."""
    if threads < 1 or ghz <= 0:
        raise FerEdgeError("threads must be at least 1 and the clock positive")
    fp32, fp32_path = isa_rate(flags, FP32_PATHS)
    int8, int8_path = isa_rate(flags, INT8_PATHS)
    return HostPeaks(fp32 * threads * ghz, int8 * threads * ghz, memory_gbs, threads, cpu, ghz, clock_source,
                     fp32_path, int8_path)


def copy_bandwidth_gbs(megabytes: int = 256, repeats: int = 7) -> float:
    """Bytes read + written per second (10^9) of one large numpy copy, median of ``repeats``: DRAM
    bandwidth on the low side (one thread; write-allocate moves a third more than is counted)."""
    src = np.arange(megabytes * 1_000_000 // 8, dtype=np.float64)
    dst = src.copy()  # every page of dst touched before timing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - start)
    return 2 * src.nbytes / statistics.median(times) / 1e9


def measure_host_peaks(
    threads: int, copy_mb: int = 256, on_stage: Optional[Callable[[str], None]] = None
) -> HostPeaks:
    """This machine's peaks: flags, cores and clock read here, the copy bandwidth measured."""
    from fer_edge.core.machine import CPU_MAX_FREQ, cpu_cores, cpu_flags, cpu_max_mhz, cpu_model

    if threads < 1 or copy_mb < 1:
        raise FerEdgeError("threads and copy size must be at least 1")
    mhz = cpu_max_mhz()
    if mhz is None:
        raise FerEdgeError("cannot read this CPU's clock (no cpufreq, no 'cpu MHz' in /proc/cpuinfo)")
    source = "cpufreq maximum" if CPU_MAX_FREQ.is_file() else "cpu MHz in /proc/cpuinfo; a turbo clock can be higher"
    (on_stage or (lambda _text: None))(f"memory copy, {copy_mb} MB")
    return host_peaks(min(threads, cpu_cores()), cpu_flags(everything=True), mhz / 1000.0, cpu_model(),
                      copy_bandwidth_gbs(copy_mb), source)


# Records written before the clock was: a high server clock, as a higher clock only lowers the floor.
UNRECORDED_GHZ = 3.5


def record_peaks(machine: dict[str, Any], threads: int, memory_gbs: float = float("inf")) -> HostPeaks:
    """The peaks of the machine a shipped result records (``machine_info``), on ``threads`` cores
    (no memory figure given: the compute term alone)."""
    mhz = machine.get("cpu_mhz")
    ghz, source = (mhz / 1000.0, "recorded") if mhz else (UNRECORDED_GHZ, "not recorded, assumed high")
    cores = min(threads, int(machine.get("cores") or threads))
    return host_peaks(cores, machine.get("cpu_flags") or [], ghz, str(machine.get("cpu")), memory_gbs, source)

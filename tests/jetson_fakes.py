"""A Jetson's command-line tools faked for the tests (no tests here): ``tegrastats`` printing a real
board's line at the interval it is asked for, and ``nvpmodel -q``."""

from __future__ import annotations

import stat
from pathlib import Path

# An AGX Orin line (JetPack 6 format) from github.com/GDWR/jetson_exporter issue #14, as in
# test_tegrastats.py, with the GPU busy (GR3D_FREQ 37% instead of the idle board's 0%).
AGX_ORIN = (
    "04-11-2025 10:36:27 RAM 4321/62801MB (lfb 1759x4MB) SWAP 19/31400MB (cached 0MB) "
    "CPU [0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729] "
    "EMC_FREQ 0%@2133 GR3D_FREQ 37%@[305,305] VIC_FREQ 729 APE 174 CV0@-256C CPU@44.562C Tboard@32C "
    "SOC2@40.093C Tdiode@33C SOC0@41.093C CV1@-256C GPU@-256C tj@44.343C SOC1@41.25C CV2@-256C "
    "VDD_GPU_SOC 2340mW/2340mW VDD_CPU_CV 390mW/390mW VIN_SYS_5V0 4025mW/4025mW NC 0mW/0mW "
    "VDDQ_VDD2_1V8AO 301mW/301mW NC 0mW/0mW"
)


def fake_tools(folder: Path, tegrastats_line: str, power_mode_text: str) -> Path:
    """``tegrastats --interval MS`` printing the line every interval, and ``nvpmodel -q``."""
    folder.mkdir()
    (folder / "tegrastats").write_text(
        "#!/bin/sh\n[ \"$1\" = --interval ] || exit 2\nwhile true; do\n"
        f"  echo '{tegrastats_line}'\n  sleep $(awk \"BEGIN {{print $2/1000}}\")\ndone\n"
    )
    (folder / "nvpmodel").write_text(f"#!/bin/sh\n[ \"$1\" = -q ] || exit 2\nprintf '{power_mode_text}'\n")
    for name in ("tegrastats", "nvpmodel"):
        (folder / name).chmod(stat.S_IRWXU)
    return folder

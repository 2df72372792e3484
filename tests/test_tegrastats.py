"""tegrastats lines from real boards: power per board (total rail, or the AGX rails summed),
temperatures per zone, GPU load, and the JetPack 4 / 5+ rail formats.

Every line below is copied from a public report of that board's output; where it came from is
noted beside it. No Orin Nano / Orin NX line was found in a public report: those boards print
the same rail names as the Xavier NX line of JetPack 5 (VDD_IN, VDD_CPU_GPU_CV, VDD_SOC, mW/avg),
which the Xavier NX case covers.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from fer_edge.core.tegrastats import parse_line, summarise

# AGX Orin 64GB, JetPack 5/6 format: github.com/GDWR/jetson_exporter issue #14 (2025-04-11).
AGX_ORIN = (
    "04-11-2025 10:36:27 RAM 4321/62801MB (lfb 1759x4MB) SWAP 19/31400MB (cached 0MB) "
    "CPU [0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729] "
    "EMC_FREQ 0%@2133 GR3D_FREQ 0%@[0,0] VIC_FREQ 729 APE 174 CV0@-256C CPU@44.562C Tboard@32C "
    "SOC2@40.093C Tdiode@33C SOC0@41.093C CV1@-256C GPU@-256C tj@44.343C SOC1@41.25C CV2@-256C "
    "VDD_GPU_SOC 2340mW/2340mW VDD_CPU_CV 390mW/390mW VIN_SYS_5V0 4025mW/4025mW NC 0mW/0mW "
    "VDDQ_VDD2_1V8AO 301mW/301mW NC 0mW/0mW"
)
# AGX Xavier, JetPack 4.2 (mW without units): github.com/martinkersner/gtop pull #7 (2019-06-17).
AGX_XAVIER = (
    "RAM 14700/15692MB (lfb 3x2MB) SWAP 898/8192MB (cached 23MB) "
    "CPU [0%@1190,0%@1190,0%@1190,0%@1190,0%@1190,0%@1190,0%@1190,0%@1190] EMC_FREQ 0% GR3D_FREQ 0% "
    "AO@30C GPU@30.5C Tboard@31C Tdiode@32C AUX@30.5C CPU@31.5C thermal@30.8C PMIC@100C "
    "GPU 463/463 CPU 618/618 SOC 2936/2936 CV 0/0 VDDRQ 309/309 SYS5V 3306/3306"
)
# Xavier NX, JetPack 5.1.2 (mW/avg, GR3D in brackets) and JetPack 4.1.1 (no units):
# github.com/waggle-sensor/jetson-exporter, tegrastats_test.go (TestParseTegraStatsXavierNX*).
XAVIER_NX_JP5 = (
    "07-09-2024 13:31:31 RAM 3168/6851MB (lfb 2x4MB) SWAP 161/3426MB (cached 0MB) "
    "CPU [23%@1397,17%@1192,16%@1190,13%@1190,23%@1190,10%@1190] EMC_FREQ 2%@204 GR3D_FREQ 0%@[114] "
    "VIC_FREQ 115 APE 150 AUX@45C CPU@46.5C thermal@45.6C AO@45C GPU@45.5C PMIC@50C "
    "VDD_IN 2763mW/2846mW VDD_CPU_GPU_CV 650mW/670mW VDD_SOC 650mW/711mW"
)
XAVIER_NX_JP4 = (
    "RAM 5246/7771MB (lfb 7x4MB) SWAP 983/20269MB (cached 280MB) "
    "CPU [47%@1420,23%@1420,32%@1420,22%@1420,31%@1420,96%@1420] EMC_FREQ 2%@1600 GR3D_FREQ 0%@1109 "
    "APE 150 MTS fg 1% bg 9% AO@29C GPU@31.5C PMIC@100C AUX@30C CPU@33.5C thermal@31.35C "
    "VDD_IN 6140/5510 VDD_CPU_GPU_CV 2706/2119 VDD_SOC 1074/1051"
)
# Nano, JetPack 4.6.1: github.com/waggle-sensor/jetson-exporter, tegrastats_test.go
# (TestParseTegraStatsXavierNanoJetPack461).
NANO = (
    "RAM 1923/3964MB (lfb 2x2MB) SWAP 191/1982MB (cached 6MB) IRAM 0/252kB(lfb 252kB) "
    "CPU [5%@1224,4%@1224,3%@1224,6%@1224] EMC_FREQ 0%@1600 GR3D_FREQ 0%@76 APE 25 PLL@37C CPU@40C "
    "PMIC@50C GPU@40C AO@45C thermal@40C POM_5V_IN 1750/1628 POM_5V_GPU 0/0 POM_5V_CPU 366/406"
)


def test_agx_orin_sums_its_rails_and_skips_sensors_that_are_off() -> None:
    s = parse_line(AGX_ORIN)
    assert s.power_mw == 2340 + 390 + 4025 + 301
    assert s.power_w == pytest.approx(7.056)
    assert s.power_source == "VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0+VDDQ_VDD2_1V8AO"
    assert s.rails_mw["NC"] == 0 and s.rails_mw["VIN_SYS_5V0"] == 4025
    assert s.ram_used_mb == 4321
    assert s.temps_c["tj"] == pytest.approx(44.343) and s.temps_c["CPU"] == pytest.approx(44.562)
    assert "GPU" not in s.temps_c and "CV0" not in s.temps_c  # -256C: the sensor is off
    assert s.gpu_load_pct == 0.0


def test_agx_xavier_sums_its_rails_in_the_jetpack4_format() -> None:
    s = parse_line(AGX_XAVIER)
    assert s.power_mw == 463 + 618 + 2936 + 0 + 309 + 3306
    assert s.power_source == "GPU+CPU+SOC+CV+VDDRQ+SYS5V"
    # The rail "GPU 463/463" and the zone "GPU@30.5C" are told apart.
    assert s.rails_mw["GPU"] == 463 and s.temps_c["GPU"] == 30.5
    assert s.gpu_load_pct == 0.0 and s.ram_used_mb == 14700


@pytest.mark.parametrize(("line", "power", "load"), [(XAVIER_NX_JP5, 2763, 0.0), (XAVIER_NX_JP4, 6140, 0.0)])
def test_boards_with_a_total_rail_report_it_not_a_sum(line: str, power: int, load: float) -> None:
    s = parse_line(line)
    assert s.power_mw == power and s.power_source == "VDD_IN"
    assert set(s.rails_mw) == {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}
    assert s.gpu_load_pct == load
    assert "MTS" not in s.rails_mw and "APE" not in s.rails_mw and "VIC_FREQ" not in s.rails_mw


def test_nano_reports_pom_5v_in_whose_gpu_and_cpu_rails_are_parts_of_it() -> None:
    s = parse_line(NANO)
    assert s.power_mw == 1750 and s.power_source == "POM_5V_IN"
    assert s.rails_mw == {"POM_5V_IN": 1750, "POM_5V_GPU": 0, "POM_5V_CPU": 366}
    assert "IRAM" not in s.rails_mw and s.temps_c["PLL"] == 37.0


def test_gpu_load_of_each_format_and_unknown_boards_give_no_power() -> None:
    assert parse_line("GR3D_FREQ 61%@[305,305]").gpu_load_pct == 61.0
    assert parse_line("GR3D_FREQ 40%@114 GR3D2_FREQ 60%@114").gpu_load_pct == 50.0
    unknown = parse_line("RAM 1/2MB VDD_SOMETHING 500mW/500mW")
    assert unknown.power_mw is None and unknown.rails_mw == {"VDD_SOMETHING": 500}
    nothing = parse_line("nothing here")
    assert (nothing.power_mw, nothing.gpu_load_pct, nothing.temps_c) == (None, None, {})


def test_summary_over_boards_uses_each_boards_power() -> None:
    summary = summarise([parse_line(AGX_ORIN), parse_line(NANO)])
    assert summary.power_w_peak == pytest.approx(7.056)
    assert summary.power_w_mean == pytest.approx((7.056 + 1.75) / 2)
    assert summary.ram_used_mb_peak == 4321


def test_a_tegrastats_that_dies_is_started_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tegrastats prints two lines and exits (killed, or crashed): the reader starts it again after
    its backoff, and stop() ends the one running and the reader."""
    from fer_edge.core.retry import Backoff
    from fer_edge.core.tegrastats import TegrastatsProcess

    tools = tmp_path / "bin"
    tools.mkdir()
    starts = tmp_path / "starts"
    (tools / "tegrastats").write_text(
        f"#!/bin/sh\necho started >> {starts}\necho 'RAM 1000/8000MB GR3D_FREQ 10%'\n"
        "echo 'RAM 1100/8000MB GR3D_FREQ 20%'\nexit 1\n"
    )
    (tools / "tegrastats").chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    samples: list[object] = []
    three = threading.Event()

    def keep(sample: object) -> None:
        samples.append(sample)
        if len(samples) >= 6:
            three.set()

    process = TegrastatsProcess(100, keep, backoff=Backoff(first=0.01, cap=0.05))
    assert process.start()
    assert three.wait(10), f"only {len(samples)} samples"
    process.stop()
    assert process.restarts >= 2 and starts.read_text().count("started") >= 3
    assert process._reader is None and process._proc is None
    count = starts.read_text().count("started")
    time.sleep(0.2)
    assert starts.read_text().count("started") == count  # stopped: never started again


def test_no_restart_where_tegrastats_is_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fer_edge.core.tegrastats import TegrastatsProcess

    monkeypatch.setenv("PATH", str(tmp_path))
    assert not TegrastatsProcess(100, lambda s: None).start()

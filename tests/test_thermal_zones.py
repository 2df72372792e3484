"""Throttle points and temperatures from a sysfs thermal tree laid out as a Jetson Orin's."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

from fer_edge.core.thermal_zones import temperatures, throttle_points, zone_label


def zone(root: Path, n: int, sensor: str, temp: str, trips: Dict[int, Tuple[str, str]]) -> None:
    d = root / f"thermal_zone{n}"
    d.mkdir(parents=True)
    (d / "type").write_text(sensor + "\n")
    (d / "temp").write_text(temp + "\n")
    for k, (kind, value) in trips.items():
        (d / f"trip_point_{k}_type").write_text(kind + "\n")
        (d / f"trip_point_{k}_temp").write_text(value + "\n")


def orin_tree(root: Path) -> None:
    # The sensors of an Orin module (JetPack 6): cpu/gpu/soc zones with a passive and a critical trip,
    # tj with both, and an absent sensor that reads -256 C.
    zone(root, 0, "cpu-thermal", "48312", {0: ("critical", "104500"), 1: ("passive", "99000")})
    zone(root, 1, "gpu-thermal", "46125", {0: ("critical", "104500"), 1: ("passive", "99000")})
    zone(root, 5, "tj-thermal", "48312", {0: ("critical", "104500"), 1: ("passive", "99000"), 2: ("passive", "95500")})
    zone(root, 7, "tboard_tegra", "-256000", {})
    zone(root, 8, "CV0-therm", "40000", {0: ("active", "50000")})


def test_passive_trips_are_the_throttle_points(tmp_path: Path) -> None:
    orin_tree(tmp_path)
    assert throttle_points(tmp_path) == {"cpu": 99.0, "gpu": 99.0, "tj": 95.5}


def test_temperatures_leave_out_absent_sensors(tmp_path: Path) -> None:
    orin_tree(tmp_path)
    assert temperatures(tmp_path) == {"cpu": 48.312, "gpu": 46.125, "tj": 48.312, "cv0": 40.0}


def test_a_machine_without_thermal_zones_has_none(tmp_path: Path) -> None:
    assert throttle_points(tmp_path / "absent") == {} and temperatures(tmp_path / "absent") == {}


def test_zone_labels_match_tegrastats_names() -> None:
    assert [zone_label(s) for s in ("CPU-therm", "cpu-thermal", "Tboard_tegra", "SOC0_thermal")] == [
        "cpu", "cpu", "tboard_tegra", "soc0"]

"""The board's own throttle points, from Linux's thermal zones (``/sys/class/thermal``).

Each ``thermal_zoneN`` names its sensor in ``type`` and lists trip points as
``trip_point_K_type`` / ``trip_point_K_temp`` (millidegrees Celsius). The first ``passive`` trip
is where the kernel starts to slow the clocks: reading it from the board, rather than writing a
number into an alert rule, keeps the "board hot" alert right for every Jetson module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

SYSFS_THERMAL = Path("/sys/class/thermal")


def zone_label(sensor: str) -> str:
    """``CPU-therm`` or ``cpu-thermal`` -> ``cpu``: the sensor name without its suffix, lower case."""
    name = sensor.strip().lower()
    for suffix in ("-therm", "-thermal", "_thermal"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def throttle_points(root: Path = SYSFS_THERMAL) -> Dict[str, float]:
    """Zone label -> its lowest passive trip point in degrees Celsius; zones without one are left out."""
    points: Dict[str, float] = {}
    for zone in sorted(root.glob("thermal_zone*")):
        sensor = _read(zone / "type")
        if not sensor:
            continue
        passive = []
        for trip_type in zone.glob("trip_point_*_type"):
            if _read(trip_type) != "passive":
                continue
            temp = _read(trip_type.with_name(trip_type.name.replace("_type", "_temp")))
            if temp and temp.lstrip("-").isdigit() and int(temp) > 0:
                passive.append(int(temp) / 1000.0)
        if passive:
            label = zone_label(sensor)
            points[label] = min(passive + ([points[label]] if label in points else []))
    return points


def temperatures(root: Path = SYSFS_THERMAL) -> Dict[str, float]:
    """Zone label -> its temperature now, in degrees Celsius (unreadable or implausible zones left out)."""
    temps: Dict[str, float] = {}
    for zone in sorted(root.glob("thermal_zone*")):
        sensor, raw = _read(zone / "type"), _read(zone / "temp")
        if not sensor or not raw or not raw.lstrip("-").isdigit():
            continue
        value = int(raw) / 1000.0
        if -40.0 <= value <= 150.0:  # an absent sensor reads -256 C on Jetsons (tegrastats prints it too)
            temps[zone_label(sensor)] = value
    return temps

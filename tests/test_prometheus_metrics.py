"""The families of ``run --metrics``: names and values read from the loop's metrics object, stage
histograms, the board's figures from a (fake) tegrastats, and ``/healthz``'s verdicts."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List

import pytest
from jetson_fakes import AGX_ORIN, fake_tools

from fer_edge.camera.board_metrics import BoardReader, BoardReading, power_mode
from fer_edge.camera.metrics import STAGE_BUCKETS_S, CameraMetrics
from fer_edge.camera.metrics_service import LoopHealth
from fer_edge.camera.prometheus_metrics import BuildInfo, RunCollector, file_sha256
from fer_edge.model.labels import FER2013_LABELS

prometheus_client = pytest.importorskip("prometheus_client", reason="the metrics extra is not installed")

BUILD = BuildInfo("1.2.3", "fer.int8.onnx", "ab" * 32, "yunet", "onnxruntime-cpu", "int8")


def exposition(collector: RunCollector) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the text format (exactly these labels)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    raise AssertionError(f"{name}{labels} not in the exposition")


def driven_camera(name: str = "cam0") -> CameraMetrics:
    metrics = CameraMetrics(name, labels=FER2013_LABELS, to_sync=lambda: 7)
    for ms in (0.5, 3.0, 40.0):
        metrics.frame({"capture": ms, "detect": 2 * ms, "track": 0.1, "classify": ms, "log": 0.0, "other": 0.0},
                      faces=2, seconds=0.05, detected=True)  # fmt: skip
    metrics.window_closed({"happy": 3, "sad": 1}, outage_s=1.5)
    metrics.log_state(written=4, held=2)
    metrics.source_state(reconnects=1, dropped_frames=5)
    metrics.camera_down(100.0)
    return metrics


def test_the_families_carry_the_metrics_object_values() -> None:
    text = exposition(RunCollector([driven_camera()], BUILD, sync_errors=lambda: 3))
    cam = {"camera": "cam0"}
    assert sample(text, "fer_edge_build_info", version="1.2.3", model="fer.int8.onnx", model_sha256="ab" * 32,
                  detector="yunet", backend="onnxruntime-cpu", precision="int8") == 1.0  # fmt: skip
    assert sample(text, "fer_edge_frames_total", **cam) == 3
    assert sample(text, "fer_edge_frames_dropped_total", **cam) == 5
    assert sample(text, "fer_edge_camera_up", **cam) == 0  # camera_down was the last event
    assert sample(text, "fer_edge_camera_reconnects_total", **cam) == 1
    assert sample(text, "fer_edge_outage_seconds_total", **cam) == 1.5
    assert sample(text, "fer_edge_faces", **cam) == 0  # a camera that is down shows no faces
    assert sample(text, "fer_edge_windows_written_total", **cam) == 4
    assert sample(text, "fer_edge_emotions_total", camera="cam0", emotion="happy") == 3
    assert sample(text, "fer_edge_emotions_total", camera="cam0", emotion="angry") == 0
    assert sample(text, "fer_edge_windows_held", **cam) == 2
    assert sample(text, "fer_edge_windows_unsynced") == 7
    assert sample(text, "fer_edge_sync_errors_total") == 3


def test_stage_histograms_count_each_frame_in_its_bucket() -> None:
    text = exposition(RunCollector([driven_camera()], BUILD))
    labels = {"camera": "cam0", "stage": "detect"}  # 1 ms, 6 ms and 80 ms
    bucket = lambda le: sample(text, "fer_edge_stage_seconds_bucket", le=le, **labels)  # noqa: E731
    assert [bucket("0.001"), bucket("0.005"), bucket("0.01"), bucket("0.05"), bucket("0.1"), bucket("+Inf")] == [
        1, 1, 2, 2, 3, 3]
    assert sample(text, "fer_edge_stage_seconds_count", **labels) == 3
    assert sample(text, "fer_edge_stage_seconds_sum", **labels) == pytest.approx(0.087)
    assert text.count('fer_edge_stage_seconds_bucket{camera="cam0",le=') == 6 * (len(STAGE_BUCKETS_S) + 1)


def test_values_are_read_at_scrape_time_not_copied() -> None:
    camera = CameraMetrics("cam0", labels=FER2013_LABELS)
    collector = RunCollector([camera], BUILD)
    assert sample(exposition(collector), "fer_edge_frames_total", camera="cam0") == 0
    camera.frame({"capture": 1.0}, faces=1, seconds=0.01, detected=False)
    assert sample(exposition(collector), "fer_edge_frames_total", camera="cam0") == 1


def test_many_cameras_each_have_their_label() -> None:
    text = exposition(RunCollector([driven_camera("door"), CameraMetrics("till", labels=FER2013_LABELS)], BUILD))
    assert sample(text, "fer_edge_frames_total", camera="door") == 3
    assert sample(text, "fer_edge_frames_total", camera="till") == 0
    assert sample(text, "fer_edge_camera_up", camera="till") == 1
    assert "fer_edge_windows_unsynced" in text  # the door's forwarder count
    assert "fer_edge_sync_errors_total" not in text  # no forwarder: not exported rather than 0


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_accepts_every_family() -> None:
    text = exposition(RunCollector([driven_camera()], BUILD, sync_errors=lambda: 0))
    done = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_file_sha256(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"abc")
    assert file_sha256(tmp_path / "m.onnx") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert file_sha256(tmp_path / "absent") == ""


# --- the board, from a fake tegrastats that prints a real line ------------------------------------


def orin_thermal(root: Path) -> Path:
    for n, (sensor, trip) in enumerate({"cpu-thermal": "99000", "tj-thermal": "95500"}.items()):
        zone = root / f"thermal_zone{n}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(sensor + "\n")
        (zone / "trip_point_0_type").write_text("passive\n")
        (zone / "trip_point_0_temp").write_text(trip + "\n")
    return root


def test_the_board_figures_come_from_tegrastats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tools = fake_tools(tmp_path / "bin", AGX_ORIN, "NV Fan Mode:quiet\\nNV Power Mode: MAXN\\n0\\n")
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    board = BoardReader(interval_ms=100, thermal_root=orin_thermal(tmp_path / "thermal")).start()
    try:
        deadline = time.monotonic() + 10
        while board.reading() is None:
            assert time.monotonic() < deadline, "no tegrastats line read in 10 s"
            time.sleep(0.05)
        text = exposition(RunCollector([CameraMetrics()], BUILD, board=board))
    finally:
        board.close()
    assert sample(text, "fer_edge_board_power_watts") == pytest.approx(7.056)
    assert sample(text, "fer_edge_board_temperature_celsius", zone="cpu") == pytest.approx(44.562)
    assert sample(text, "fer_edge_board_temperature_celsius", zone="tj") == pytest.approx(44.343)
    assert sample(text, "fer_edge_board_throttle_celsius", zone="tj") == 95.5
    assert sample(text, "fer_edge_board_gpu_load_ratio") == pytest.approx(0.37)
    assert sample(text, "fer_edge_board_power_mode_info", mode="MAXN", id="0") == 1
    assert 'zone="gpu"' not in text.split("fer_edge_board_throttle")[0]  # GPU@-256C: sensor off
    if shutil.which("promtool"):
        done = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr


def test_no_tegrastats_no_board_families(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    board = BoardReader().start()
    assert not board.available() and board.reading() is None
    assert "fer_edge_board" not in exposition(RunCollector([CameraMetrics()], BUILD, board=board))
    board.close()


def test_power_mode_of_older_and_unknown_nvpmodel(tmp_path: Path) -> None:
    tools = fake_tools(tmp_path / "bin", AGX_ORIN, "NV Power Mode: MODE_15W_6CORE\\n2\\n")
    assert power_mode(str(tools / "nvpmodel")) == ("MODE_15W_6CORE", "2")
    (tools / "nvpmodel").write_text("#!/bin/sh\necho nothing\n")
    assert power_mode(str(tools / "nvpmodel")) == (None, None)
    assert power_mode(str(tmp_path / "absent")) == (None, None)


# --- /healthz ----------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_health_starting_ok_down_and_stuck() -> None:
    cameras: List[CameraMetrics] = []
    clock = Clock()
    health = LoopHealth(cameras, stuck_after_s=30.0, clock=clock)
    assert health() == (False, "starting: the camera loop is not running yet")
    door, till = CameraMetrics("door"), CameraMetrics("till")
    cameras.extend([door, till])
    health.started()
    step: Dict[str, float] = {"capture": 1.0}
    door.frame(step, 0, 0.01, False)
    assert health() == (True, "")
    till.camera_down(clock.now)
    clock.now += 5
    door.frame(step, 0, 0.01, False)
    assert health() == (True, "down: till")
    door.camera_down(clock.now)
    assert health() == (False, "every camera is down (door, till)")
    door.camera_back()
    clock.now += 20
    assert health()[0]  # 20 s without a frame: not yet stuck
    clock.now += 11
    healthy, reason = health()
    assert not healthy and "stuck" in reason and "31 s" in reason
    door.frame(step, 0, 0.01, False)
    assert health() == (True, "down: till")


def test_a_loop_that_never_delivers_is_stuck() -> None:
    clock = Clock()
    health = LoopHealth([CameraMetrics()], stuck_after_s=30.0, clock=clock)
    health.started()
    assert health()[0]
    clock.now += 31
    assert not health()[0]


class FixedBoard(BoardReader):
    def __init__(self, reading: BoardReading) -> None:
        super().__init__()
        self._fixed = reading

    def reading(self) -> BoardReading:
        return self._fixed


def test_every_metric_the_alert_rules_use_is_exported() -> None:
    """The shipped rules and the collector agree on names (a renamed metric would silence an alert)."""
    import re

    rules = (Path(__file__).resolve().parents[1] / "scripts" / "prometheus" / "fer-edge-alerts.yml").read_text()
    used = set(re.findall(r"\bfer_edge_[a-z_]+", rules))
    board = FixedBoard(BoardReading(5.0, {"cpu": 50.0}, 0.5, "MAXN", "0", {"cpu": 99.0}))
    text = exposition(RunCollector([driven_camera()], BUILD, sync_errors=lambda: 0, board=board))
    exported = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")}
    assert used and used <= exported, used - exported

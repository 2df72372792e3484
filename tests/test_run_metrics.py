"""``fer-edge run --metrics`` end to end: bad values stop the run before the camera opens; a real
Prometheus scrapes a running camera; promtool reads its output; /healthz follows the camera; a
scraper that reads one byte a second does not slow the loop."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np
import pytest
from jetson_fakes import AGX_ORIN, fake_tools
from run_process import RunProcess, get
from stream_server import MjpegCamera, free_port
from test_camera_helpers import tiny_fer_model
from typer.testing import CliRunner

from fer_edge.cli import app

pytest.importorskip("cv2")
pytest.importorskip("prometheus_client", reason="the metrics extra is not installed")
PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
PROMTOOL = shutil.which("promtool")


def wait_until(what: str, check: Callable[[], bool], timeout: float = 60.0, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


# --- bad values: one line, non-zero exit, before the camera opens -------------------------------------


def run_cli(tmp_path: Path, *args: str) -> Tuple[int, str]:
    video = tmp_path / "v.avi"
    if not video.exists():
        from scenes import write_video

        write_video(video, [np.full((120, 160, 3), 90, np.uint8)] * 5)
    model = tiny_fer_model(tmp_path / "tiny.onnx")
    result = CliRunner().invoke(app, ["run", "--source", str(video), "--model", str(model),
                                      "--log", str(tmp_path / "mood.db"), *args])  # fmt: skip
    return result.exit_code, result.output


def assert_stopped_before_the_camera(tmp_path: Path, code: int, output: str, *needles: str) -> None:
    assert code == 2
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error:") or "--metrics" in lines[0], output
    for needle in needles:
        assert needle in lines[0], output
    assert "Traceback" not in output
    assert not (tmp_path / "mood.db").exists()  # the run never started: no log, so no camera either


@pytest.mark.parametrize("value", ["abc", "70000", "127.0.0.1:", "[::1]"])
def test_a_malformed_value_is_one_line(tmp_path: Path, value: str) -> None:
    code, output = run_cli(tmp_path, "--metrics", value)
    assert_stopped_before_the_camera(tmp_path, code, output, "--metrics", "PORT")


def test_an_address_that_is_not_local_needs_the_opt_in(tmp_path: Path) -> None:
    code, output = run_cli(tmp_path, "--metrics", "0.0.0.0:9464")
    assert_stopped_before_the_camera(tmp_path, code, output, "--metrics", "--metrics-public")


def test_the_opt_in_alone_is_an_error(tmp_path: Path) -> None:
    code, output = run_cli(tmp_path, "--metrics-public")
    assert_stopped_before_the_camera(tmp_path, code, output, "--metrics-public needs --metrics")


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, output = run_cli(tmp_path, "--metrics", str(port))
    assert_stopped_before_the_camera(tmp_path, code, output, f"--metrics 127.0.0.1:{port}", "in use")


# --- a real Prometheus scraping a running camera -------------------------------------------------------


class Prometheus:
    """Debian's prometheus on 127.0.0.1 (a free port), scraping ``target`` every second."""

    def __init__(self, folder: Path, target: str) -> None:
        assert PROMETHEUS is not None
        folder.mkdir()
        config = folder / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: fer-edge\n    scrape_timeout: 1s\n"
            f"    static_configs:\n      - targets: ['{target}']\n        labels:\n          store: test-01\n"
        )
        self.port = free_port()
        self.log = (folder / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_until("Prometheus to be ready", lambda: get(f"{self.url}/-/ready", 2.0)[0] == 200, 60)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, expr: str) -> List[dict]:
        status, body = get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert status == 200, body
        data = json.loads(body)
        assert data["status"] == "success", data
        return list(data["data"]["result"])

    def value(self, expr: str) -> Optional[float]:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.mark.slow
@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (Debian: apt-get install prometheus)")
def test_a_real_prometheus_scrapes_a_running_camera(tmp_path: Path) -> None:
    camera = MjpegCamera(fps=15).start()
    port = free_port()
    # A Jetson's tegrastats and nvpmodel (faked: this is not a Jetson) on the run's PATH.
    jetson = fake_tools(tmp_path / "jetson-bin", AGX_ORIN, "NV Power Mode: MAXN\\n0\\n")
    run = RunProcess(tmp_path, camera.url(), "--metrics", f"127.0.0.1:{port}", path=jetson)
    prometheus: Optional[Prometheus] = None
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until("the loop to be healthy", lambda: get(f"{endpoint}/healthz", 2.0)[0] == 200, 90)
        prometheus = Prometheus(tmp_path / "prometheus", f"127.0.0.1:{port}")
        seen: List[float] = []

        def frames_rising() -> bool:
            value = prometheus.value('fer_edge_frames_total{camera="cam0",store="test-01"}') if prometheus else None
            if value is not None and (not seen or value != seen[-1]):
                seen.append(value)
            return len(seen) >= 3

        wait_until("fer_edge_frames_total to rise in Prometheus", frames_rising, 60, every=0.5)
        assert seen == sorted(seen) and seen[0] < seen[-1], seen
        assert prometheus.value('fer_edge_camera_up{camera="cam0"}') == 1.0
        info = prometheus.query("fer_edge_build_info")
        assert len(info) == 1 and info[0]["metric"]["model"] == "tiny.onnx"
        assert len(info[0]["metric"]["model_sha256"]) == 64
        assert prometheus.value('fer_edge_stage_seconds_count{camera="cam0",stage="detect"}') is not None
        assert prometheus.value('up{job="fer-edge"}') == 1.0
        assert prometheus.value("fer_edge_board_power_watts") == pytest.approx(7.056)
        assert prometheus.value('fer_edge_board_temperature_celsius{zone="cpu"}') == pytest.approx(44.562)
        assert prometheus.query('fer_edge_board_power_mode_info{mode="MAXN"}')

        # promtool reads what the running camera serves.
        status, text = get(f"{endpoint}/metrics")
        assert status == 200
        if PROMTOOL:
            done = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True,
                                  timeout=60)  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr

        # The camera goes away: camera_up 0 in Prometheus, /healthz 503 (the only camera is down).
        camera.stop()
        wait_until("camera_up 0", lambda: prometheus is not None
                   and prometheus.value('fer_edge_camera_up{camera="cam0"}') == 0.0, 60, every=0.5)  # fmt: skip
        status, body = get(f"{endpoint}/healthz")
        assert status == 503 and "every camera is down (cam0)" in body
        camera.start()
        wait_until("the camera back", lambda: get(f"{endpoint}/healthz", 2.0)[0] == 200, 60, every=0.5)
    finally:
        camera.stop()
        if prometheus is not None:
            prometheus.close()
        code = run.finish()
    assert code == 0, run.lines
    assert any(line.startswith(f"metrics: http://127.0.0.1:{port}/metrics") for line in run.lines), run.lines


# --- a slow scraper does not stall frames ---------------------------------------------------------------


def total_fps(lines: List[str]) -> float:
    total = [line for line in lines if line.startswith("total: ")]
    assert total, lines
    return float(total[-1].split(" | ")[1].split()[0])


def slow_reader(port: int, path: str, stop: threading.Event, got: List[int]) -> None:
    """Connects as soon as the port answers, asks for ``path`` and reads one byte a second."""
    deadline = time.monotonic() + 60
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=1.0)
            break
        except OSError:
            time.sleep(0.05)
    else:
        return
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        while True:
            try:
                if sock.recv(1):
                    got[0] += 1
            except OSError:
                return
            if stop.wait(1.0):
                return


@pytest.mark.slow
def test_a_scraper_reading_one_byte_a_second_does_not_stall_frames(tmp_path: Path) -> None:
    from scenes import background, write_video

    scenes = [background(320, 240, np.random.default_rng(i)) for i in range(8)]
    # Long enough (seconds at full speed) for the scrapers to be mid-response for most of the run.
    video = write_video(tmp_path / "long.avi", [scenes[i % 8] for i in range(900)], fps=30.0)
    fps = {}
    for name in ("free", "slow", "free again"):
        port = free_port()
        folder = tmp_path / name.replace(" ", "_")
        folder.mkdir()
        stop, got = threading.Event(), [0]
        readers = []
        if name == "slow":
            readers = [threading.Thread(target=slow_reader, args=(port, p, stop, got), daemon=True)
                       for p in ("/metrics", "/metrics", "/healthz")]  # fmt: skip
            for reader in readers:
                reader.start()
        # The detector on every frame: a few seconds of work, each frame as costly as the next.
        run = RunProcess(folder, str(video), "--metrics", f"127.0.0.1:{port}", "--detect-every", "1")
        try:
            run.proc.wait(timeout=120)
        finally:
            stop.set()
            code = run.finish()
        for reader in readers:
            reader.join(timeout=5)
        assert code == 0, run.lines
        fps[name] = total_fps(run.lines)
        if name == "slow":
            assert got[0] >= 3, ("the slow scrapers were not reading during the run", got, run.lines[-3:])
    print("loop fps with and without a slow scraper:", fps)
    baseline = max(fps["free"], fps["free again"])
    # A blocked loop would stop dead while the scraper dawdles (seconds per byte); the bound leaves
    # room for the noise of a shared test machine, not for a stall.
    assert fps["slow"] >= 0.5 * baseline, fps

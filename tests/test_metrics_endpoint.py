"""The metrics endpoint: address rules, a port in use, Prometheus's text format, /healthz, slow scrapers."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from typing import Iterable, List, Tuple

import pytest
from run_process import get

from fer_edge.camera.metrics_endpoint import MetricsEndpoint, parse_metrics_address
from fer_edge.core.errors import FerEdgeError

prometheus_client = pytest.importorskip("prometheus_client", reason="the metrics extra is not installed")


@pytest.mark.parametrize("value, expected", [
    ("9464", ("127.0.0.1", 9464)),
    ("127.0.0.1:9100", ("127.0.0.1", 9100)),
    ("localhost:9464", ("localhost", 9464)),
    ("[::1]:9464", ("::1", 9464)),
    (" 9464 ", ("127.0.0.1", 9464)),
])
def test_local_addresses_are_accepted(value: str, expected: Tuple[str, int]) -> None:
    assert parse_metrics_address(value) == expected


@pytest.mark.parametrize("value", ["", "abc", "9464x", "0", "65536", "127.0.0.1:", ":9464", "1.2.3.4:-1", "[::1]"])
def test_malformed_values_are_one_line(value: str) -> None:
    with pytest.raises(FerEdgeError) as err:
        parse_metrics_address(value)
    message = str(err.value)
    assert message.startswith("--metrics") and "\n" not in message


@pytest.mark.parametrize("value", ["0.0.0.0:9464", "192.168.1.20:9464", "[::]:9464", "board.local:9464"])
def test_other_addresses_need_the_opt_in(value: str) -> None:
    with pytest.raises(FerEdgeError, match="--metrics-public"):
        parse_metrics_address(value)
    host, port = parse_metrics_address(value, public=True)
    assert port == 9464 and host


def gauge_families() -> Iterable[object]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    up = GaugeMetricFamily("fer_edge_camera_up", "1 while the camera delivers frames", labels=["camera"])
    up.add_metric(["cam0"], 1)
    frames = CounterMetricFamily("fer_edge_frames", "Frames processed", labels=["camera"])
    frames.add_metric(["cam0"], 42)
    return [up, frames]


@pytest.fixture()
def endpoint() -> Iterable[MetricsEndpoint]:
    state = {"healthy": True}
    ep = MetricsEndpoint(gauge_families, lambda: (state["healthy"], "" if state["healthy"] else "every camera down"))
    ep.start("127.0.0.1", 0)
    ep.state = state  # type: ignore[attr-defined]
    yield ep
    ep.close()


def test_metrics_are_served_in_the_text_format(endpoint: MetricsEndpoint) -> None:
    host, port = endpoint.address
    status, body = get(f"http://{host}:{port}/metrics")
    assert status == 200
    assert 'fer_edge_camera_up{camera="cam0"} 1.0' in body
    assert 'fer_edge_frames_total{camera="cam0"} 42.0' in body


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_accepts_the_output(endpoint: MetricsEndpoint) -> None:
    host, port = endpoint.address
    _, body = get(f"http://{host}:{port}/metrics")
    done = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_healthz_follows_the_health_check(endpoint: MetricsEndpoint) -> None:
    host, port = endpoint.address
    assert get(f"http://{host}:{port}/healthz") == (200, "ok\n")
    endpoint.state["healthy"] = False  # type: ignore[attr-defined]
    status, body = get(f"http://{host}:{port}/healthz")
    assert status == 503 and "every camera down" in body


def test_a_port_in_use_is_one_line() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        ep = MetricsEndpoint(gauge_families, lambda: (True, ""))
        with pytest.raises(FerEdgeError) as err:
            ep.start("127.0.0.1", port)
        assert str(err.value) == f"--metrics 127.0.0.1:{port}: cannot listen: the port is in use"
    finally:
        taken.close()


def test_a_slow_scraper_blocks_nobody(endpoint: MetricsEndpoint) -> None:
    """A client that reads one byte a second holds its own thread; others are answered at once."""
    host, port = endpoint.address
    slow = socket.create_connection((host, port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    slow.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
    try:
        got: List[bytes] = [slow.recv(1)]
        times = []
        for _ in range(5):
            start = time.perf_counter()
            status, _ = get(f"http://{host}:{port}/metrics", timeout=2.0)
            times.append(time.perf_counter() - start)
            assert status == 200
            got.append(slow.recv(1))
            time.sleep(0.2)
        assert max(times) < 1.0, times
        assert all(got)
    finally:
        slow.close()


def test_a_silent_client_blocks_nobody(endpoint: MetricsEndpoint) -> None:
    """A client that connects and never sends its request does not hold the server."""
    host, port = endpoint.address
    idle = socket.create_connection((host, port))
    try:
        start = time.perf_counter()
        assert get(f"http://{host}:{port}/healthz", timeout=2.0)[0] == 200
        assert time.perf_counter() - start < 1.0
    finally:
        idle.close()

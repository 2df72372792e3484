"""``fer-edge run --metrics``: the camera loop's numbers over HTTP, for Prometheus, and ``/healthz``.

``/metrics`` is rendered by ``prometheus_client`` (the official library) from a collector that
reads the loop's metrics object when Prometheus scrapes: the endpoint keeps no second bookkeeping.
The server answers each request in a daemon thread of its own, so a scraper that reads slowly
holds only its own thread, never the camera loop. It binds to 127.0.0.1 unless asked: the
endpoint has no authentication, and a store network is no place for an open port.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from socketserver import ThreadingMixIn
from typing import Any, Callable, Iterable, List, Optional, Tuple
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from fer_edge.core.errors import FerEdgeError, missing_dependency

DEFAULT_HOST = "127.0.0.1"
# Health: (healthy, reason). Called per /healthz request, from the server's thread.
HealthCheck = Callable[[], Tuple[bool, str]]


def parse_metrics_address(value: str, public: bool = False) -> Tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPV6]:PORT`` -> (host, port); only loopback unless ``public``."""
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = DEFAULT_HOST, text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise FerEdgeError(f"--metrics {value!r}: expected PORT, HOST:PORT or [IPV6]:PORT with a port in 1..65535")
    if not public and not is_loopback(host):
        raise FerEdgeError(
            f"--metrics {value!r}: {host} is not a local address; the endpoint has no authentication, so "
            "serving it beyond this machine needs --metrics-public (or use 127.0.0.1 and a local agent)"
        )
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a stalled scraper never keeps the process from exiting
    allow_reuse_address = True


class _IPv6Server(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Scrapes every 15 s would fill the journal; the loop's own lines say what matters."""


def import_prometheus_client() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise missing_dependency("prometheus_client", "--metrics", "pip install 'fer-edge[metrics]'") from exc
    return prometheus_client


class MetricsEndpoint:
    """A registry with one collector, served at ``/metrics``; ``/healthz`` from ``health``."""

    def __init__(self, collect: Callable[[], Iterable[Any]], health: HealthCheck) -> None:
        prometheus_client = import_prometheus_client()
        from prometheus_client.registry import CollectorRegistry

        self._collector = _Collector(collect)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self._collector)
        self._metrics_app = prometheus_client.make_wsgi_app(self.registry)
        self._health = health
        self._server: Optional[WSGIServer] = None
        self._thread: Optional[threading.Thread] = None

    def start(self, host: str, port: int) -> None:
        """Bind now, so that a port in use is an error before the camera opens."""
        server_class = _IPv6Server if ":" in host else _ThreadingServer
        try:
            self._server = make_server(host, port, self._app, server_class, handler_class=_QuietHandler)
        except OSError as exc:
            reason = "the port is in use" if exc.errno in (98, 48) else (exc.strerror or str(exc))
            raise FerEdgeError(f"--metrics {host}:{port}: cannot listen: {reason}") from exc
        self._thread = threading.Thread(target=self._server.serve_forever, name="fer-edge-metrics", daemon=True)
        self._thread.start()

    @property
    def address(self) -> Tuple[str, int]:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> MetricsEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _app(self, environ: dict, start_response: Callable) -> List[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            healthy, reason = self._health()
            body = (("ok" if healthy else "unhealthy") + (f": {reason}" if reason else "") + "\n").encode()
            start_response("200 OK" if healthy else "503 Service Unavailable",
                           [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
            return [body]
        result: List[bytes] = self._metrics_app(environ, start_response)
        return result


class _Collector:
    """prometheus_client's custom-collector protocol: ``collect()`` yields metric families."""

    def __init__(self, collect: Callable[[], Iterable[Any]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Any]:
        return list(self._collect())

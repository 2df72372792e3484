"""A live camera for the tests: an MJPEG stream over HTTP on 127.0.0.1 that can go away and come back
(no tests here). OpenCV's FFmpeg backend opens it like an IP camera's ``http://.../video.mjpg``."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional

import numpy as np

BOUNDARY = "fer-edge-frame"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


class MjpegCamera:
    """``start()`` serves frames at ``fps`` on ``url``; ``stop()`` closes the listening socket and
    every open stream (the camera is gone: connections are refused); ``start()`` again brings it back."""

    def __init__(self, fps: float = 10.0, port: Optional[int] = None, size: tuple = (240, 320)) -> None:
        import cv2

        self.fps = fps
        self.port = port or free_port()
        frame = np.full((*size, 3), 128, np.uint8)
        cv2.putText(frame, "fer-edge", (20, size[0] // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
        self.jpeg = cv2.imencode(".jpg", frame)[1].tobytes()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._alive = threading.Event()
        self._sockets: List[socket.socket] = []
        self.served = 0

    def url(self, userinfo: str = "", query: str = "") -> str:
        auth = f"{userinfo}@" if userinfo else ""
        return f"http://{auth}127.0.0.1:{self.port}/video.mjpg" + (f"?{query}" if query else "")

    def start(self) -> MjpegCamera:
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                camera._sockets.append(self.connection)
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                try:
                    while camera._alive.is_set():
                        part = (
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(camera.jpeg)}\r\n\r\n"
                        ).encode()
                        self.wfile.write(part + camera.jpeg + b"\r\n")
                        camera.served += 1
                        time.sleep(1.0 / camera.fps)
                except OSError:
                    pass

        self._alive.set()
        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._alive.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for sock in self._sockets:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)
        self._sockets.clear()

"""``fer-edge run`` in a subprocess for the end-to-end tests (its output lines collected by a
thread), and a plain HTTP GET (no tests here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from queue import Empty, Queue
from typing import Callable, List, Optional, Tuple

from test_camera_helpers import tiny_fer_model

REPO = Path(__file__).resolve().parents[1]


def get(url: str, timeout: float = 5.0) -> Tuple[int, str]:
    """The status and body of a GET; status 0 and the reason when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as err:
        return 0, str(err)


class RunProcess:
    """``fer-edge run --source SOURCE`` with a tiny model, 1-s windows and a stats line a second;
    ``db``: the mood log (default ``tmp_path/mood.db``); ``path``: a folder put first on PATH (fake
    Jetson tools)."""

    def __init__(
        self, tmp_path: Path, source: str, *extra: str, db: Optional[Path] = None, path: Optional[Path] = None
    ) -> None:
        self.db = db or tmp_path / "mood.db"
        model = tiny_fer_model(tmp_path / "tiny.onnx")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fer_edge", "run", "--source", source, "--model", str(model),
             "--log", str(self.db), "--window", "1", "--stats-every", "1", *extra],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO),
                 "PATH": f"{path}{os.pathsep}{os.environ['PATH']}" if path else os.environ["PATH"]},
        )  # fmt: skip
        self.lines: List[str] = []
        self._queue: Queue[str] = Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def drain(self) -> None:
        """Collect the lines printed so far."""
        while True:
            try:
                self.lines.append(self._queue.get_nowait())
            except Empty:
                return

    def wait_for(self, test: Callable[[str], bool], count: int = 1, timeout: float = 60.0) -> None:
        """Until ``count`` lines pass ``test``; AssertionError with the output after ``timeout``."""
        deadline = time.monotonic() + timeout
        while sum(test(line) for line in self.lines) < count:
            try:
                self.lines.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except Empty:
                raise AssertionError(f"timed out waiting; output so far: {self.lines}") from None

    def stop(self, sig: int, timeout: float = 30.0) -> Tuple[int, float, float]:
        """Signal the run; its exit code, seconds to its last line ("stopped ...": window flushed, log
        closed) and seconds to the end of the process (the interpreter's own teardown added)."""
        t = time.monotonic()
        self.proc.send_signal(sig)
        stopped = None
        deadline = t + timeout
        while stopped is None and time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.05)
            except Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.lines.append(line)
            if line.startswith("stopped ("):
                stopped = time.monotonic() - t
        self.proc.wait(timeout=timeout)
        took = time.monotonic() - t
        time.sleep(0.2)
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return self.proc.returncode, stopped if stopped is not None else took, took

    def finish(self, timeout: float = 60.0) -> int:
        """SIGTERM unless it ended; its exit code once it has (killed after ``timeout``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        time.sleep(0.1)
        self.drain()
        return self.proc.returncode

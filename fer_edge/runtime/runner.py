"""The runner interface both networks use: named arrays in, named arrays out.

Modelled on Polygraphy's runners (``polygraphy/backend/base/runner.py``): the public
:meth:`Runner.activate`, :meth:`Runner.infer` and :meth:`Runner.deactivate` check state and
time the call, then call the ``*_impl`` methods each runtime overrides. A runner is a context
manager::

    with OnnxRuntimeRunner(path) as runner:
        outputs = runner.infer({"input": batch})      # dict name -> ndarray
        print(runner.last_latency_ms, runner.last_gpu_ms, runner.last_host_ms)

The model-specific parts (the classifier's 48x48 batches, YuNet's decoding) live in adapters
over these runners, so a session or an engine is opened, run and closed in one place.
"""

from __future__ import annotations

import abc
import time
from pathlib import Path
from types import TracebackType
from typing import Dict, Mapping, TypeVar

import numpy as np

from fer_edge.core.errors import FerEdgeError

Feed = Mapping[str, np.ndarray]
Outputs = Dict[str, np.ndarray]
_L = TypeVar("_L", bound="Lifecycle")


class Lifecycle(abc.ABC):
    """Polygraphy's lifecycle, shared by the runners and the classifier adapters over them:
    :meth:`activate` once (again is an error), :meth:`deactivate` any number of times, and a
    context manager that activates on entry unless already active."""

    name: str = "runner"
    kind: str = "runner"  # the word the "already active" error uses
    path: Path
    is_active: bool = False

    @abc.abstractmethod
    def activate_impl(self) -> None:
        """Create the session / engine / buffers."""

    @abc.abstractmethod
    def deactivate_impl(self) -> None:
        """Release what :meth:`activate_impl` created (also after a failed activation)."""

    def activate(self) -> None:
        if self.is_active:
            raise FerEdgeError(f"{self.name} {self.kind} is already active", path=self.path)
        self.activate_impl()
        self.is_active = True

    def deactivate(self) -> None:
        """Release resources; calling it when inactive does nothing."""
        if not self.is_active:
            return
        try:
            self.deactivate_impl()
        finally:
            self.is_active = False

    def __enter__(self: _L) -> _L:
        if not self.is_active:
            self.activate()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.deactivate()


class Runner(Lifecycle):
    """A loaded network that maps named input arrays to named output arrays.

    Timing of the last :meth:`infer`: ``last_latency_ms`` is the wall time of the call;
    ``last_gpu_ms`` the device time (CUDA events around the copies and the kernels, where the
    runtime has events, else None); ``last_host_ms`` the rest of the wall time (host copies into
    pinned memory, shape changes, waits), None where there is no device time to subtract.
    """

    name: str = "runner"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.is_active = False
        self.last_latency_ms: float | None = None
        self.last_gpu_ms: float | None = None
        self.last_host_ms: float | None = None

    @abc.abstractmethod
    def infer_impl(self, feed: Feed) -> Outputs:
        """Run the network on ``feed``; set ``last_gpu_ms`` where device time is known."""

    def infer(self, feed: Feed) -> Outputs:
        """The network's outputs by name; activates the runner on first use."""
        if not self.is_active:
            self.activate()
        self.last_gpu_ms = None
        start = time.perf_counter()
        outputs = self.infer_impl(feed)
        self.last_latency_ms = (time.perf_counter() - start) * 1000.0
        self.last_host_ms = host_overhead_ms(self.last_latency_ms, self.last_gpu_ms)
        return outputs

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.path}>"


def host_overhead_ms(wall_ms: float, gpu_ms: float | None) -> float | None:
    """Wall time not spent in device work (never negative: the clocks differ slightly)."""
    if gpu_ms is None:
        return None
    return max(wall_ms - gpu_ms, 0.0)

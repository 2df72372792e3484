"""The one inference interface: a backend runs a fer-edge model on raw-pixel face batches.

Modelled on Polygraphy's runners: the public :meth:`Backend.activate`, :meth:`Backend.infer`
and :meth:`Backend.deactivate` validate their input and state, then call the ``*_impl``
methods each backend overrides. A backend is a context manager::

    with load_backend("fer2013.int8.onnx") as model:
        logits = model.infer(faces)          # uint8 [N, 48, 48] -> float32 [N, C]
        print(model.labels, model.last_latency_ms)
"""

from __future__ import annotations

import abc
import json
import time
from pathlib import Path

import numpy as np

from fer_edge.core.errors import FerEdgeError
from fer_edge.runtime.runner import Lifecycle, host_overhead_ms

IMAGE_SIZE = 48
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")


def prepare_batch(batch: np.ndarray) -> np.ndarray:
    """A face batch as the model input: float32 ``[N, 1, 48, 48]`` raw pixels, C-contiguous.

    Accepts uint8 or float arrays shaped ``[N, 48, 48]``, ``[N, 1, 48, 48]`` or one ``[48, 48]``
    face. Values stay raw (0..255): normalisation is inside the model.
    """
    arr = np.asarray(batch)
    if arr.dtype != np.uint8 and not np.issubdtype(arr.dtype, np.floating):
        raise FerEdgeError(f"face batch must be uint8 or float pixels, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1:] != (1, IMAGE_SIZE, IMAGE_SIZE):
        raise FerEdgeError(
            f"face batch must be shaped [N, 48, 48] or [N, 1, 48, 48], got {list(np.shape(batch))}"
        )
    if arr.shape[0] == 0:
        raise FerEdgeError("face batch is empty")
    return np.ascontiguousarray(arr, dtype=np.float32)


def metadata_for(labels: tuple[str, ...], dataset: str, arch: str = "", version: str = "") -> dict[str, str]:
    """Model-file-contract metadata for a model that is not an ONNX file (checkpoint, engine)."""
    meta = {"labels": json.dumps(list(labels)), "dataset": dataset}
    if arch:
        meta["arch"] = arch
    if version:
        meta["fer_edge_version"] = version
    return meta


class Backend(Lifecycle):
    """A loaded model that turns raw-pixel face batches into logits.

    Subclasses set :attr:`name` and :attr:`precision` and implement the ``*_impl`` methods.
    ``labels``, ``dataset`` and ``metadata`` are known before activation (read from the
    model file's metadata), so a caller can check them without paying for a session.
    """

    name: str = "backend"
    kind: str = "backend"

    def __init__(
        self,
        path: str | Path,
        labels: tuple[str, ...],
        dataset: str,
        metadata: dict[str, str],
        precision: str = "fp32",
    ) -> None:
        if precision not in PRECISIONS:
            raise FerEdgeError(f"unknown precision {precision!r}", path=path)
        self.path = Path(path)
        self.labels = tuple(labels)
        self.dataset = dataset
        self.metadata = dict(metadata)
        self.precision = precision
        self.last_latency_ms: float | None = None
        # GPU backends: device time of the last call from CUDA events on its stream (copies
        # included, host work not). Wall time at batch 1 is mostly launch overhead on a big GPU; this is not.
        self.last_gpu_ms: float | None = None
        # Wall time of the last call not spent in device work (pinned copies, shape changes, the
        # host's waits between chunks); None where there is no device time.
        self.last_host_ms: float | None = None
        self.is_active = False

    # -- what a backend implements -------------------------------------------------------
    @abc.abstractmethod
    def activate_impl(self) -> None:
        """Create the session / context / buffers."""

    @abc.abstractmethod
    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        """Run float32 ``[N, 1, 48, 48]`` through the model; return logits ``[N, C]``."""

    @abc.abstractmethod
    def deactivate_impl(self) -> None:
        """Release what :meth:`activate_impl` created."""

    # -- the public interface --------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Logits float32 ``[N, C]`` for a face batch (see :func:`prepare_batch`).

        Activates the backend on first use if the caller did not; :attr:`last_latency_ms`
        covers the model call only (copies included for GPU backends, preprocessing not).
        """
        if not self.is_active:
            self.activate()
        x = prepare_batch(batch)
        start = time.perf_counter()
        out = self.infer_impl(x)
        self.last_latency_ms = (time.perf_counter() - start) * 1000.0
        self.last_host_ms = host_overhead_ms(self.last_latency_ms, self.last_gpu_ms)
        logits = np.asarray(out, dtype=np.float32)
        if logits.shape != (x.shape[0], self.num_classes):
            raise FerEdgeError(
                f"{self.name} returned logits shaped {list(logits.shape)}, expected "
                f"[{x.shape[0]}, {self.num_classes}] (labels in metadata: {self.num_classes})",
                path=self.path,
            )
        return logits

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.precision} {self.path}>"

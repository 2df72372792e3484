"""PyTorch backend: a fer-edge checkpoint (``.pt``) on the CPU or a CUDA GPU.

torch is imported only when a checkpoint is opened, so the package stays torch-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.core.errors import FerEdgeError
from fer_edge.runtime.classifier_base import Backend, metadata_for

TORCH_DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


def choose_torch_device(device: str, cuda_available: bool) -> str:
    """``cpu`` or ``cuda``: ``auto`` takes CUDA when torch sees a GPU; ``cuda`` without one is refused."""
    if device == "auto":
        return "cuda" if cuda_available else "cpu"
    if device == "cpu":
        return "cpu"
    if device == "cuda":
        if not cuda_available:
            raise FerEdgeError("device 'cuda' asked for, but torch sees no CUDA GPU here")
        return "cuda"
    raise FerEdgeError(
        f"device {device!r} does not run a PyTorch checkpoint; choose one of: {', '.join(TORCH_DEVICES)} "
        "(for TensorRT, export to ONNX and run fer-edge build-engine)"
    )


class TorchBackend(Backend):
    """Runs a fer-edge checkpoint's model (EMA weights where saved) in eval mode."""

    def __init__(
        self,
        path: str | Path,
        checkpoint: dict[str, Any],
        device: str = "auto",
        threads: int | None = None,
    ) -> None:
        from fer_edge import __version__
        from fer_edge.core.optional import import_torch

        labels = tuple(str(x) for x in checkpoint["labels"])
        dataset = str(checkpoint["dataset"])
        arch = str(checkpoint.get("arch", ""))
        version = str(checkpoint.get("fer_edge_version", __version__))
        super().__init__(path, labels, dataset, metadata_for(labels, dataset, arch, version), "fp32")
        if threads is not None and threads < 1:
            raise FerEdgeError(f"threads must be >= 1, got {threads}")
        self._torch = import_torch()
        self.device = choose_torch_device(device, bool(self._torch.cuda.is_available()))
        self.name = f"torch-{self.device}"
        self.threads = threads
        self._checkpoint = checkpoint
        self._model: Any = None
        self._events: tuple[Any, Any] | None = None

    def activate_impl(self) -> None:
        from fer_edge.model.checkpoint import model_from_checkpoint

        if self.threads is not None:
            self._torch.set_num_threads(self.threads)
        self._model = model_from_checkpoint(self._checkpoint, path=self.path).to(self.device)
        if self.device == "cuda":
            cuda = self._torch.cuda
            self._events = (cuda.Event(enable_timing=True), cuda.Event(enable_timing=True))

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            if self._events is not None:
                self._events[0].record()
            x = torch.from_numpy(batch).to(self.device, non_blocking=True)
            out = self._model(x).float()
            if self._events is None:
                logits = out.cpu()
            else:
                # The end event goes on the stream right behind the copy back, before the host
                # waits: GPU time is device work only, the host's wake-up is not in it.
                begin, end = self._events
                logits = out.to("cpu", non_blocking=True)
                end.record()
                end.synchronize()  # the copy back is done once ``end`` is, so latency is real
                self.last_gpu_ms = float(begin.elapsed_time(end))
        return np.asarray(logits.numpy(), dtype=np.float32)

    def deactivate_impl(self) -> None:
        self._model = None
        self._events = None
        if self.device == "cuda":
            self._torch.cuda.empty_cache()


def open_checkpoint(path: str | Path, device: str = "auto", threads: int | None = None) -> TorchBackend:
    from fer_edge.model.checkpoint import load_checkpoint

    return TorchBackend(path, load_checkpoint(path), device=device, threads=threads)

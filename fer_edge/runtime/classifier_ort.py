"""ONNX Runtime backend: the classifier's adapter over :class:`~fer_edge.runtime.ort_runner.OnnxRuntimeRunner`.

The runner owns the session, the provider choice and the errors; this adds the classifier's
contract: a float32 ``[N, 1, 48, 48]`` batch in, logits out, its TensorRT-EP profile, and chunks
no larger than that profile's max batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.model.formats import graph_precision
from fer_edge.runtime.classifier_base import Backend
from fer_edge.runtime.ort_runner import (  # noqa: F401  (the names callers import from here)
    CPU_EP,
    CUDA_EP,
    EP_NAMES,
    GPU_ORT_HINT,
    ONNX_DEVICES,
    TRT_EP,
    OnnxRuntimeRunner,
    TrtEpProfile,
    choose_providers,
    trt_ep_cache_dir,
)
from fer_edge.runtime.ort_runner import provider_options as model_provider_options

# The TensorRT EP's optimisation profile: one engine covers every batch fer-edge sends (the
# camera's few faces, bench's 1/8/64, evaluate's 256); larger batches are run in chunks.
TRT_EP_BATCH = (1, 8, 256)
CLASSIFIER_PROFILE = TrtEpProfile("input", *((b, 1, 48, 48) for b in TRT_EP_BATCH))


def provider_options(provider: str, precision: str) -> dict[str, str]:
    """The classifier's provider options: its precision and its ``input`` [N,1,48,48] profile."""
    return model_provider_options(provider, precision, CLASSIFIER_PROFILE)


class OnnxRuntimeBackend(Backend):
    """Runs a fer-edge ONNX model with ONNX Runtime."""

    def __init__(
        self,
        path: str | Path,
        labels: tuple[str, ...],
        dataset: str,
        metadata: dict[str, str],
        precision: str,
        device: str = "auto",
        threads: int | None = None,
    ) -> None:
        super().__init__(path, labels, dataset, metadata, precision)
        self.device = device
        self.threads = threads
        self.runner = OnnxRuntimeRunner(path, device, threads,
                                        options_for=lambda p: provider_options(p, self.precision))
        self.providers = self.runner.providers
        self.name = self.runner.name
        self._input_name = "input"
        self._input_dtype: type[np.floating[Any]] = np.float32
        self._output_name = "logits"

    def activate_impl(self) -> None:
        self.runner.activate()
        self.name = self.runner.name
        names = [i.name for i in self.runner.inputs]
        self._input_name = "input" if "input" in names else names[0]
        self._input_dtype = next(i.dtype for i in self.runner.inputs if i.name == self._input_name)
        outputs = self.runner.output_names
        self._output_name = "logits" if "logits" in outputs else outputs[0]

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        # The TensorRT EP's engine takes at most its profile's max batch.
        step = TRT_EP_BATCH[2] if self.providers[0] == TRT_EP else max(len(batch), 1)
        parts = []
        for start in range(0, max(len(batch), 1), step):
            feed = {self._input_name: batch[start:start + step].astype(self._input_dtype, copy=False)}
            outputs = self.runner.infer(feed)
            parts.append(np.asarray(outputs[self._output_name], dtype=np.float32))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def deactivate_impl(self) -> None:
        self.runner.deactivate()


def open_onnx(path: str | Path, device: str = "auto", threads: int | None = None) -> OnnxRuntimeBackend:
    """Read an ONNX model's metadata and precision; the session starts on activation."""
    from fer_edge.model.onnx_contract import check_classifier_input, labels_from_metadata, load_onnx

    model = load_onnx(path, load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    labels = labels_from_metadata(meta, path=path)  # a foreign model: "not a fer-edge model" first
    check_classifier_input(model, path)
    dataset = meta.get("dataset") or "unknown"
    precision = graph_precision(model)
    return OnnxRuntimeBackend(path, labels, dataset, meta, precision, device=device, threads=threads)

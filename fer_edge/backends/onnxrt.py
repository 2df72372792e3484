"""ONNX Runtime backend: a ``.onnx`` model on the CPU, CUDA or TensorRT execution provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.backends.base import Backend
from fer_edge.backends.precision import graph_precision
from fer_edge.errors import FerEdgeError
from fer_edge.ort import import_onnxruntime, session_options

CPU_EP = "CPUExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
TRT_EP = "TensorrtExecutionProvider"
EP_NAMES = {CPU_EP: "onnxruntime-cpu", CUDA_EP: "onnxruntime-cuda", TRT_EP: "onnxruntime-tensorrt"}
ONNX_DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "tensorrt")
GPU_ORT_HINT = "install onnxruntime-gpu (x86) or NVIDIA's onnxruntime wheel for JetPack (Jetson)"


def choose_providers(device: str, available: list[str]) -> list[str]:
    """Execution providers for ``device``, best first; refuses one that is not available.

    ``auto`` takes CUDA where ONNX Runtime offers it, else the CPU. The TensorRT provider is
    only used when asked for: it builds an engine on first run, which takes a while.
    """
    if device == "cpu":
        return [CPU_EP]
    if device == "auto":
        return [CUDA_EP, CPU_EP] if CUDA_EP in available else [CPU_EP]
    wanted = {"cuda": CUDA_EP, "tensorrt": TRT_EP}.get(device)
    if wanted is None:
        choices = ", ".join(ONNX_DEVICES)
        raise FerEdgeError(f"unknown device {device!r} for an ONNX model; choose one of: {choices}")
    if wanted not in available:
        raise FerEdgeError(
            f"ONNX Runtime here has no {wanted} (available: {', '.join(available)}); {GPU_ORT_HINT}"
        )
    return [p for p in (TRT_EP, CUDA_EP, CPU_EP) if p == wanted or (p in available and p != TRT_EP)]


# The TensorRT EP's optimisation profile: one engine covers every batch fer-edge sends (the
# camera's few faces, bench's 1/8/64, evaluate's 256); larger batches are run in chunks.
TRT_EP_BATCH = (1, 8, 256)


def _trt_shape(batch: int) -> str:
    return f"input:{batch}x1x48x48"


def trt_ep_cache_dir() -> Path:
    """Where the TensorRT EP keeps its engines and timing cache: fer-edge's cache directory
    ($FER_EDGE_CACHE_DIR, else $XDG_CACHE_HOME/fer-edge or ~/.cache/fer-edge)."""
    from fer_edge.data.cache import cache_dir

    return cache_dir() / "ort-tensorrt"


def provider_options(provider: str, precision: str) -> dict[str, str]:
    """Options per provider. The TensorRT EP gets the precision flags TensorRT < 11 needs (INT8
    also enables FP16, for the layers a Q/DQ graph leaves in float, as build-engine does), an
    engine and timing cache in fer-edge's cache directory, and explicit profile shapes, so a
    bench row or a camera start reuses the engine instead of rebuilding it every time."""
    if provider == TRT_EP:
        cache = str(trt_ep_cache_dir())
        low, opt, high = TRT_EP_BATCH
        return {
            "trt_int8_enable": "True" if precision == "int8" else "False",
            "trt_fp16_enable": "True" if precision in ("fp16", "int8") else "False",
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": "True",
            "trt_timing_cache_path": cache,
            "trt_profile_min_shapes": _trt_shape(low),
            "trt_profile_opt_shapes": _trt_shape(opt),
            "trt_profile_max_shapes": _trt_shape(high),
        }
    return {}


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
        if threads is not None and threads < 1:
            raise FerEdgeError(f"threads must be >= 1, got {threads}")
        self.device = device
        self.threads = threads
        self.providers = choose_providers(device, _available_providers())
        self.name = EP_NAMES[self.providers[0]]
        self._session: Any = None
        self._input_name = "input"
        self._input_dtype: type[np.floating[Any]] = np.float32
        self._output_name = "logits"

    def activate_impl(self) -> None:
        ort = import_onnxruntime()

        opts = session_options(self.threads)  # warnings about unused initializers: only with --verbose
        providers = [(p, provider_options(p, self.precision)) for p in self.providers]
        if self.providers[0] == TRT_EP:
            try:
                trt_ep_cache_dir().mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise FerEdgeError(f"cannot create the TensorRT EP's engine cache ({exc.strerror}); "
                                   "set FER_EDGE_CACHE_DIR to a writable directory",
                                   path=trt_ep_cache_dir()) from None
        try:
            session = ort.InferenceSession(str(self.path), sess_options=opts, providers=providers)
        except Exception as exc:  # ORT raises its own exception types for bad graphs
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FerEdgeError(f"ONNX Runtime cannot load this model: {first}", path=self.path) from None
        used = session.get_providers()
        if self.device in ("cuda", "tensorrt") and self.providers[0] not in used:
            raise FerEdgeError(
                f"ONNX Runtime could not start {self.providers[0]} (it fell back to {used[0]}); "
                "check the CUDA/cuDNN/TensorRT libraries it needs", path=self.path,
            )
        self.name = EP_NAMES.get(used[0], f"onnxruntime-{used[0]}")
        inputs = session.get_inputs()
        names = [i.name for i in inputs]
        self._input_name = "input" if "input" in names else names[0]
        in_type = next(i.type for i in inputs if i.name == self._input_name)
        self._input_dtype = np.float16 if in_type == "tensor(float16)" else np.float32
        outputs = [o.name for o in session.get_outputs()]
        self._output_name = "logits" if "logits" in outputs else outputs[0]
        self._session = session

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        # The TensorRT EP's engine takes at most its profile's max batch.
        step = TRT_EP_BATCH[2] if self.providers[0] == TRT_EP else max(len(batch), 1)
        parts = []
        for start in range(0, max(len(batch), 1), step):
            feed = {self._input_name: batch[start:start + step].astype(self._input_dtype, copy=False)}
            (logits,) = self._session.run([self._output_name], feed)
            parts.append(np.asarray(logits, dtype=np.float32))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def deactivate_impl(self) -> None:
        self._session = None


def _available_providers() -> list[str]:
    ort = import_onnxruntime()

    return list(ort.get_available_providers())


def open_onnx(path: str | Path, device: str = "auto", threads: int | None = None) -> OnnxRuntimeBackend:
    """Read an ONNX model's metadata and precision; the session starts on activation."""
    from fer_edge.onnx_model import check_classifier_input, labels_from_metadata, load_onnx

    model = load_onnx(path, load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    labels = labels_from_metadata(meta, path=path)  # a foreign model: "not a fer-edge model" first
    check_classifier_input(model, path)
    dataset = meta.get("dataset") or "unknown"
    precision = graph_precision(model)
    return OnnxRuntimeBackend(path, labels, dataset, meta, precision, device=device, threads=threads)

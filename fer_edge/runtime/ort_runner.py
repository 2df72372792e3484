"""The ONNX Runtime runner: a ``.onnx`` on the CPU, CUDA or TensorRT execution provider.

Provider choice (:func:`choose_providers`) and the one-line errors are the same for every model;
provider options are the model's own (:func:`provider_options` with the model's TensorRT-EP
profile, or none), because an optimisation profile names an input's shapes and the classifier's
``input`` [N,1,48,48] is not YuNet's ``input`` [1,3,H,W].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, NamedTuple, Optional

import numpy as np

from fer_edge.core.errors import FerEdgeError, first_line
from fer_edge.runtime.ort_session import import_onnxruntime, session_options
from fer_edge.runtime.runner import Feed, Outputs, Runner

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


class TrtEpProfile(NamedTuple):
    """A TensorRT-EP optimisation profile for one input: its min, opt and max shapes."""

    input_name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def options(self) -> dict[str, str]:
        def text(shape: tuple[int, ...]) -> str:
            return f"{self.input_name}:{'x'.join(str(d) for d in shape)}"

        return {"trt_profile_min_shapes": text(self.min), "trt_profile_opt_shapes": text(self.opt),
                "trt_profile_max_shapes": text(self.max)}


def trt_ep_cache_dir() -> Path:
    """Where the TensorRT EP keeps its engines and timing cache: fer-edge's cache directory
    ($FER_EDGE_CACHE_DIR, else $XDG_CACHE_HOME/fer-edge or ~/.cache/fer-edge)."""
    from fer_edge.core.files import cache_dir

    return cache_dir() / "ort-tensorrt"


def provider_options(provider: str, precision: str, profile: Optional[TrtEpProfile]) -> dict[str, str]:
    """Options per provider. The TensorRT EP gets the precision flags TensorRT < 11 needs (INT8
    also enables FP16, for the layers a Q/DQ graph leaves in float, as build-engine does), an
    engine and timing cache in fer-edge's cache directory, so a start reuses the engine instead
    of rebuilding it, and the model's own profile shapes where it has one (none: the EP builds
    for the shapes it is given)."""
    if provider != TRT_EP:
        return {}
    cache = str(trt_ep_cache_dir())
    options = {
        "trt_int8_enable": "True" if precision == "int8" else "False",
        "trt_fp16_enable": "True" if precision in ("fp16", "int8") else "False",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": cache,
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": cache,
    }
    if profile is not None:
        options.update(profile.options())
    return options


def available_providers() -> list[str]:
    return list(import_onnxruntime().get_available_providers())


class InputInfo(NamedTuple):
    name: str
    dtype: Any  # numpy dtype the session takes
    shape: tuple[Any, ...]  # ints, or names/None for dynamic dimensions


class OnnxRuntimeRunner(Runner):
    """Runs an ONNX model with ONNX Runtime; ``what`` names the model in errors ("detector")."""

    def __init__(
        self,
        path: str | Path,
        device: str = "auto",
        threads: int | None = None,
        options_for: Optional[Callable[[str], Dict[str, str]]] = None,
        what: str = "model",
    ) -> None:
        super().__init__(path)
        if threads is not None and threads < 1:
            raise FerEdgeError(f"threads must be >= 1, got {threads}")
        self.device = device
        self.threads = threads
        self.what = what
        self.options_for = options_for or (lambda provider: {})
        self.providers = choose_providers(device, available_providers())
        self.name = EP_NAMES[self.providers[0]]
        self.inputs: list[InputInfo] = []
        self.output_names: list[str] = []
        self._session: Any = None

    def activate_impl(self) -> None:
        ort = import_onnxruntime()
        opts = session_options(self.threads)  # warnings about unused initializers: only with --verbose
        providers = [(p, self.options_for(p)) for p in self.providers]
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
            raise FerEdgeError(f"ONNX Runtime cannot load this {self.what}: {first_line(exc)}",
                               path=self.path) from None
        used = session.get_providers()
        if self.device in ("cuda", "tensorrt") and self.providers[0] not in used:
            raise FerEdgeError(
                f"ONNX Runtime could not start {self.providers[0]} (it fell back to {used[0]}); "
                "check the CUDA/cuDNN/TensorRT libraries it needs", path=self.path,
            )
        self.name = EP_NAMES.get(used[0], f"onnxruntime-{used[0]}")
        self.inputs = [InputInfo(i.name, np.float16 if i.type == "tensor(float16)" else np.float32,
                                 tuple(i.shape)) for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        self._session = session

    def infer_impl(self, feed: Feed) -> Outputs:
        try:
            values = self._session.run(self.output_names, dict(feed))
        except Exception as exc:
            shapes = ", ".join(f"{k} {list(np.shape(v))}" for k, v in feed.items())
            raise FerEdgeError(f"ONNX Runtime cannot run this {self.what} on {shapes}: {first_line(exc)}",
                               path=self.path) from None
        return dict(zip(self.output_names, values))

    def deactivate_impl(self) -> None:
        self._session = None

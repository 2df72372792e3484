"""The one module that calls TensorRT's builder (``tensorrt`` imported lazily); loading and
running an engine is :mod:`fer_edge.runtime.trt_api`'s.

Written against NVIDIA's documented Python API for TensorRT 8.5/8.6, 10.x and 11.x and
type-checked against ``tensorrt-stubs``; every decision (flags, shapes, refusals) is made by the
pure modules beside it and handed in.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from fer_edge.build.engine_options import BuildOptions
from fer_edge.build.trt_versions import PrecisionPlan
from fer_edge.core.errors import FerEdgeError
from fer_edge.runtime.trt_api import (  # noqa: F401  (re-exported: loading lives in the runtime)
    NOT_INSTALLED,
    LoadedEngine,
    deserialize,
    execute_async,
    io_tensors,
    require_tensorrt,
    set_input_shape,
    set_tensor_address,
    tensor_numpy_dtype,
    tensor_shape,
    tensorrt_version,
)

if TYPE_CHECKING:
    import tensorrt as trt

Warn = Callable[[str], None]


def gpu_here() -> tuple[str, str]:
    """``(GPU name, compute capability)`` of device 0: cuda-python/pycuda, else nvidia-smi."""
    from fer_edge.runtime.cuda_context import import_cudart, import_pycuda_driver, load_cuda_api

    if import_cudart() is not None or import_pycuda_driver() is not None:
        try:
            api = load_cuda_api()
        except FerEdgeError:
            pass
        else:
            try:
                return api.device_info()
            finally:
                api.close()
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10, check=True).stdout
            name, cap = (part.strip() for part in out.splitlines()[0].split(",")[:2])
            return name, cap
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            pass
    return "unknown", "unknown"


def describe_parser_error(index: int, node: int, node_name: str, operator: str, desc: str) -> str:
    """One parser error as ``node 12 'Conv_3' (Conv): desc`` (pure, for the one-line message)."""
    where = f"node {node}" if node >= 0 else f"error {index}"
    if node_name:
        where += f" {node_name!r}"
    if operator:
        where += f" ({operator})"
    return f"{where}: {desc.strip()}"


def _parser_errors(parser: trt.OnnxParser) -> list[str]:
    messages = []
    for i in range(parser.num_errors):
        err: Any = parser.get_error(i)
        # node_name()/node_operator() arrived in TensorRT 10; 8.6 has node() and desc() only.
        name = err.node_name() if hasattr(err, "node_name") else ""
        op = err.node_operator() if hasattr(err, "node_operator") else ""
        messages.append(describe_parser_error(i, int(err.node()), str(name), str(op), str(err.desc())))
    return messages


@dataclass(frozen=True)
class BuiltEngine:
    engine: bytes
    timing_cache: bytes | None
    input_name: str
    output_name: str
    num_classes: int
    layers: dict[str, Any] | None = None  # where the layers run (fer_edge.build.engine_layers)


def _network_flags(plan: PrecisionPlan) -> int:
    import tensorrt as trt

    flags = 0
    for name in plan.network_flags:
        flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    return flags


def _attach_timing_cache(config: Any, path: Path, warn: Warn) -> bool:
    """Give the builder the timing cache in ``path``, or a fresh one; True when one is attached.

    ``create_timing_cache`` can return None and ``set_timing_cache`` returns False for a cache
    from another GPU or TensorRT version (with ``ignore_mismatch=False``); neither stops a build.
    """
    previous = path.read_bytes() if path.is_file() else b""
    if _try_timing_cache(config, previous):
        return True
    if previous and _try_timing_cache(config, b""):
        warn(f"{path}: timing cache is from another GPU or TensorRT version (or unreadable); "
             "building with a fresh one, which replaces it")
        return True
    warn(f"{path}: TensorRT gave no usable timing cache; building without one ({path.name} is left as it is)")
    return False


def _try_timing_cache(config: Any, data: bytes) -> bool:
    """Create a timing cache from ``data`` and attach it; False on None, False or an exception
    (the bindings raise on bytes they cannot read)."""
    try:
        cache = config.create_timing_cache(data)
        return cache is not None and bool(config.set_timing_cache(cache, ignore_mismatch=False))
    except (RuntimeError, TypeError, ValueError):
        return False


def _serialized_timing_cache(config: Any, path: Path, warn: Warn) -> bytes | None:
    cache = config.get_timing_cache()
    data = cache.serialize() if cache is not None else None
    if data is None:
        warn(f"{path}: TensorRT returned no timing cache after the build; {path.name} is not updated")
        return None
    return bytes(memoryview(data))


def _dla_placement(config: Any, network: Any) -> dict[str, list[str]]:
    """Which network layers the DLA can take (``IBuilderConfig.can_run_on_DLA``), before the build."""
    placement: dict[str, list[str]] = {"dla": [], "gpu": []}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        placement["dla" if config.can_run_on_DLA(layer) else "gpu"].append(str(layer.name))
    return placement


def _engine_layers(runtime: Any, serialized: bytes) -> str | None:
    """The engine inspector's JSON (TensorRT 8.2+), or None where it cannot be had."""
    import tensorrt as trt

    try:
        engine = runtime.deserialize_cuda_engine(serialized)
        inspector = engine.create_engine_inspector() if engine is not None else None
        if inspector is None:
            return None
        return str(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    except (AttributeError, RuntimeError, TypeError):  # an older binding, or no GPU memory left
        return None


def build_serialized(options: BuildOptions, plan: PrecisionPlan, onnx_path: Path,
                     warn: Warn | None = None) -> BuiltEngine:
    """Parse ``onnx_path`` and build a serialized engine as ``plan`` and ``options`` say.

    ``warn`` gets one line for each thing that does not stop the build (a stale timing cache).
    """
    from fer_edge.build.engine_layers import summarise_layers

    warn = warn or (lambda _message: None)
    require_tensorrt()
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    if options.dla_core is not None:
        cores = builder.num_DLA_cores
        if cores == 0:
            raise FerEdgeError("--dla: this device has no DLA cores (Orin Nano and desktop GPUs have none); "
                               "build without --dla")
        if options.dla_core >= cores:
            raise FerEdgeError(
                f"--dla {options.dla_core}: this device has {cores} DLA cores (0..{cores - 1})"
            )

    network = builder.create_network(_network_flags(plan))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = _parser_errors(parser)
        detail = "; ".join(errors or ["no details"])
        raise FerEdgeError(f"TensorRT's ONNX parser rejected the model: {detail}", path=options.onnx)
    if network.num_inputs != 1 or network.num_outputs != 1:
        raise FerEdgeError(f"expected one input and one output, the network has {network.num_inputs} "
                           f"and {network.num_outputs}", path=options.onnx)
    input_tensor = network.get_input(0)
    output_tensor = network.get_output(0)
    num_classes = int(output_tensor.shape[-1])

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_bytes)
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if options.opt_level is not None and plan.supports_opt_level:
        config.builder_optimization_level = options.opt_level
    # Per-layer details in the engine, so the inspector can say where each layer runs.
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    dla_placement = None
    if options.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla_core
        dla_placement = _dla_placement(config, network)

    profile = builder.create_optimization_profile()
    batch = options.batch
    low, opt, high = (trt.Dims(list(batch.shape(n))) for n in (batch.min, batch.opt, batch.max))
    profile.set_shape(input_tensor.name, low, opt, high)
    config.add_optimization_profile(profile)

    cached = options.timing_cache is not None and _attach_timing_cache(config, options.timing_cache, warn)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise FerEdgeError("TensorRT could not build the engine (its messages above say why)",
                           path=options.onnx)
    engine = bytes(memoryview(serialized))
    timing = None
    if cached and options.timing_cache is not None:
        timing = _serialized_timing_cache(config, options.timing_cache, warn)
    runtime = trt.Runtime(logger)
    if options.dla_core is not None:
        runtime.DLA_core = options.dla_core  # a DLA engine deserialises onto its core
    layers = summarise_layers(_engine_layers(runtime, engine), dla_placement)
    return BuiltEngine(
        engine=engine,
        timing_cache=timing,
        input_name=input_tensor.name,
        output_name=output_tensor.name,
        num_classes=num_classes,
        layers=layers,
    )

"""The one module that calls TensorRT's runtime (``tensorrt`` imported lazily): load an engine,
list its tensors, set shapes and addresses, enqueue.

The name-based I/O API used here (``num_io_tensors``, ``get_tensor_*``, ``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``) is in every TensorRT fer-edge supports: 8.5 and
8.6 (JetPack 5.1 / 6.0, beside the older binding-index API), 10.x and 11.x (the only API left).
Data types are mapped by :mod:`fer_edge.runtime.trt_dtypes`, never by ``trt.nptype``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fer_edge.core.errors import FerEdgeError
from fer_edge.runtime.trt_dtypes import numpy_dtype

if TYPE_CHECKING:
    import tensorrt as trt

NOT_INSTALLED = (
    "TensorRT is not installed (no Python module 'tensorrt'): on a Jetson it ships with JetPack, "
    "use a venv created with --system-site-packages (see docs/jetson.md); on x86 run "
    "'pip install tensorrt' (NVIDIA's wheels); or print the trtexec command with --print-trtexec"
)


def tensorrt_version() -> str | None:
    """The installed TensorRT's version, or None.

    ``tensorrt-stubs`` installs a bare ``tensorrt`` namespace with no code in it, so a module
    without ``Builder`` counts as not installed.
    """
    try:
        import tensorrt
    except (ImportError, OSError):  # OSError: the bindings are there but libnvinfer is not
        return None
    if not hasattr(tensorrt, "Builder"):
        return None
    return str(getattr(tensorrt, "__version__", "unknown"))


def require_tensorrt() -> str:
    """The TensorRT version; a one-line :class:`FerEdgeError` saying how to get it if absent."""
    version = tensorrt_version()
    if version is None:
        raise FerEdgeError(NOT_INSTALLED)
    return version


@dataclass
class LoadedEngine:
    """A deserialised engine and its execution context (the runtime must outlive the engine)."""

    runtime: Any
    engine: Any
    context: Any


def deserialize(data: bytes, path: Path, dla_core: int | None = None) -> LoadedEngine:
    """Deserialise an engine; a foreign or corrupt plan is a one-line error.

    ``dla_core``: the DLA core the engine was built for (the sidecar's); it must be set on the
    runtime before deserialising, else a DLA engine runs on core 0.
    """
    require_tensorrt()
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.ERROR)
    runtime = trt.Runtime(logger)
    if dla_core is not None:
        runtime.DLA_core = dla_core
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise FerEdgeError("TensorRT could not deserialise this engine (corrupt, or built by another "
                           "TensorRT version)", path=path)
    context = engine.create_execution_context()
    if context is None:
        raise FerEdgeError("TensorRT could not create an execution context (out of GPU memory?)", path=path)
    return LoadedEngine(runtime=runtime, engine=engine, context=context)


def io_tensors(engine: trt.ICudaEngine) -> tuple[list[str], list[str]]:
    """Names of the engine's input and output tensors."""
    import tensorrt as trt

    inputs: list[str] = []
    outputs: list[str] = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(name)
    return inputs, outputs


def tensor_numpy_dtype(engine: trt.ICudaEngine, name: str) -> Any:
    return numpy_dtype(engine.get_tensor_dtype(name), name)


def tensor_shape(context: trt.IExecutionContext, name: str) -> tuple[int, ...]:
    """A tensor's shape for the input shapes set so far (an output's is known once they are)."""
    dims = context.get_tensor_shape(name)
    shape = tuple(int(dims[i]) for i in range(len(dims)))
    if any(d < 0 for d in shape):
        raise FerEdgeError(f"TensorRT cannot tell the shape of {name!r} yet ({list(shape)})")
    return shape


def set_input_shape(context: trt.IExecutionContext, name: str, shape: tuple[int, ...]) -> None:
    if not context.set_input_shape(name, shape):
        raise FerEdgeError(f"the engine does not accept input shape {list(shape)} for {name!r}")


def set_tensor_address(context: trt.IExecutionContext, name: str, address: int) -> None:
    if not context.set_tensor_address(name, address):
        raise FerEdgeError(f"TensorRT refused the buffer address for tensor {name!r}")


def execute_async(context: trt.IExecutionContext, stream_handle: int) -> None:
    if not context.execute_async_v3(stream_handle):
        raise FerEdgeError("TensorRT inference failed (execute_async_v3 returned False)")

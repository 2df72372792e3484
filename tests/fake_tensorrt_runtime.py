"""A fake ``tensorrt`` module (the runtime side) per release, on the fake pycuda of ``fake_pycuda``.

The ``DataType`` members of 8.5, 8.6, 10.x and 11.x (from NVIDIA's ``NvInferRuntimeBase.h`` of each
release branch); ``nptype`` as each release ships it (8.5.2 builds its table with ``np.bool``, which
numpy 1.24, the numpy JetPack 5 pins, no longer has); a Runtime with ``DLA_core``; engines described
by a JSON plan; the name-based I/O API (8.5+: ``num_io_tensors``, ``set_input_shape``,
``get_tensor_shape``, ``set_tensor_address``, ``execute_async_v3``).
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fake_pycuda import FakeCuda

DATATYPES = {
    "8.5": ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8"],
    "8.6": ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8", "FP8"],
    "10.3": ["FLOAT", "HALF", "BF16", "INT8", "INT32", "INT64", "BOOL", "UINT8", "FP8", "INT4"],
    "10.8": ["FLOAT", "HALF", "BF16", "INT8", "INT32", "INT64", "BOOL", "UINT8", "FP8", "INT4", "FP4"],
    "10.16": ["FLOAT", "HALF", "BF16", "INT8", "INT32", "INT64", "BOOL", "UINT8", "FP8", "INT4", "FP4", "E8M0"],
    "11.1": ["FLOAT", "HALF", "BF16", "INT8", "INT32", "INT64", "BOOL", "UINT8", "FP8", "INT4", "FP4", "E8M0"],
}


class Numpy124:
    """numpy as JetPack 5 pins it (1.24.4): the deprecated alias ``np.bool`` is gone."""

    def __getattr__(self, name: str) -> Any:
        if name == "bool":
            raise AttributeError("module 'numpy' has no attribute 'bool'.\n`np.bool` was a deprecated alias "
                                 "for the builtin `bool`.")
        return getattr(np, name)


def classifier_plan(num_classes: int = 7, dtype: str = "FLOAT") -> bytes:
    """A fake serialized classifier engine: logits row i = the first C pixels of input row i."""
    return json.dumps({"kind": "classifier", "num_classes": num_classes, "dtype": dtype,
                       "tensors": [["input", "INPUT"], ["logits", "OUTPUT"]]}).encode()


def yunet_plan() -> bytes:
    """A fake serialized YuNet engine: the twelve per-stride outputs, all zero (no faces)."""
    names = [f"{k}_{s}" for k in ("cls", "obj", "bbox", "kps") for s in (8, 16, 32)]
    return json.dumps({"kind": "yunet", "dtype": "FLOAT",
                       "tensors": [["input", "INPUT"]] + [[n, "OUTPUT"] for n in names]}).encode()


@dataclass
class TrtState:
    dla_core_at_deserialize: list[int | None] = field(default_factory=list)
    shapes_set: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    executions: int = 0


def fake_tensorrt(version: str, cuda: FakeCuda, state: TrtState | None = None) -> types.ModuleType:
    """The ``tensorrt`` module of release ``version`` ("8.5.2.2", "8.6.2.3", "10.3.0.30", ...)."""
    state = state if state is not None else TrtState()
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version  # type: ignore[attr-defined]
    major_minor = ".".join(version.split(".")[:2])
    names = DATATYPES.get(major_minor) or DATATYPES["10.16" if major_minor.startswith("10") else "11.1"]

    class DataTypeMember:
        def __init__(self, name: str, value: int) -> None:
            self.name, self.value = name, value

        def __repr__(self) -> str:
            return f"<DataType.{self.name}: {self.value}>"

        def __str__(self) -> str:
            return f"DataType.{self.name}"

    DataType = types.SimpleNamespace(**{n: DataTypeMember(n, i) for i, n in enumerate(names)})

    def nptype(trt_type: Any) -> Any:
        # What each release's tensorrt/__init__.py does: 8.5.2 writes np.bool (numpy < 1.24 only).
        numpy = Numpy124() if version.startswith("8.5.2") else np
        mapping = {DataType.FLOAT: numpy.float32, DataType.HALF: numpy.float16, DataType.INT8: numpy.int8,
                   DataType.INT32: numpy.int32,
                   DataType.BOOL: numpy.bool if version.startswith("8.5.2") else np.bool_,
                   DataType.UINT8: numpy.uint8}
        if trt_type in mapping:
            return mapping[trt_type]
        raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.")

    TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT", NONE="NONE")

    class ExecutionContext:
        def __init__(self, engine: Engine) -> None:
            self.engine = engine
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.addresses: dict[str, int] = {}

        def set_input_shape(self, name: str, shape: Any) -> bool:
            shape = tuple(int(d) for d in shape)
            cuda.log.append(f"set_input_shape {name}")
            state.shapes_set.append((name, shape))
            self.shapes[name] = shape
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            spec = self.engine.spec
            shape = self.shapes.get("input", (-1, -1, -1, -1))
            if name == "input":
                return shape
            if spec["kind"] == "classifier":
                return (shape[0], int(spec["num_classes"]))
            stride = int(name.split("_")[1])
            width = {"cls": 1, "obj": 1, "bbox": 4, "kps": 10}[name.split("_")[0]]
            return (1, (shape[2] // stride) * (shape[3] // stride), width)

        def set_tensor_address(self, name: str, address: int) -> bool:
            self.addresses[name] = int(address)
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            stream = cuda.streams[int(stream_handle)]
            cuda.use(stream.ctx, "TensorRT enqueue (Cuda Runtime)")
            (in_alloc, in_off) = cuda.find(self.addresses["input"], "TensorRT enqueue (Cuda Runtime)")
            shape = self.shapes["input"]
            x = np.frombuffer(bytes(in_alloc.data[in_off: in_off + int(np.prod(shape)) * 4]), np.float32)
            x = x.reshape(shape)
            for name, mode in self.engine.spec["tensors"]:
                if mode != "OUTPUT":
                    continue
                out_shape = self.get_tensor_shape(name)
                if self.engine.spec["kind"] == "classifier":
                    y = x.reshape(shape[0], -1)[:, : out_shape[1]].astype(np.float32)
                else:
                    y = np.zeros(out_shape, np.float32)
                alloc, off = cuda.find(self.addresses[name], "TensorRT enqueue (Cuda Runtime)")
                alloc.data[off: off + y.nbytes] = y.tobytes()
            state.executions += 1
            cuda.enqueue("execute")
            return True

    class Engine:
        def __init__(self, spec: dict[str, Any]) -> None:
            self.spec = spec
            self.num_io_tensors = len(spec["tensors"])

        def get_tensor_name(self, i: int) -> str:
            return str(self.spec["tensors"][i][0])

        def get_tensor_mode(self, name: str) -> str:
            return next(str(m) for n, m in self.spec["tensors"] if n == name)

        def get_tensor_dtype(self, name: str) -> Any:
            return getattr(DataType, self.spec["dtype"])

        def create_execution_context(self) -> ExecutionContext:
            cuda.require_current("IExecutionContext creation (cudaMalloc)")
            return ExecutionContext(self)

    class Runtime:
        def __init__(self, logger: Any) -> None:
            self.DLA_core = -1

        def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
            cuda.require_current("deserializeCudaEngine")
            state.dla_core_at_deserialize.append(None if self.DLA_core == -1 else self.DLA_core)
            try:
                return Engine(json.loads(bytes(data)))
            except ValueError:
                return None

    class Logger:
        ERROR, WARNING = 1, 2

        def __init__(self, level: int) -> None:
            self.level = level

    for name, value in {
        "DataType": DataType, "nptype": nptype, "TensorIOMode": TensorIOMode, "Runtime": Runtime,
        "Logger": Logger, "Builder": object,  # present: a real build, not tensorrt-stubs' bare namespace
    }.items():
        setattr(trt, name, value)
    trt.state = state  # type: ignore[attr-defined]
    return trt

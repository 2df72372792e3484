"""Fakes of pycuda and TensorRT's runtime that keep the real bindings' rules, for the runtime tests.

``FakeCuda`` is ``pycuda.driver`` as far as fer-edge uses it, with CUDA's context rules enforced:
``Device.make_context()`` creates a context and pushes it; ``retain_primary_context()`` returns the
device's one primary context without pushing it; ``Context.pop()`` pops the top of the stack and
fails on an empty one. Every handle (pinned memory, device memory, stream, event) belongs to the
context current when it was made, and a copy, event record or TensorRT enqueue under another
current context fails with "invalid resource handle", as ``cuMemcpyHtoDAsync`` does. Device memory
holds real bytes, so the fake engines compute; a device clock advances 0.25 ms per enqueued
operation and 1 ms per host wait (the GPU idles while the host waits and prepares the next chunk),
and CUDA events read that clock.

``fake_tensorrt(version, cuda)`` is the ``tensorrt`` module's runtime side per release: the
``DataType`` members of 8.5, 8.6, 10.x and 11.x, ``nptype`` as each release ships it (8.5.2 builds
its table with ``np.bool``, which numpy 1.24, the numpy JetPack 5 pins, no longer has), a Runtime
with ``DLA_core``, engines described by a JSON plan, and the name-based I/O API (8.5+).
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OP_MS = 0.25  # device time of one enqueued copy or kernel
WAIT_MS = 1.0  # device idle time per host wait

DATATYPES = {
    "8.5": ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8"],
    "8.6": ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8", "FP8"],
    "10.3": ["FLOAT", "HALF", "BF16", "INT8", "INT32", "INT64", "BOOL", "UINT8", "FP8", "INT4"],
    "10.8": ["FLOAT", "HALF", "BF16", "INT8", "INT32", "INT64", "BOOL", "UINT8", "FP8", "INT4", "FP4"],
    "10.16": ["FLOAT", "HALF", "BF16", "INT8", "INT32", "INT64", "BOOL", "UINT8", "FP8", "INT4", "FP4", "E8M0"],
    "11.1": ["FLOAT", "HALF", "BF16", "INT8", "INT32", "INT64", "BOOL", "UINT8", "FP8", "INT4", "FP4", "E8M0"],
}


class CudaDriverError(Exception):
    """pycuda._driver.Error"""


class LogicError(CudaDriverError):
    """pycuda._driver.LogicError: what pycuda raises for CUDA_ERROR_INVALID_HANDLE and friends."""


class Numpy124:
    """numpy as JetPack 5 pins it (1.24.4): the deprecated alias ``np.bool`` is gone."""

    def __getattr__(self, name: str) -> Any:
        if name == "bool":
            raise AttributeError("module 'numpy' has no attribute 'bool'.\n`np.bool` was a deprecated alias "
                                 "for the builtin `bool`.")
        return getattr(np, name)


@dataclass
class Context:
    cuda: FakeCuda
    primary: bool
    retains: int = 0
    alive: bool = True
    ident: int = 0

    def push(self) -> None:
        assert self.alive, "pushing a destroyed context"
        self.cuda.stack.append(self)
        self.cuda.log.append("push")

    def pop(self) -> None:
        """pycuda's ``Context.pop`` is static: it pops whatever is current, not this context."""
        self.cuda.pop()

    def detach(self) -> None:
        self.cuda.log.append("detach")
        if self.primary:
            self.retains -= 1
            assert self.retains >= 0, "primary context released more often than retained"
        else:
            self.alive = False
            if self in self.cuda.stack:
                self.cuda.stack.remove(self)


class PinnedHost(bytearray):
    def __init__(self, nbytes: int, ctx: Context) -> None:
        super().__init__(nbytes)
        self.ctx = ctx
        self.freed = False

    def free(self) -> None:
        self.freed = True


@dataclass
class Allocation:
    cuda: FakeCuda
    address: int
    data: bytearray
    ctx: Context
    freed: bool = False

    def __int__(self) -> int:
        return self.address

    def free(self) -> None:
        self.freed = True
        self.cuda.memory.pop(self.address, None)


@dataclass
class Stream:
    cuda: FakeCuda
    ctx: Context
    handle: int

    def synchronize(self) -> None:
        self.cuda.wait("stream sync")


@dataclass
class Event:
    cuda: FakeCuda
    ctx: Context
    time: float | None = None

    def record(self, stream: Stream) -> None:
        self.cuda.use(stream.ctx, "cuEventRecord")
        self.cuda.use(self.ctx, "cuEventRecord")
        self.time = self.cuda.clock
        self.cuda.log.append("event record")

    def synchronize(self) -> None:
        self.cuda.wait("event sync")

    def time_since(self, start: Event) -> float:
        assert self.time is not None and start.time is not None, "event not recorded"
        return self.time - start.time


@dataclass
class FakeCuda:
    """One process's CUDA as pycuda sees it (a single thread)."""

    devices: int = 1
    stack: list[Context] = field(default_factory=list)
    primaries: dict[int, Context] = field(default_factory=dict)
    contexts: list[Context] = field(default_factory=list)
    memory: dict[int, Allocation] = field(default_factory=dict)
    streams: dict[int, Stream] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    clock: float = 0.0
    next_address: int = 0x10000

    def module(self) -> types.ModuleType:
        """The fake ``pycuda.driver`` module."""
        cuda = self
        mod = types.ModuleType("pycuda.driver")

        class Device:
            def __init__(self, index: int) -> None:
                if index >= cuda.devices:
                    raise LogicError("cuDeviceGet failed: invalid device ordinal")
                self.index = index

            def make_context(self) -> Context:
                ctx = cuda.new_context(primary=False)
                ctx.push()
                return ctx

            def retain_primary_context(self) -> Context:
                ctx = cuda.primaries.get(self.index)
                if ctx is None:
                    ctx = cuda.primaries[self.index] = cuda.new_context(primary=True)
                ctx.retains += 1
                return ctx

            def name(self) -> str:
                return "Orin"

            def compute_capability(self) -> tuple[int, int]:
                return (8, 7)

        class ContextClass:
            @staticmethod
            def pop() -> None:
                cuda.pop()

            @staticmethod
            def get_current() -> Context | None:
                return cuda.current()

        def pagelocked_empty(count: int, dtype: Any) -> np.ndarray:
            ctx = cuda.require_current("cuMemHostAlloc")
            dtype = np.dtype(dtype)
            return np.ndarray((count,), dtype, buffer=PinnedHost(max(count * dtype.itemsize, 1), ctx))

        def mem_alloc(nbytes: int) -> Allocation:
            ctx = cuda.require_current("cuMemAlloc")
            alloc = Allocation(cuda, cuda.next_address, bytearray(nbytes), ctx)
            cuda.memory[alloc.address] = alloc
            cuda.next_address += (nbytes + 0xFFFF) & ~0xFFFF
            return alloc

        def memcpy_htod_async(dst: int, src: np.ndarray, stream: Stream) -> None:
            cuda.use(stream.ctx, "cuMemcpyHtoDAsync")
            alloc, offset = cuda.find(int(dst), "cuMemcpyHtoDAsync")
            data = src.tobytes()
            alloc.data[offset: offset + len(data)] = data
            cuda.enqueue("htod")

        def memcpy_dtoh_async(dst: np.ndarray, src: int, stream: Stream) -> None:
            cuda.use(stream.ctx, "cuMemcpyDtoHAsync")
            alloc, offset = cuda.find(int(src), "cuMemcpyDtoHAsync")
            raw = bytes(alloc.data[offset: offset + dst.nbytes])
            dst[...] = np.frombuffer(raw, dtype=dst.dtype).reshape(dst.shape)
            cuda.enqueue("dtoh")

        def new_stream() -> Stream:
            ctx = cuda.require_current("cuStreamCreate")
            stream = Stream(cuda, ctx, 0x5000 + len(cuda.streams))
            cuda.streams[stream.handle] = stream
            return stream

        def new_event() -> Event:
            return Event(cuda, cuda.require_current("cuEventCreate"))

        for name, value in {
            "Error": CudaDriverError, "LogicError": LogicError, "init": lambda: None, "Device": Device,
            "Context": ContextClass, "pagelocked_empty": pagelocked_empty, "mem_alloc": mem_alloc,
            "memcpy_htod_async": memcpy_htod_async, "memcpy_dtoh_async": memcpy_dtoh_async,
            "Stream": new_stream, "Event": new_event,
        }.items():
            setattr(mod, name, value)
        return mod

    # -- CUDA's rules ---------------------------------------------------------------------------
    def new_context(self, primary: bool) -> Context:
        ctx = Context(self, primary, ident=len(self.contexts))
        self.contexts.append(ctx)
        return ctx

    def pop(self) -> None:
        if not self.stack:
            raise LogicError("cuCtxPopCurrent failed: invalid device context (the context stack is empty)")
        self.stack.pop()
        self.log.append("pop")

    def current(self) -> Context | None:
        return self.stack[-1] if self.stack else None

    def require_current(self, call: str) -> Context:
        ctx = self.current()
        if ctx is None:
            raise LogicError(f"{call} failed: invalid device context")
        return ctx

    def use(self, owner: Context, call: str) -> None:
        """A handle made under ``owner`` is used now: only valid while ``owner`` is current."""
        if self.require_current(call) is not owner:
            raise LogicError(f"{call} failed: invalid resource handle")

    def find(self, address: int, call: str) -> tuple[Allocation, int]:
        for alloc in self.memory.values():
            if alloc.address <= address < alloc.address + max(len(alloc.data), 1):
                self.use(alloc.ctx, call)
                return alloc, address - alloc.address
        raise LogicError(f"{call} failed: invalid argument (no allocation at 0x{address:x})")

    def enqueue(self, what: str) -> None:
        self.clock += OP_MS
        self.log.append(what)

    def wait(self, what: str) -> None:
        self.clock += WAIT_MS
        self.log.append(what)


# -- TensorRT ------------------------------------------------------------------------------------


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

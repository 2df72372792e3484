"""A fake ``pycuda.driver`` that keeps CUDA's context rules, for the runtime tests.

``Device.make_context()`` creates a context and pushes it; ``retain_primary_context()`` returns the
device's one primary context without pushing it; ``Context.pop()`` pops the top of the stack and
fails on an empty one. Every handle (pinned memory, device memory, stream, event) belongs to the
context current when it was made, and a copy, event record or TensorRT enqueue under another
current context fails with "invalid resource handle", as ``cuMemcpyHtoDAsync`` does. Device memory
holds real bytes, so the fake engines compute; a device clock advances 0.25 ms per enqueued
operation and 1 ms per host wait (the GPU idles while the host waits and prepares the next chunk),
and CUDA events read that clock.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OP_MS = 0.25  # device time of one enqueued copy or kernel
WAIT_MS = 1.0  # device idle time per host wait


class CudaDriverError(Exception):
    """pycuda._driver.Error"""


class LogicError(CudaDriverError):
    """pycuda._driver.LogicError: what pycuda raises for CUDA_ERROR_INVALID_HANDLE and friends."""


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

            def get_attribute(self, attribute: str) -> int:
                # pycuda's Device.get_attribute(device_attribute.X): a driver query, no context needed
                return {"MULTIPROCESSOR_COUNT": 16}[attribute]

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
            "device_attribute": types.SimpleNamespace(MULTIPROCESSOR_COUNT="MULTIPROCESSOR_COUNT"),
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

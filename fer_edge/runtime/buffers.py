"""A pinned host array and a device buffer of the same size (TensorRT samples' ``HostDeviceMem``)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fer_edge.runtime.cuda_api import CudaApi, CudaError


class HostDeviceMem:
    """A pinned host array and a device buffer of the same size, freed explicitly with :meth:`free`."""

    def __init__(self, api: CudaApi, count: int, dtype: np.dtype[Any] | type) -> None:
        self.api = api
        self.dtype = np.dtype(dtype)
        self.host, self._host_handle = api.pinned_empty(count, self.dtype)
        try:
            self.device, self._device_handle = api.device_alloc(self.host.nbytes)
        except Exception:
            api.free_pinned(self._host_handle)
            raise
        self.nbytes = int(self.host.nbytes)
        self._freed = False

    def to_device_async(self, stream: Any, count: int | None = None) -> None:
        """Copy the first ``count`` elements (all by default) host → device."""
        self.api.htod_async(self.device, self.host[: self._count(count)], stream)

    def to_host_async(self, stream: Any, count: int | None = None) -> None:
        self.api.dtoh_async(self.host[: self._count(count)], self.device, stream)

    def _count(self, count: int | None) -> int:
        if self._freed:
            raise CudaError("buffer already freed")
        size = int(self.host.size)
        if count is None:
            return size
        if not 0 < count <= size:
            raise CudaError(f"copy of {count} elements does not fit a buffer of {size}")
        return count

    def free(self) -> None:
        if self._freed:
            return
        self._freed = True
        self.host = np.empty(0, dtype=self.dtype)  # drop the view before the memory goes
        self.api.device_free(self._device_handle)
        self.api.free_pinned(self._host_handle)

    def __repr__(self) -> str:
        return f"HostDeviceMem(nbytes={self.nbytes}, dtype={self.dtype}, device=0x{self.device:x})"


def free_all(buffers: Sequence[HostDeviceMem]) -> None:
    for buffer in buffers:
        buffer.free()

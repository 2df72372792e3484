"""Published peak figures of the Jetson Orin modules (GPU only), for the roofline estimate.

Sources (NVIDIA): Jetson AGX Orin Series Technical Brief v1.2 (AGX Orin 64GB: 170 sparse INT8 TOPS
on the GPU, 204.8 GB/s); Jetson Orin NX Series datasheet (1024-core GPU, 32 Tensor Cores at 918 MHz,
102.4 GB/s; the GPU's 60 sparse TOPS scaled from the AGX figure by Tensor Cores x clock, which agrees
with 100 - 2 x 20 DLA TOPS); Jetson Orin Nano Series datasheet (40 sparse TOPS, 68 GB/s; "Super"
mode on JetPack 6.1+: 67 TOPS, 102 GB/s). Dense INT8 is half the sparse figure (2:4 sparsity doubles
the Tensor Core rate; fer-edge's CNN is dense); FP16 is half the dense INT8 rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from fer_edge.core.errors import FerEdgeError


@dataclass(frozen=True)
class JetsonSpec:
    key: str
    name: str
    gpu_int8_sparse_tops: float
    memory_bandwidth_gbs: float
    source: str
    precisions: Tuple[str, str] = ("int8", "fp16")

    @property
    def int8_dense_tops(self) -> float:
        return self.gpu_int8_sparse_tops / 2.0

    @property
    def fp16_dense_tflops(self) -> float:
        return self.int8_dense_tops / 2.0

    def dense_tops(self, precision: str) -> float:
        if precision not in self.precisions:
            raise FerEdgeError(f"the Jetson roofline has int8 and fp16 rates, not {precision!r}")
        return self.int8_dense_tops if precision == "int8" else self.fp16_dense_tflops

    @property
    def caption(self) -> str:
        return (
            f"{self.name}: {self.int8_dense_tops:g} dense INT8 TOPS, {self.fp16_dense_tflops:g} dense FP16 "
            f"TFLOPS (GPU; {self.gpu_int8_sparse_tops:g} sparse INT8 TOPS published), "
            f"{self.memory_bandwidth_gbs:g} GB/s. Source: NVIDIA, {self.source}.\n"
            "Lower bound: each layer max(compute, memory), summed; BN/ReLU/pool assumed fused; "
            "no launch overhead (real TensorRT adds ~5-20 µs per kernel)."
        )


JETSONS = {
    spec.key: spec
    for spec in (
        JetsonSpec("orin-nano", "Jetson Orin Nano 8GB", 40.0, 68.0, "Jetson Orin Nano Series datasheet"),
        JetsonSpec("orin-nano-super", "Jetson Orin Nano 8GB (Super, JetPack 6.1+)", 67.0, 102.0,
                   "Jetson Orin Nano Super Developer Kit datasheet"),
        JetsonSpec("orin-nx", "Jetson Orin NX 16GB", 60.0, 102.4,
                   "Jetson Orin NX Series datasheet (GPU share derived, see module note)"),
        JetsonSpec("agx-orin", "Jetson AGX Orin 64GB", 170.0, 204.8, "Jetson AGX Orin Series Technical Brief v1.2"),
    )
}


def jetson_spec(key: str) -> JetsonSpec:
    try:
        return JETSONS[key]
    except KeyError:
        raise FerEdgeError(f"--estimate: unknown device {key!r}; choose one of: host, {', '.join(JETSONS)}") from None

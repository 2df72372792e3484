"""The TensorRT runner: sidecar checks before TensorRT is touched (CPU), and its CUDA data path
(GPU, with TensorRT's engine replaced by a device-to-device copy, so no TensorRT is needed)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fer_edge.core.errors import FerEdgeError
from fer_edge.model.engine_sidecar import DeviceInfo, Sidecar, write_sidecar
from fer_edge.runtime import classifier_trt as trt_engine
from fer_edge.runtime import trt_api as tensorrt_api
from fer_edge.runtime.classifier import load_backend
from fer_edge.runtime.cuda_context import cuda_device_count, import_cudart
from fer_edge.runtime.engine_profile import BatchProfile, parse_batch

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
HERE = DeviceInfo("10.3.0.30", "Orin", "8.7")


def make_engine(tmp_path: Path, profile: BatchProfile = BatchProfile(1, 8, 32), **kw: Any) -> Path:
    engine = tmp_path / "m.int8.engine"
    data = b"fake plan " * 64
    engine.write_bytes(data)
    fields: dict[str, Any] = dict(
        tensorrt_version=HERE.tensorrt_version,
        gpu_name=HERE.gpu_name,
        compute_capability=HERE.compute_capability,
        precision="int8",
        profile=profile.shapes(),
        source_onnx="m.int8.onnx",
        source_onnx_sha256="0" * 64,
        labels=LABELS,
        dataset="fer2013",
        engine_sha256=hashlib.sha256(data).hexdigest(),
        engine_bytes=len(data),
        build_command=f"fer-edge build-engine m.int8.onnx --precision int8 --out {engine} --batch {profile}",
        built_at="2025-01-01T00:00:00+00:00",
        build_seconds=1.0,
        metadata={"arch": "test"},
    )
    fields.update(kw)
    write_sidecar(engine, Sidecar(**fields))
    return engine


def test_engine_without_sidecar(tmp_path: Path) -> None:
    engine = tmp_path / "lonely.engine"
    engine.write_bytes(b"plan")
    with pytest.raises(FerEdgeError, match="no sidecar lonely.engine.json"):
        load_backend(engine)


def test_truncated_engine_is_refused_before_tensorrt(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    engine.write_bytes(engine.read_bytes()[:100])
    with pytest.raises(FerEdgeError, match="truncated"):
        load_backend(engine)


def test_foreign_engine_with_copied_sidecar(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    engine.write_bytes(b"x" * engine.stat().st_size)
    with pytest.raises(FerEdgeError, match="replaced or corrupt"):
        load_backend(engine)


@pytest.mark.skipif(tensorrt_api.tensorrt_version() is not None, reason="TensorRT is installed here")
def test_engine_without_tensorrt_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(FerEdgeError) as info:
        load_backend(make_engine(tmp_path))
    assert "TensorRT is not installed" in str(info.value) and "\n" not in str(info.value)


def test_engine_from_another_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(tmp_path)
    monkeypatch.setattr(
        trt_engine, "device_here", lambda index=0: DeviceInfo("10.7.0.23", "NVIDIA A10", "8.6")
    )
    with pytest.raises(FerEdgeError) as info:
        load_backend(engine)
    text = str(info.value)
    assert "built with TensorRT 10.3.0.30 on GPU Orin (sm_87); this machine has TensorRT 10.7.0.23" in text
    assert "rebuild with: fer-edge build-engine m.int8.onnx --precision int8" in text


def test_matching_engine_opens_with_sidecar_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trt_engine, "device_here", lambda index=0: HERE)
    backend = load_backend(make_engine(tmp_path))
    assert backend.name == "tensorrt" and backend.precision == "int8"
    assert backend.labels == tuple(LABELS) and backend.dataset == "fer2013"
    assert json.loads(backend.metadata["labels"]) == LABELS and backend.metadata["arch"] == "test"
    assert not backend.is_active


# -- the CUDA data path, for real, with a stand-in for the engine -----------------------------


class CopyContext:
    """Stands in for IExecutionContext: 'logits' row i = the first C pixels of input row i,
    copied device-to-device on the given stream, so every transfer of the runner is real."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.addresses: dict[str, int] = {}
        self.shape: tuple[int, ...] = ()
        self.calls = 0

    def execute(self, stream: int) -> None:
        from fer_edge.runtime.cuda_api import check_cuda

        cudart = import_cudart()
        assert cudart is not None
        self.calls += 1
        row_in, row_out = 48 * 48 * 4, self.num_classes * 4
        for r in range(self.shape[0]):
            check_cuda(
                cudart.cudaMemcpyAsync(
                    self.addresses["logits"] + r * row_out,
                    self.addresses["input"] + r * row_in,
                    row_out,
                    cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice,
                    stream,
                )
            )


def fake_tensorrt(monkeypatch: pytest.MonkeyPatch, context: CopyContext) -> None:
    loaded = tensorrt_api.LoadedEngine(runtime=None, engine=None, context=context)
    monkeypatch.setattr(trt_engine, "device_here", lambda index=0: HERE)
    monkeypatch.setattr(tensorrt_api, "deserialize", lambda data, path, dla_core=None: loaded)
    monkeypatch.setattr(tensorrt_api, "io_tensors", lambda engine: (["input"], ["logits"]))
    monkeypatch.setattr(tensorrt_api, "tensor_numpy_dtype", lambda engine, name: np.float32)
    monkeypatch.setattr(
        tensorrt_api,
        "set_tensor_address",
        lambda ctx, name, address: ctx.addresses.__setitem__(name, address),
    )
    monkeypatch.setattr(
        tensorrt_api, "set_input_shape", lambda ctx, name, shape: setattr(ctx, "shape", shape)
    )
    monkeypatch.setattr(tensorrt_api, "execute_async", lambda ctx, stream: ctx.execute(stream))
    monkeypatch.setattr(tensorrt_api, "tensor_shape", lambda ctx, name: (
        ctx.shape if name == "input" else (ctx.shape[0], ctx.num_classes)))


@pytest.mark.gpu
@pytest.mark.skipif(import_cudart() is None, reason="cuda-python is not installed")
@pytest.mark.skipif(cuda_device_count() == 0, reason="no CUDA device")
@pytest.mark.parametrize(("batch", "n", "runs"), [("1:8:32", 70, 3), ("8", 3, 1), ("1:8:32", 1, 1)])
def test_runner_moves_data_through_the_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: str, n: int, runs: int
) -> None:
    context = CopyContext(len(LABELS))
    fake_tensorrt(monkeypatch, context)
    faces = np.random.default_rng(n).integers(0, 256, size=(n, 48, 48), dtype=np.uint8)
    with load_backend(make_engine(tmp_path, parse_batch(batch))) as backend:
        logits = backend.infer(faces)
        again = backend.infer(faces[:1])
        assert backend.last_latency_ms is not None and backend.last_latency_ms > 0
        # CUDA events bracket the copies and the execution on the runner's stream
        assert backend.last_gpu_ms is not None and 0 < backend.last_gpu_ms <= backend.last_latency_ms
    assert not backend.is_active
    expected = faces.reshape(n, -1)[:, : len(LABELS)].astype(np.float32)
    np.testing.assert_array_equal(logits, expected)
    np.testing.assert_array_equal(again, expected[:1])
    assert context.calls == runs + 1

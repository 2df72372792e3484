"""Backends: selection by suffix, input preparation, and PyTorch vs ONNX Runtime parity on the CPU."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from fer_edge.core.errors import FerEdgeError
from fer_edge.model.labels import FER2013_LABELS
from fer_edge.runtime.classifier import backend_kind, load_backend, prepare_batch
from fer_edge.runtime.classifier_ort import CPU_EP, CUDA_EP, TRT_EP, choose_providers
from fer_edge.runtime.classifier_torch import choose_torch_device

torch = pytest.importorskip("torch", reason="torch is needed to build the test model")


# -- pure parts ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "kind"),
    [("m.pt", "pytorch"), ("m.onnx", "onnxruntime"), ("m.int8.onnx", "onnxruntime"),
     ("m.int8.engine", "tensorrt"), ("M.ONNX", "onnxruntime")],
)
def test_backend_kind_by_suffix(name: str, kind: str) -> None:
    assert backend_kind(name) == kind


@pytest.mark.parametrize("name", ["model.tflite", "model", "model.onnx.json"])
def test_unknown_suffix_is_refused(name: str) -> None:
    with pytest.raises(FerEdgeError, match="unknown model file type"):
        load_backend(name)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FerEdgeError, match="file not found"):
        load_backend(tmp_path / "absent.onnx")


def test_unknown_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FerEdgeError, match="unknown device"):
        load_backend(tmp_path / "m.onnx", device="tpu")


def test_foreign_onnx_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "foreign.onnx"
    bad.write_bytes(b"this is not a protobuf at all \x00\xff" * 10)
    with pytest.raises(FerEdgeError, match="not a readable ONNX model"):
        load_backend(bad)


def test_engine_on_cpu_is_refused(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    with pytest.raises(FerEdgeError, match="GPU only"):
        load_backend(engine, device="cpu")


@pytest.mark.parametrize(
    ("device", "available", "expected"),
    [
        ("cpu", [CUDA_EP, CPU_EP], [CPU_EP]),
        ("auto", [CPU_EP], [CPU_EP]),
        ("auto", [TRT_EP, CUDA_EP, CPU_EP], [CUDA_EP, CPU_EP]),
        ("cuda", [TRT_EP, CUDA_EP, CPU_EP], [CUDA_EP, CPU_EP]),
        ("tensorrt", [TRT_EP, CUDA_EP, CPU_EP], [TRT_EP, CUDA_EP, CPU_EP]),
    ],
)
def test_choose_providers(device: str, available: list[str], expected: list[str]) -> None:
    assert choose_providers(device, available) == expected


@pytest.mark.parametrize("device", ["cuda", "tensorrt"])
def test_unavailable_provider_is_refused(device: str) -> None:
    with pytest.raises(FerEdgeError, match="onnxruntime-gpu"):
        choose_providers(device, [CPU_EP])


def test_choose_torch_device() -> None:
    assert choose_torch_device("auto", False) == "cpu"
    assert choose_torch_device("auto", True) == "cuda"
    with pytest.raises(FerEdgeError, match="no CUDA GPU"):
        choose_torch_device("cuda", False)
    with pytest.raises(FerEdgeError, match="build-engine"):
        choose_torch_device("tensorrt", True)


@pytest.mark.parametrize("shape", [(5, 48, 48), (5, 1, 48, 48)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_prepare_batch_shapes_and_dtypes(shape: tuple[int, ...], dtype: type) -> None:
    batch = (np.arange(np.prod(shape)) % 256).reshape(shape).astype(dtype)
    out = prepare_batch(batch)
    assert out.shape == (5, 1, 48, 48)
    assert out.dtype == np.float32
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out.reshape(-1), batch.reshape(-1).astype(np.float32))  # raw, not scaled


@pytest.mark.parametrize("shape", [(5, 3, 48, 48), (5, 64, 64), (0, 48, 48), (48,)])
def test_prepare_batch_rejects_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(FerEdgeError, match="face batch"):
        prepare_batch(np.zeros(shape, dtype=np.uint8))


def test_prepare_batch_rejects_strings() -> None:
    with pytest.raises(FerEdgeError, match="dtype"):
        prepare_batch(np.array([["a"] * 48] * 48))


# -- real models on the CPU ------------------------------------------------------------------

def _small_checkpoint(tmp_path: Path) -> Path:
    from fer_edge.model.checkpoint import save_checkpoint
    from fer_edge.model.net import ModelConfig, build_model

    torch.manual_seed(0)
    config = ModelConfig(num_classes=7, depth=3, base_filters=8, fc_width=32, fc_layers=1)
    model = build_model(config).eval()
    # Non-trivial BatchNorm statistics, so eval-mode folding differences would show up.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "small.pt"
    save_checkpoint(path, {
        "model_config": config.to_dict(), "state_dict": model.state_dict(), "arch": config.arch,
        "dataset": "fer2013", "labels": list(FER2013_LABELS), "epoch": 1, "train_args": {}, "metrics": {},
    })
    return path


def _export_onnx(ckpt_path: Path, out: Path, metadata: dict[str, str] | None) -> Path:
    import onnx

    from fer_edge.model.checkpoint import load_checkpoint, model_from_checkpoint

    model = model_from_checkpoint(load_checkpoint(ckpt_path))
    with warnings.catch_warnings():  # the TorchScript exporter warns that it is legacy
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.zeros(1, 1, 48, 48),), str(out), dynamo=False, opset_version=17,
            input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        )
    proto = onnx.load(str(out))
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out))
    return out


@pytest.fixture(scope="module")
def small_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("models")
    ckpt = _small_checkpoint(tmp)
    meta = {"labels": json.dumps(list(FER2013_LABELS)), "dataset": "fer2013", "arch": "test",
            "fer_edge_version": "0.1.0"}
    return ckpt, _export_onnx(ckpt, tmp / "small.onnx", meta)


def test_pytorch_and_onnxruntime_agree_on_cpu(small_models: tuple[Path, Path]) -> None:
    ckpt, onnx_path = small_models
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, size=(2000, 48, 48), dtype=np.uint8)
    pt_backend = load_backend(ckpt, device="cpu", threads=1)
    ort_backend = load_backend(onnx_path, device="cpu", threads=1)
    with pt_backend as pt, ort_backend as ort:
        assert pt.name == "torch-cpu"
        assert ort.name == "onnxruntime-cpu"
        assert pt.labels == ort.labels == FER2013_LABELS
        assert pt.dataset == ort.dataset == "fer2013"
        assert pt.precision == ort.precision == "fp32"
        a = np.concatenate([pt.infer(faces[i:i + 256]) for i in range(0, len(faces), 256)])
        b = np.concatenate([ort.infer(faces[i:i + 256]) for i in range(0, len(faces), 256)])
        assert pt.last_latency_ms is not None and pt.last_latency_ms > 0
        assert ort.last_latency_ms is not None and ort.last_latency_ms > 0
        assert pt.last_gpu_ms is None and ort.last_gpu_ms is None  # no CUDA events on the CPU
    assert a.shape == b.shape == (2000, 7)
    assert a.dtype == b.dtype == np.float32
    agreement = float(np.mean(a.argmax(1) == b.argmax(1)))
    assert agreement >= 0.999
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU")
def test_torch_cuda_backend_times_the_device_with_events(small_models: tuple[Path, Path]) -> None:
    ckpt, _ = small_models
    faces = np.random.default_rng(1).integers(0, 256, size=(64, 48, 48), dtype=np.uint8)
    with load_backend(ckpt, device="cpu") as cpu, load_backend(ckpt, device="cuda") as gpu:
        assert gpu.name == "torch-cuda"
        expected = cpu.infer(faces)
        got = gpu.infer(faces)
        assert gpu.last_gpu_ms is not None and gpu.last_latency_ms is not None
        # the events bracket work the wall clock also saw, so device time cannot exceed it
        assert 0 < gpu.last_gpu_ms <= gpu.last_latency_ms + 0.05
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)


def test_backend_lifecycle(small_models: tuple[Path, Path]) -> None:
    _, onnx_path = small_models
    backend = load_backend(onnx_path, device="cpu")
    assert not backend.is_active
    assert backend.last_latency_ms is None
    assert backend.metadata["arch"] == "test"
    out = backend.infer(np.zeros((3, 1, 48, 48), dtype=np.float32))  # activates on first use
    assert backend.is_active and out.shape == (3, 7)
    with pytest.raises(FerEdgeError, match="already active"):
        backend.activate()
    backend.deactivate()
    backend.deactivate()  # idempotent
    assert not backend.is_active


def test_onnx_without_labels_is_not_a_fer_edge_model(small_models: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, _ = small_models
    bare = _export_onnx(ckpt, tmp_path / "bare.onnx", metadata=None)
    with pytest.raises(FerEdgeError, match="not a fer-edge model"):
        load_backend(bare)


def test_foreign_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "foreign.pt"
    torch.save({"weights": [1, 2, 3]}, path)
    with pytest.raises(FerEdgeError, match="not a fer-edge checkpoint"):
        load_backend(path)


def test_onnx_precision_from_graph(small_models: tuple[Path, Path]) -> None:
    import onnx
    from onnx import TensorProto, helper

    from fer_edge.model.formats import graph_precision

    _, onnx_path = small_models
    model = onnx.load(str(onnx_path))
    assert graph_precision(model) == "fp32"
    qdq = onnx.load(str(onnx_path))
    qdq.graph.node.insert(0, helper.make_node("QuantizeLinear", ["input", "s"], ["q"]))
    assert graph_precision(qdq) == "int8"
    fp16 = onnx.load(str(onnx_path))
    conv = next(n for n in fp16.graph.node if n.op_type == "Conv")
    weight = next(t for t in fp16.graph.initializer if t.name == conv.input[1])
    weight.data_type = TensorProto.FLOAT16
    assert graph_precision(fp16) == "fp16"

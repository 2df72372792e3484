"""Both networks' TensorRT engines in one process, against fakes that keep the real bindings' rules
(``fake_pycuda``, ``fake_tensorrt_runtime``): JetPack 5's TensorRT 8.5.2 with numpy 1.24, one CUDA context shared by the
classifier and the detector, GPU time that counts device work only, the sidecar's DLA core.

Only public entry points and ``sys.modules`` are used, so these tests also run against the code
before the runtime package, and fail there.
"""

from __future__ import annotations

import hashlib
import sys
import types
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from fake_pycuda import OP_MS, FakeCuda
from fake_tensorrt_runtime import TrtState, classifier_plan, fake_tensorrt, yunet_plan

from fer_edge.model.engine_sidecar import Sidecar, write_sidecar
from fer_edge.runtime.classifier import load_backend

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


class Gpu:
    def __init__(self, cuda: FakeCuda, trt: Any) -> None:
        self.cuda, self.trt = cuda, trt
        self.state: TrtState = trt.state
        self.version = str(trt.__version__)


@pytest.fixture
def gpu_factory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Install a JetPack-5-like GPU: pycuda (no cuda-python) and a fake TensorRT of a version."""
    made: list[Gpu] = []

    def make(version: str = "10.3.0.30") -> Gpu:
        cuda = FakeCuda()
        driver = cuda.module()
        pycuda = types.ModuleType("pycuda")
        pycuda.driver = driver  # type: ignore[attr-defined]
        for name, module in {"pycuda": pycuda, "pycuda.driver": driver, "cuda": None, "cuda.bindings": None,
                             "cuda.bindings.runtime": None, "cuda.cudart": None,
                             "tensorrt": fake_tensorrt(version, cuda)}.items():
            monkeypatch.setitem(sys.modules, name, module)
        made.append(Gpu(cuda, sys.modules["tensorrt"]))
        return made[-1]

    try:
        from fer_edge.runtime import cuda_context
    except ImportError:  # the code before the runtime package
        cuda_context = None  # type: ignore[assignment]
    if cuda_context is not None:
        monkeypatch.setattr(cuda_context, "_OPEN", {})
    yield make
    if cuda_context is not None:
        assert cuda_context._OPEN == {}, "a CUDA binding was left open"


def write_engine(tmp_path: Path, name: str, plan: bytes, version: str, profile: dict[str, list[int]],
                 dataset: str = "fer2013", dla_core: int | None = None, labels: list[str] = LABELS) -> Path:
    engine = tmp_path / name
    engine.write_bytes(plan)
    write_sidecar(engine, Sidecar(
        tensorrt_version=version, gpu_name="Orin", compute_capability="8.7", precision="fp16",
        profile=profile, source_onnx="m.onnx", source_onnx_sha256="0" * 64, labels=labels, dataset=dataset,
        engine_sha256=hashlib.sha256(plan).hexdigest(), engine_bytes=len(plan),
        build_command=f"fer-edge build-engine m.onnx --out {engine}", built_at="2026-01-01T00:00:00+00:00",
        build_seconds=1.0, dla_core=dla_core,
    ))
    return engine


def classifier_engine(tmp_path: Path, gpu: Gpu, batch: tuple[int, int, int] = (1, 8, 32),
                      dla_core: int | None = None) -> Path:
    profile = {k: [b, 1, 48, 48] for k, b in zip(("min", "opt", "max"), batch)}
    return write_engine(tmp_path, "m.fp16.engine", classifier_plan(len(LABELS)), gpu.version, profile,
                        dla_core=dla_core)


def detector_engine(tmp_path: Path, gpu: Gpu) -> Path:
    from fer_edge.runtime.detector_profile import DETECTOR_KIND, parse_detector_size

    return write_engine(tmp_path, "yunet.engine", yunet_plan(), gpu.version,
                        parse_detector_size("64x64").shapes(), dataset=DETECTOR_KIND, labels=["face"])


def faces(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 48, 48), dtype=np.uint8)


def expected_logits(batch: np.ndarray) -> np.ndarray:
    return batch.reshape(len(batch), -1)[:, : len(LABELS)].astype(np.float32)


# -- JetPack 5.1: TensorRT 8.5.2 with numpy 1.24 -----------------------------------------------------


def test_the_fake_tensorrt_8_5_2_nptype_fails_as_the_real_one_does(gpu_factory: Any) -> None:
    trt = gpu_factory("8.5.2.2").trt
    with pytest.raises(AttributeError, match="has no attribute 'bool'"):
        trt.nptype(trt.DataType.FLOAT)  # the table is built whole: every type fails
    later = gpu_factory("8.6.2.3").trt  # 8.5.3 and 8.6 write np.bool_
    assert later.nptype(later.DataType.BOOL) is np.bool_ and later.nptype(later.DataType.FLOAT) is np.float32


@pytest.mark.parametrize("version", ["8.5.2.2", "8.6.2.3", "10.3.0.30", "11.1.0.5"])
def test_an_engine_loads_and_runs_on_every_tensorrt(tmp_path: Path, gpu_factory: Any, version: str) -> None:
    gpu = gpu_factory(version)
    batch = faces(5)
    with load_backend(classifier_engine(tmp_path, gpu)) as model:
        np.testing.assert_array_equal(model.infer(batch), expected_logits(batch))
    assert gpu.state.executions == 1


# -- one CUDA context for every engine of the process -----------------------------------------------


def test_classifier_and_detector_engines_share_one_context(tmp_path: Path, gpu_factory: Any) -> None:
    from fer_edge.camera.detection import make_detector

    gpu = gpu_factory()
    cuda = gpu.cuda
    frame = np.zeros((64, 64, 3), np.uint8)
    batch = faces(3)
    with load_backend(classifier_engine(tmp_path, gpu)) as classifier:
        np.testing.assert_array_equal(classifier.infer(batch), expected_logits(batch))
        detector = make_detector(detector_engine(tmp_path, gpu), min_face=1)
        assert len(detector.detect(frame)) == 0  # the detector's engine loads on its first frame
        # the classifier's stream and buffers still belong to the current context
        np.testing.assert_array_equal(classifier.infer(batch), expected_logits(batch))
        assert len(detector.detect(frame)) == 0
        runner: Any = detector.runner  # type: ignore[attr-defined]
        # the detector's own timing: one input copy, the kernel, twelve output copies
        assert runner.last_gpu_ms == pytest.approx(14 * OP_MS)
        assert runner.last_latency_ms is not None and runner.last_latency_ms > 0
        runner.close()
        np.testing.assert_array_equal(classifier.infer(batch), expected_logits(batch))
    assert gpu.state.executions == 5
    assert [c.primary for c in cuda.contexts] == [True]  # one context, the primary one
    assert cuda.stack == [] and cuda.contexts[0].retains == 0  # nothing left pushed or retained


def test_closing_never_pops_a_context_it_did_not_push(tmp_path: Path, gpu_factory: Any) -> None:
    from fer_edge.camera.detection import make_detector

    gpu = gpu_factory()
    driver = sys.modules["pycuda.driver"]
    foreign = driver.Device(0).make_context()  # another library's context, current before ours
    frame = np.zeros((64, 64, 3), np.uint8)
    classifier = load_backend(classifier_engine(tmp_path, gpu))
    classifier.activate()
    detector = make_detector(detector_engine(tmp_path, gpu), min_face=1)
    detector.detect(frame)
    classifier.deactivate()  # the first engine closes first: the detector's context stays
    assert len(detector.detect(frame)) == 0
    detector.runner.close()  # type: ignore[attr-defined]
    assert gpu.cuda.stack == [foreign]
    foreign.pop()


# -- GPU time is device work only --------------------------------------------------------------------


def test_gpu_time_brackets_each_chunk_s_copies_and_kernel(tmp_path: Path, gpu_factory: Any) -> None:
    gpu = gpu_factory()
    with load_backend(classifier_engine(tmp_path, gpu, batch=(1, 8, 8))) as classifier:
        gpu.cuda.log.clear()
        batch = faces(12)  # two chunks: 8 + 4
        np.testing.assert_array_equal(classifier.infer(batch), expected_logits(batch))
        log = [entry for entry in gpu.cuda.log if entry not in ("push", "pop")]
        gpu_ms, wall_ms = classifier.last_gpu_ms, classifier.last_latency_ms
        host_ms = getattr(classifier, "last_host_ms", None)
    records = [i for i, entry in enumerate(log) if entry == "event record"]
    assert len(records) == 4, log  # a start and an end event per chunk
    for start, end in zip(records[::2], records[1::2]):
        # only device work between the events: the pinned copy and the shape are set before
        assert log[start + 1: end] == ["htod", "execute", "dtoh"], log
    assert gpu_ms == pytest.approx(2 * 3 * OP_MS)  # the chunks' device times, no host wait between
    assert wall_ms is not None and host_ms == pytest.approx(max(wall_ms - gpu_ms, 0.0))


# -- DLA -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("core", [None, 1])
def test_the_runtime_is_put_on_the_sidecar_s_dla_core(tmp_path: Path, gpu_factory: Any, core: int | None) -> None:
    gpu = gpu_factory()
    with load_backend(classifier_engine(tmp_path, gpu, dla_core=core)) as classifier:
        classifier.infer(faces(1))
    assert gpu.state.dla_core_at_deserialize == [core]

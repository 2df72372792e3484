"""Which rows to run: the models (given or shipped) times the devices this machine has."""

from __future__ import annotations

import functools
from pathlib import Path

from fer_edge.bench.rows import DEFAULT_LOADER, RowSpec
from fer_edge.core.errors import FerEdgeError
from fer_edge.core.machine import nvidia_gpu_present
from fer_edge.model.formats import BY_SUFFIX, check_device, layout_note, onnx_facts, precision_of

SHIPPED_FER2013 = ("fer2013.onnx", "fer2013.int8.onnx", "fer2013.int8.cpu.onnx")

# What a (file kind, device) pair is expected to run as; only a label for rows that fail early.
BACKEND_HINTS = {
    ("pt", "cpu"): "torch-cpu",
    ("pt", "cuda"): "torch-cuda",
    ("onnx", "cpu"): "onnxruntime-cpu",
    ("onnx", "cuda"): "onnxruntime-cuda",
    ("onnx", "tensorrt"): "onnxruntime-tensorrt",
    ("engine", "tensorrt"): "tensorrt",
}


def shipped_fer2013_models() -> list[Path]:
    """The shipped FER2013 models that this installation has; none at all is a one-line error."""
    from fer_edge.model.shipped import WEIGHTS_DIR

    found = [WEIGHTS_DIR / name for name in SHIPPED_FER2013 if (WEIGHTS_DIR / name).is_file()]
    if not found:
        raise FerEdgeError(f"no shipped models in this installation ({WEIGHTS_DIR}); pass --models")
    return found


@functools.lru_cache(maxsize=1)
def onnxruntime_providers() -> tuple[str, ...]:
    """ONNX Runtime's providers here; none where it is missing or broken (its rows then say why)."""
    from fer_edge.core.optional import import_onnxruntime

    try:
        return tuple(import_onnxruntime().get_available_providers())
    except FerEdgeError:
        return ()


def devices_for(kind: str, device: str, cpu_layout: bool = False) -> list[str]:
    """The devices a model file is benchmarked on; ``auto`` means every one this machine has.

    ``cpu_layout``: the CPU-layout INT8 ONNX (uint8, int32 biases) is no TensorRT graph; on the
    GPU providers ONNX Runtime would run most of it on the CPU anyway, under a GPU label, so
    ``auto`` benchmarks it on the CPU only.
    """
    if device != "auto":
        return [device]
    if kind == "engine":
        return ["tensorrt"]
    if kind == "onnx" and cpu_layout:
        return ["cpu"]
    if kind == "onnx":
        providers = onnxruntime_providers()
        found = ["cpu"]
        if "CUDAExecutionProvider" in providers:
            found.append("cuda")
        if "TensorrtExecutionProvider" in providers:
            found.append("tensorrt")
        return found
    if kind == "pt":
        return ["cpu", "cuda"] if nvidia_gpu_present() else ["cpu"]
    return ["cpu"]


def is_cpu_layout(path: Path, kind: str) -> bool:
    """An INT8 ONNX quantised with ``--target cpu`` (its metadata says so)."""
    return kind == "onnx" and path.is_file() and _facts(path)[1] == "cpu"


def model_kind(path: Path) -> str:
    """The kind in the model-format table; ``unknown`` for another suffix, whose row then fails in its
    own process with the loader's message (a test's fake loader opens its own files)."""
    return BY_SUFFIX[path.suffix.lower()].kind if path.suffix.lower() in BY_SUFFIX else "unknown"


def _facts(path: Path) -> tuple[str, str | None]:
    """(precision, layout) of a file, as far as it can be read here: a row that cannot read its
    model fails in its own process, with the reason, not while planning."""
    kind = model_kind(path)
    if kind == "unknown":
        return ("?", None)
    if kind != "onnx":
        return (precision_of(path), None)
    if not path.is_file():
        return ("?", None)
    try:
        return onnx_facts(path)
    except FerEdgeError:
        return ("?", None)


def parse_batches(text: str) -> tuple[int, ...]:
    """``"1,8,64"`` -> (1, 8, 64); zero, negative or non-numbers are a one-line error."""
    sizes: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise FerEdgeError(f"--batch: {part!r} is not a whole number (expected e.g. 1,8,64)") from None
        if value < 1:
            raise FerEdgeError(f"--batch: batch size must be at least 1, got {value}")
        if value not in sizes:
            sizes.append(value)
    if not sizes:
        raise FerEdgeError("--batch: give at least one batch size, e.g. 1,8,64")
    return tuple(sizes)


def plan_rows(
    models: list[Path],
    device: str,
    threads: int | None,
    batches: tuple[int, ...],
    inputs: Path,
    measure: dict[str, object],
    split: str,
    loader: str = DEFAULT_LOADER,
) -> list[RowSpec]:
    check_device(device)
    rows: list[RowSpec] = []
    for model in models:
        kind = model_kind(model)
        precision, layout = _facts(model)
        if layout == "cpu" and device == "tensorrt":
            raise FerEdgeError("is the CPU-layout INT8 model, which TensorRT cannot build; bench it with "
                               "--device cpu, or the TensorRT INT8 model (NAME.int8.onnx) on tensorrt", path=model)
        for dev in devices_for(kind, device, layout == "cpu"):
            rows.append(
                RowSpec(
                    model=str(model),
                    device=dev,
                    threads=threads,
                    batches=batches,
                    inputs=str(inputs),
                    measure=dict(measure),
                    split=split,
                    loader=loader,
                    backend_hint=BACKEND_HINTS.get((kind, dev), f"{kind}-{dev}"),
                    precision_hint=precision,
                    layout_note=layout_note(layout, dev),
                )
            )
    return rows

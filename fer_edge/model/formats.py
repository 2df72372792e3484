"""What a model file is: one table from its suffix to its kind, the devices it runs on, how its
precision is read, and the runtime its layout is made for.

``bench``, ``run``, ``evaluate`` and ``info`` all decide here, so a file one command opens is a
file the others open. An INT8 ONNX is made for one runtime: the TensorRT layout (Q/DQ on the inputs
of Conv and Gemm only, what TensorRT fuses) runs on ONNX Runtime's CPU kernels slower than FP32, and
the CPU layout (``quantize --target cpu``: uint8 activations, int32 biases) is no TensorRT graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from fer_edge.core.errors import FerEdgeError

FLOAT16 = 10  # onnx.TensorProto.FLOAT16, spelled out so this module needs no onnx import
DEVICES: Tuple[str, ...] = ("auto", "cpu", "cuda", "tensorrt")
PRECISIONS: Tuple[str, ...] = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ModelFormat:
    kind: str  # "pt" | "onnx" | "engine"
    suffix: str
    backend: str  # the backend that opens it: "pytorch" | "onnxruntime" | "tensorrt"
    described: str  # for messages: ".onnx (ONNX Runtime)"
    devices: Tuple[str, ...]  # the devices it can run on, of DEVICES ("auto" aside)


FORMATS: Tuple[ModelFormat, ...] = (
    ModelFormat("pt", ".pt", "pytorch", ".pt (PyTorch checkpoint)", ("cpu", "cuda")),
    ModelFormat("onnx", ".onnx", "onnxruntime", ".onnx (ONNX Runtime)", ("cpu", "cuda", "tensorrt")),
    ModelFormat("engine", ".engine", "tensorrt", ".engine (TensorRT)", ("tensorrt",)),
)
BY_SUFFIX: Dict[str, ModelFormat] = {f.suffix: f for f in FORMATS}

# The runtime an INT8 ONNX layout is made for (its metadata ``quant_target``), the devices that are
# that runtime, how a table names it, and the file to use elsewhere.
LAYOUTS: Dict[str, Tuple[Tuple[str, ...], str, str]] = {
    "tensorrt": (("tensorrt",), "laid out for TensorRT", "on a CPU use the CPU layout (NAME.int8.cpu.onnx)"),
    "cpu": (("cpu",), "laid out for ONNX Runtime on the CPU", "on a GPU use the TensorRT layout (NAME.int8.onnx)"),
}
ELSEWHERE = {note: advice for _, note, advice in LAYOUTS.values()}


def known_suffixes() -> str:
    return ", ".join(f.described for f in FORMATS)


def model_format(path: Union[str, Path]) -> ModelFormat:
    """The format of a model file, by its suffix; an unknown one is a one-line error naming the known."""
    suffix = Path(path).suffix.lower()
    try:
        return BY_SUFFIX[suffix]
    except KeyError:
        raise FerEdgeError(
            f"unknown model file type {suffix or '(no suffix)'!r}; fer-edge runs {known_suffixes()}", path=path
        ) from None


def check_device(device: str, option: str = "--device") -> str:
    if device not in DEVICES:
        raise FerEdgeError(f"{option} must be one of {', '.join(DEVICES)}, got {device!r}")
    return device


# -- precision readers, one per kind ----------------------------------------------------------------


def engine_precision(path: Path) -> str:
    """From the engine's sidecar (``model.int8.engine.json``), else its name as build-engine writes it;
    ``?`` when neither says."""
    import json

    try:
        recorded = json.loads(path.with_name(path.name + ".json").read_text()).get("precision")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if recorded in PRECISIONS:
        return str(recorded)
    for part in reversed(path.name.split(".")):
        if part in PRECISIONS:
            return part
    return "?"


def onnx_facts(path: Path) -> Tuple[str, Optional[str]]:
    """(precision, layout) of an ONNX file: its metadata where it says, else its graph."""
    from fer_edge.model.onnx_contract import load_onnx

    return onnx_model_facts(load_onnx(path, load_external_data=False))


def onnx_model_facts(model: Any) -> Tuple[str, Optional[str]]:
    """(precision, layout) of a loaded ONNX ModelProto: metadata ``precision`` (export and quantize
    write it), else any quantisation operator means INT8, else the first convolution's float type."""
    from fer_edge.model.onnx_contract import get_metadata, is_quantized

    meta = get_metadata(model)
    precision = meta.get("precision") or ("int8" if is_quantized(model) else graph_precision(model))
    layout = None
    if precision == "int8":
        layout = "cpu" if meta.get("quant_target") == "cpu" else "tensorrt"
    return precision, layout


# INT8 means explicit quantisation (QuantizeLinear nodes, which TensorRT and ONNX Runtime both honour);
# FP16 means the first convolution computes in half precision (an FP16 ONNX, e.g. from
# onnxconverter-common with float32 inputs/outputs kept); anything else is FP32.
def has_qdq(model: Any) -> bool:
    """True when the graph quantises explicitly (QuantizeLinear present)."""
    return any(node.op_type == "QuantizeLinear" for node in model.graph.node)


def _first_conv(model: Any) -> Optional[Any]:
    return next((node for node in model.graph.node if node.op_type == "Conv"), None)


def _elem_type(model: Any, name: str) -> Optional[int]:
    """Element type of a tensor by name, where the graph records it."""
    graph = model.graph
    for init in graph.initializer:
        if init.name == name:
            return int(init.data_type)
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        if vi.name == name:
            return int(vi.type.tensor_type.elem_type)
    for node in graph.node:
        if node.op_type == "Cast" and name in node.output:
            return next((int(a.i) for a in node.attribute if a.name == "to"), None)
    return None


def is_fp16_graph(model: Any) -> bool:
    """True when the first convolution's input or weight is float16."""
    conv = _first_conv(model)
    if conv is None:
        return False
    return any(_elem_type(model, name) == FLOAT16 for name in conv.input[:2])


def graph_precision(model: Any) -> str:
    """``"int8"``, ``"fp16"`` or ``"fp32"`` for an ONNX ModelProto."""
    if has_qdq(model):
        return "int8"
    if is_fp16_graph(model):
        return "fp16"
    return "fp32"


def precision_of(path: Union[str, Path]) -> str:
    """``fp32``, ``fp16``, ``int8`` (or ``?`` for an engine whose name does not say) of a model file."""
    path = Path(path)
    fmt = model_format(path)
    if fmt.kind == "pt":
        return "fp32"
    if fmt.kind == "engine":
        return engine_precision(path)
    return onnx_facts(path)[0]


def layout_of(path: Union[str, Path]) -> Optional[str]:
    """The runtime an INT8 ONNX is laid out for (a key of :data:`LAYOUTS`); None for any other file,
    which runs as well on every device it can run on (an engine is built for its device)."""
    path = Path(path)
    if model_format(path).kind != "onnx":
        return None
    return onnx_facts(path)[1]


def layout_note(layout: Optional[str], device: str) -> str:
    """``laid out for TensorRT`` where a file made for one runtime runs on another device, else ``""``."""
    if not layout or layout not in LAYOUTS:
        return ""
    devices, note, _ = LAYOUTS[layout]
    return "" if device in devices else note

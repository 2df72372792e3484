"""The model-file contract (docs/architecture.md): reading, writing and checking an exported ONNX.

Every exported model has input ``input`` float32 ``[N, 1, 48, 48]`` (raw pixels 0..255, dynamic
batch), output ``logits`` float32 ``[N, C]``, and ``metadata_props`` ``labels`` (JSON list),
``dataset``, ``arch``, ``fer_edge_version``; INT8 models also ``calibration``.

Only ``onnx`` is imported here (no torch, no onnxruntime), so backends and ``bench`` can use it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fer_edge.core.errors import FerEdgeError
from fer_edge.core.paths import require_file

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
OPSET = 17
IMAGE_SIZE = 48
REQUIRED_METADATA: tuple[str, ...] = ("labels", "dataset", "arch", "fer_edge_version")
# A metadata entry is a few kB (labels, metrics, calibration); far more, or deep nesting, is hostile.
MAX_METADATA_JSON = 1_000_000
MAX_METADATA_DEPTH = 16
# Optional keys written by export/quantize: "metrics" (JSON of the checkpoint's recorded
# accuracies), "calibration" (JSON, INT8 only), "precision" ("fp32" | "int8"), "quant_target".


def load_onnx(path: str | Path, load_external_data: bool = True) -> Any:
    """Load an ONNX file; a missing or corrupt file is a one-line :class:`FerEdgeError`."""
    import onnx

    path = require_file(path, "model file")
    try:
        return onnx.load(str(path), load_external_data=load_external_data)
    except Exception as exc:  # protobuf raises DecodeError, onnx raises others for a foreign file
        raise FerEdgeError(f"not a readable ONNX model ({type(exc).__name__})", path=path) from None


def get_metadata(model: Any) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def set_metadata(model: Any, values: dict[str, str]) -> None:
    """Set (add or replace) ``metadata_props`` entries, keeping the others."""
    current = get_metadata(model)
    current.update(values)
    del model.metadata_props[:]
    for key, value in current.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def read_model_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict of strings (weights are not loaded).

    Raises :class:`FerEdgeError` for a missing or unreadable file; does not validate the
    contract (see :func:`contract_violations`).
    """
    return get_metadata(load_onnx(path, load_external_data=False))


def _json_depth(text: str) -> int:
    """How deeply ``text``'s arrays and objects nest, counted without parsing (brackets in strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def metadata_json(meta: dict[str, str], key: str, path: str | Path | None = None, keep_invalid: bool = False) -> Any:
    """The JSON value of metadata entry ``key`` (``None`` when absent; the raw text when it is not JSON
    and ``keep_invalid``); a huge or deeply nested value is refused in one line before the parser sees it
    (Python's parser recurses: deep nesting would crash it)."""
    raw = meta.get(key)
    if raw is None:
        return None
    if len(raw) > MAX_METADATA_JSON:
        raise FerEdgeError(f"metadata {key!r} holds {len(raw):,} characters; refused (at most "
                           f"{MAX_METADATA_JSON:,})", path=path)
    if _json_depth(raw) > MAX_METADATA_DEPTH:
        raise FerEdgeError(f"metadata {key!r} nests deeper than {MAX_METADATA_DEPTH} levels; refused", path=path)
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        if keep_invalid:
            return raw
        raise FerEdgeError(f"metadata {key!r} is not valid JSON", path=path) from None


def labels_from_metadata(meta: dict[str, str], path: str | Path | None = None) -> tuple[str, ...]:
    """The class names in output order; a missing or malformed ``labels`` entry is a user error."""
    if meta.get("labels") is None:
        raise FerEdgeError("not a fer-edge model: no 'labels' in metadata_props", path=path)
    labels = metadata_json(meta, "labels", path, keep_invalid=True)
    if isinstance(labels, str):
        raise FerEdgeError("metadata 'labels' is not a JSON list", path=path)
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise FerEdgeError("metadata 'labels' is not a non-empty JSON list of strings", path=path)
    return tuple(labels)


def contract_metadata(
    labels: tuple[str, ...] | list[str],
    dataset: str,
    arch: str,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The metadata an exported model carries."""
    from fer_edge import __version__

    meta = {
        "labels": json.dumps(list(labels)),
        "dataset": dataset,
        "arch": arch,
        "fer_edge_version": __version__,
    }
    meta.update(extra or {})
    return meta


def _dims(value_info: Any) -> list[int | str]:
    """Shape of a graph input/output: ints for fixed dims, the symbol (or "?") for dynamic ones."""
    dims: list[int | str] = []
    for d in value_info.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or "?")
    return dims


def contract_violations(model: Any) -> list[str]:
    """Every way ``model`` breaks the model-file contract, one message each (empty: it complies)."""
    from onnx import TensorProto

    problems: list[str] = []
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    by_name = {i.name: i for i in inputs}
    if INPUT_NAME not in by_name:
        names = ", ".join(i.name for i in inputs) or "none"
        problems.append(f"no graph input named {INPUT_NAME!r} (inputs: {names})")
    else:
        vi = by_name[INPUT_NAME]
        if vi.type.tensor_type.elem_type != TensorProto.FLOAT:
            problems.append(f"input {INPUT_NAME!r} is not float32")
        dims = _dims(vi)
        if len(dims) != 4 or dims[1:] != [1, IMAGE_SIZE, IMAGE_SIZE]:
            expected = f"[N, 1, {IMAGE_SIZE}, {IMAGE_SIZE}]"
            problems.append(f"input {INPUT_NAME!r} has shape {dims}, expected {expected}")
        elif isinstance(dims[0], int):
            problems.append(f"input {INPUT_NAME!r} has a fixed batch size {dims[0]}, not a dynamic batch")
    if len(inputs) > 1:
        extra = ", ".join(i.name for i in inputs if i.name != INPUT_NAME)
        problems.append(f"unexpected extra graph inputs: {extra}")

    outputs = {o.name: o for o in graph.output}
    if OUTPUT_NAME not in outputs:
        names = ", ".join(outputs) or "none"
        problems.append(f"no graph output named {OUTPUT_NAME!r} (outputs: {names})")
    else:
        vo = outputs[OUTPUT_NAME]
        if vo.type.tensor_type.elem_type != TensorProto.FLOAT:
            problems.append(f"output {OUTPUT_NAME!r} is not float32")
        dims = _dims(vo)
        if len(dims) != 2:
            problems.append(f"output {OUTPUT_NAME!r} has shape {dims}, expected [N, C]")

    meta = get_metadata(model)
    for key in REQUIRED_METADATA:
        if not meta.get(key):
            problems.append(f"metadata_props has no {key!r}")
    if meta.get("labels"):
        try:
            labels = labels_from_metadata(meta)
        except FerEdgeError as exc:
            problems.append(str(exc))
        else:
            if OUTPUT_NAME in outputs:
                dims = _dims(outputs[OUTPUT_NAME])
                if len(dims) == 2 and isinstance(dims[1], int) and dims[1] != len(labels):
                    problems.append(f"output has {dims[1]} classes but metadata 'labels' lists {len(labels)}")
    return problems


def check_classifier_input(model: Any, path: str | Path) -> None:
    """Refuse, in one line and before ONNX Runtime or TensorRT is asked, a model whose image input is
    not float ``[N, 1, 48, 48]`` (a 3-channel or uint8 network, a detector given as the classifier).

    Float16 passes: the FP16 ONNX made for TensorRT 11 keeps the shape in half precision."""
    from onnx import TensorProto

    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if not inputs:
        raise FerEdgeError("not a fer-edge classifier: the graph has no input", path=path)
    chosen = next((i for i in inputs if i.name == INPUT_NAME), inputs[0])
    elem = chosen.type.tensor_type.elem_type
    dims = _dims(chosen)
    if elem in (TensorProto.FLOAT, TensorProto.FLOAT16) and len(dims) == 4 and dims[1:] == [1, IMAGE_SIZE,
                                                                                            IMAGE_SIZE]:
        return
    named = {TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16", TensorProto.DOUBLE: "float64"}
    type_name = named.get(elem) or (TensorProto.DataType.Name(elem).lower() if elem else "untyped")
    shown = "[" + ", ".join(str(d) for d in dims) + "]"
    raise FerEdgeError(
        f"input {chosen.name!r} is {type_name} {shown}; a fer-edge classifier takes float32 "
        f"[N, 1, {IMAGE_SIZE}, {IMAGE_SIZE}] (raw grayscale pixels, docs/architecture.md)",
        path=path,
    )


def is_quantized(model: Any) -> bool:
    """True for a graph with any quantisation operator (Q/DQ or integer kernels)."""
    quant_ops = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
                 "MatMulInteger", "DynamicQuantizeLinear"}
    return any(n.op_type in quant_ops for n in model.graph.node)

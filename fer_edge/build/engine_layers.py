"""Where an engine's layers run, for the sidecar (pure).

Two sources, both documented TensorRT API:

- ``IBuilderConfig.can_run_on_DLA(layer)``, asked for every network layer of a ``--dla`` build
  before building: the layers the DLA takes and those that fall back to the GPU.
- ``IEngineInspector.get_engine_information(LayerInformationFormat.JSON)`` (TensorRT 8.2+, with
  ``ProfilingVerbosity.DETAILED``): the engine's layers after fusion, with their type and the
  data type/format of their first output (``Int8 NC/32HW32``, ``Half ...``), i.e. which layers
  really run in INT8.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

Placement = Dict[str, List[str]]


def _engine_layer(entry: Any) -> dict[str, str]:
    """One inspector layer entry: a bare name (LAYER_NAMES_ONLY) or a dict (DETAILED)."""
    if not isinstance(entry, dict):
        return {"name": str(entry)}
    layer = {"name": str(entry.get("Name", "")), "type": str(entry.get("LayerType", ""))}
    outputs = entry.get("Outputs")
    if isinstance(outputs, list) and outputs and isinstance(outputs[0], dict):
        fmt = outputs[0].get("Format/Datatype")
        if fmt:
            layer["output"] = str(fmt)
    return layer


def summarise_layers(inspector_json: Optional[str], dla: Optional[Placement]) -> Optional[dict[str, Any]]:
    """The sidecar's ``layers`` entry; None when neither source said anything."""
    summary: dict[str, Any] = {}
    if dla is not None:
        summary["dla"] = list(dla.get("dla", []))
        summary["gpu_fallback"] = list(dla.get("gpu", []))
    if inspector_json:
        try:
            data = json.loads(inspector_json)
        except json.JSONDecodeError:
            data = None
        layers = data.get("Layers") if isinstance(data, dict) else None
        if isinstance(layers, list):
            summary["engine"] = [_engine_layer(entry) for entry in layers]
    return summary or None


def dla_fallback_note(summary: Optional[dict[str, Any]]) -> Optional[str]:
    """One line when a ``--dla`` build leaves layers on the GPU; None when all run on the DLA."""
    if not summary or "gpu_fallback" not in summary:
        return None
    gpu, dla = summary["gpu_fallback"], summary["dla"]
    if not gpu:
        return None
    shown = ", ".join(gpu[:3]) + (", ..." if len(gpu) > 3 else "")
    return (f"{len(gpu)} of {len(gpu) + len(dla)} layers cannot run on the DLA and fall back to the GPU "
            f"({shown}); the sidecar lists them")

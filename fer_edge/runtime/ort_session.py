"""Import ONNX Runtime, or say in one line which extra installs it.

ONNX Runtime is an extra, not a core dependency: the CPU wheel (``fer-edge[cpu]``), the CUDA
wheel (``fer-edge[gpu]``) and NVIDIA's Jetson wheels all install the same ``onnxruntime``
module, and two of them side by side hide the CUDA/TensorRT providers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

from fer_edge.core.optional import ORT_INSTALL as INSTALL
from fer_edge.core.optional import import_onnxruntime

MISSING = f"ONNX Runtime is not installed: {INSTALL}"
__all__ = ["INSTALL", "MISSING", "cpu_session", "import_onnxruntime", "session_options"]


def session_options(threads: Optional[int] = None) -> Any:
    """``SessionOptions`` for fer-edge's sessions: ONNX Runtime's warnings only with --verbose, and
    ``threads`` intra-op threads with one inter-op thread (the graph is a chain)."""
    from fer_edge.core.quiet import ort_log_severity

    options = import_onnxruntime().SessionOptions()
    options.log_severity_level = ort_log_severity()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def cpu_session(model: Union[str, Path, bytes], threads: Optional[int] = None) -> Any:
    """An ONNX Runtime CPU session on a model file or serialised model bytes."""
    source = model if isinstance(model, bytes) else str(model)
    return import_onnxruntime().InferenceSession(source, session_options(threads), providers=["CPUExecutionProvider"])

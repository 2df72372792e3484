"""Import ONNX Runtime, or say in one line which extra installs it.

ONNX Runtime is an extra, not a core dependency: the CPU wheel (``fer-edge[cpu]``), the CUDA
wheel (``fer-edge[gpu]``) and NVIDIA's Jetson wheels all install the same ``onnxruntime``
module, and two of them side by side hide the CUDA/TensorRT providers.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, Optional, Union

from fer_edge.errors import FerEdgeError

INSTALL = (
    "pip install 'fer-edge[cpu]' (CPU) or 'fer-edge[gpu]' (CUDA, x86); on a Jetson run "
    "scripts/jetson_setup.sh, which installs the build for its JetPack"
)
MISSING = f"ONNX Runtime is not installed: {INSTALL}"


def import_onnxruntime() -> ModuleType:
    """``onnxruntime``, or a :class:`FerEdgeError` that names the extra to install."""
    try:
        import onnxruntime
    except ImportError as exc:
        if exc.name == "onnxruntime":
            raise FerEdgeError(MISSING) from None
        # Installed but broken, e.g. onnxruntime-gpu without the CUDA libraries it links.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FerEdgeError(
            f"ONNX Runtime is installed but does not import ({first}); reinstall one build: {INSTALL}"
        ) from None
    return onnxruntime


def session_options(threads: Optional[int] = None) -> Any:
    """``SessionOptions`` for fer-edge's sessions: ONNX Runtime's warnings only with --verbose, and
    ``threads`` intra-op threads with one inter-op thread (the graph is a chain)."""
    from fer_edge.quiet import ort_log_severity

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

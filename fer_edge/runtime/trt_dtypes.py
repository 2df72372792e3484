"""TensorRT data types as numpy dtypes, in fer-edge's own code (pure; no ``tensorrt`` import).

``trt.nptype`` cannot be used: TensorRT 8.5.2 (JetPack 5.1) builds its mapping with ``np.bool``,
which numpy 1.24 removed, so every call raises ``AttributeError`` on the numpy JetPack 5 pins
(fixed only in TensorRT 8.5.3 / 8.6). This table covers every ``DataType`` of TensorRT 8.5,
8.6, 10.x and 11.x.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fer_edge.core.errors import FerEdgeError

# DataType member name -> numpy dtype (None: numpy has no such element type).
TRT_TO_NUMPY: dict[str, Any] = {
    "FLOAT": np.float32,
    "HALF": np.float16,
    "INT8": np.int8,
    "INT32": np.int32,
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "INT64": np.int64,  # TensorRT 10+
    "FP8": None,  # 8.6+
    "BF16": None,  # 10+
    "INT4": None,  # 10+
    "FP4": None,  # 10.8+
    "E8M0": None,  # 10.12+
}


def datatype_name(trt_dtype: Any) -> str:
    """``"FLOAT"`` for ``tensorrt.DataType.FLOAT`` (pybind11 enums have ``.name``; ``str`` gives
    ``"DataType.FLOAT"``)."""
    name = getattr(trt_dtype, "name", None)
    if not isinstance(name, str):
        name = str(trt_dtype).rsplit(".", 1)[-1]
    return name.upper()


def numpy_dtype(trt_dtype: Any, tensor: str = "") -> np.dtype[Any]:
    """The numpy dtype of a TensorRT ``DataType`` (or its name); a one-line error for a type
    numpy cannot hold (FP8, BF16, INT4, FP4, E8M0 as an engine input or output)."""
    name = trt_dtype if isinstance(trt_dtype, str) else datatype_name(trt_dtype)
    name = name.upper()
    what = f"tensor {tensor!r}" if tensor else "a tensor"
    if name not in TRT_TO_NUMPY:
        raise FerEdgeError(f"{what} has TensorRT data type {name}, which fer-edge does not know")
    dtype = TRT_TO_NUMPY[name]
    if dtype is None:
        raise FerEdgeError(
            f"{what} is {name} at the engine's boundary, which numpy cannot hold; build the engine "
            "with float32 or float16 inputs and outputs"
        )
    return np.dtype(dtype)

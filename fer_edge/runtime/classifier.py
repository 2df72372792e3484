"""One inference interface over PyTorch, ONNX Runtime and TensorRT (see ``base.Backend``).

Importing this package imports none of torch, onnxruntime, tensorrt or a CUDA binding.
"""

from fer_edge.runtime.classifier_base import Backend, prepare_batch
from fer_edge.runtime.classifier_loader import DEVICES, backend_kind, load_backend

__all__ = ["DEVICES", "Backend", "backend_kind", "load_backend", "prepare_batch"]

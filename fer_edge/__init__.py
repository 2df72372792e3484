"""fer-edge: a small facial-expression CNN from training to an INT8 TensorRT engine on a Jetson.

Importing this package never imports torch, tensorrt or a CUDA binding: those load lazily,
only when a feature that needs them is used.
"""

__version__ = "0.1.0"

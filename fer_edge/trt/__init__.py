"""TensorRT engine building and the decisions around it.

Only :mod:`fer_edge.trt.tensorrt_api` imports ``tensorrt`` (lazily) and only
:mod:`fer_edge.trt.cuda_mem` touches CUDA; everything else here is pure and unit-tested on
machines without either.
"""

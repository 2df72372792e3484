"""Dataset readers: every format is read into one in-memory form, :class:`FaceData`."""

from fer_edge.data.core import FaceData
from fer_edge.data.load import load_dataset

__all__ = ["FaceData", "load_dataset"]

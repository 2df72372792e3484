"""Test images that have an exact pixel copy in Training.

FER2013 was scraped from the web, and 568 of its test images (280 PublicTest, 288 PrivateTest)
are byte-for-byte copies of Training images. A model can have memorised them, so accuracy is
also reported without them.
"""

from __future__ import annotations

import numpy as np

from fer_edge.core.errors import FerEdgeError
from fer_edge.data.core import FaceData

TEST_SPLITS = ("PublicTest", "PrivateTest")


def train_duplicate_mask(data: FaceData, split: str) -> np.ndarray:
    """Bool mask over ``data.split(split)``: True where the image's pixels occur in Training."""
    if split not in TEST_SPLITS:
        raise FerEdgeError(f"train duplicates are defined for {' and '.join(TEST_SPLITS)}, not {split}")
    if not data.has_split("Training"):
        raise FerEdgeError("has no Training images to compare the test images with", path=data.source)
    # Exact copies only: the raw bytes of a 48x48 image are its key.
    seen = {img.tobytes() for img in data.split("Training").images}
    return np.fromiter((img.tobytes() in seen for img in data.split(split).images), dtype=bool)

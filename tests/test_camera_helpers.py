"""Helpers for the camera tests (no tests here): a tiny fer-edge ONNX model built without torch,
fake parts for the loop, and real-face videos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fer_edge.camera.detection import Detections
from fer_edge.model.labels import FER2013_LABELS

YUNET_NAME = "face_detection_yunet.onnx"


def tiny_fer_model(path: Path, labels: tuple[str, ...] = FER2013_LABELS, seed: int = 0) -> Path:
    """A model-file-contract ONNX (input [N,1,48,48] raw pixels -> logits [N,C]): flatten + linear."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = (rng.normal(0, 1e-3, size=(48 * 48, len(labels)))).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 48, 48])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(labels)])],
        [numpy_helper.from_array(weight, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in {
        "labels": json.dumps(list(labels)),
        "dataset": "fer2013",
        "arch": "tiny-linear",
        "fer_edge_version": "0.1.0",
    }.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def numbered_frames(n: int) -> list[np.ndarray]:
    """Frames that carry their own index in pixel (0, 0), so a fake detector knows where it is."""
    frames = []
    for i in range(n):
        frame = np.full((160, 200, 3), 200, np.uint8)
        frame[0, 0] = i
        frames.append(frame)
    return frames


class ListSource:
    """Frames from a list, then None (end of file)."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self._frames = list(frames)

    def read(self) -> np.ndarray | None:
        return self._frames.pop(0) if self._frames else None


class ScriptedDetector:
    """Returns the boxes scripted for each successive frame."""

    name = "scripted"

    def __init__(self, boxes_per_frame: list[list[tuple[float, float, float, float]]]) -> None:
        self._boxes = list(boxes_per_frame)

    def detect(self, frame: np.ndarray) -> Detections:
        boxes = np.array(self._boxes.pop(0), dtype=np.float32).reshape(-1, 4)
        return Detections(boxes, np.ones(len(boxes), np.float32))


class FakeClassifier:
    """Logits from the mean pixel of each crop: bright faces are 'happy', dark ones 'sad'."""

    labels = FER2013_LABELS

    def __init__(self) -> None:
        self.calls: list[int] = []

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        logits = np.zeros((len(batch), len(self.labels)), np.float32)
        bright = batch.reshape(len(batch), -1).mean(axis=1) > 127
        logits[bright, self.labels.index("happy")] = 5.0
        logits[~bright, self.labels.index("sad")] = 5.0
        return logits


def real_faces(csv_path: Path, n: int, split: str = "PrivateTest") -> tuple[np.ndarray, np.ndarray]:
    from fer_edge.data import load_dataset

    data = load_dataset(csv_path, dataset="fer2013").split(split)
    return data.images[:n], data.labels[:n]


def face_video(
    path: Path,
    faces: np.ndarray,
    n_frames: int,
    width: int = 640,
    height: int = 480,
    side: int = 150,
    fps: float = 10.0,
) -> Path:
    from scenes import moving_faces_frames, write_video

    frames = [f for f, _ in moving_faces_frames(faces, n_frames, width, height, side=side, seed=3)]
    return write_video(path, frames, fps=fps)


def detectable_faces(csv_path: Path, n: int, yunet: Path, side: int = 150) -> np.ndarray:
    """The first ``n`` test faces that YuNet finds when pasted alone (some FER2013 images are hard
    or not faces at all; the tracking tests need faces the detector sees)."""
    from scenes import scene_with_faces

    from fer_edge.camera.detection import make_detector

    detector = make_detector(yunet)
    candidates, _ = real_faces(csv_path, 60)
    rng = np.random.default_rng(0)
    chosen = []
    for face in candidates:
        frame, _ = scene_with_faces(face[None], 320, 240, [min(side, 200)], rng)
        if len(detector.detect(frame)) == 1:
            chosen.append(face)
            if len(chosen) == n:
                return np.stack(chosen)
    raise AssertionError("not enough detectable faces in the slice")

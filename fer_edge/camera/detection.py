"""Face detectors: YuNet (``cv2.FaceDetectorYN``, given as an ONNX file) and OpenCV's Haar cascade.

Both return boxes in frame pixels as float32 ``[N, 4]`` (x, y, w, h) plus scores. The box each
detector draws around a face differs, so each has its own crop rule (see ``crop.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fer_edge.camera.sources import import_cv2
from fer_edge.errors import FerEdgeError

HAAR_FILE = "haarcascade_frontalface_default.xml"
# Output names of the YuNet models cv2.FaceDetectorYN reads: the 2023 release, and the 2021-22 one.
YUNET_OUTPUT_SETS: tuple[frozenset[str], ...] = (
    frozenset({"cls_8", "obj_8", "bbox_8", "kps_8"}),
    frozenset({"loc", "conf", "iou"}),
)


@dataclass
class Detections:
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # x, y, w, h
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))

    def __len__(self) -> int:
        return len(self.boxes)


class FaceDetector(Protocol):
    name: str  # "yunet" | "haar": selects the crop rule

    def detect(self, frame_bgr: np.ndarray) -> Detections: ...


def _downscale(frame: np.ndarray, max_width: int | None) -> tuple[np.ndarray, float]:
    """Shrink the frame for detection (boxes are scaled back); returns (image, factor original/small)."""
    h, w = frame.shape[:2]
    if not max_width or w <= max_width:
        return frame, 1.0
    cv2 = import_cv2()
    factor = w / max_width
    small = cv2.resize(frame, (max_width, int(round(h / factor))), interpolation=cv2.INTER_AREA)
    return small, factor


def check_yunet_file(path: Path) -> None:
    """Raise a clear error unless ``path`` is a YuNet ONNX model (not, say, a fer-edge classifier)."""
    from fer_edge.onnx_model import load_onnx

    model = load_onnx(path, load_external_data=False)
    outputs = {o.name for o in model.graph.output}
    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    channels = None
    if len(inputs) == 1:
        dims = inputs[0].type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value"):
            channels = dims[1].dim_value
    if channels != 3 or not any(s <= outputs for s in YUNET_OUTPUT_SETS):
        raise FerEdgeError(
            "not a YuNet face detector (expected a 3-channel image input and YuNet's cls/obj/bbox/kps "
            f"outputs, found outputs {sorted(outputs)}); pass face_detection_yunet_2023mar.onnx from the "
            "OpenCV Zoo",
            path=path,
        )


class YuNetDetector:
    name = "yunet"

    def __init__(
        self,
        model_path: str | Path,
        min_face: int = 40,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        detect_width: int | None = None,
    ) -> None:
        path = Path(model_path)
        check_yunet_file(path)
        cv2 = import_cv2()
        if not hasattr(cv2, "FaceDetectorYN"):
            raise FerEdgeError(
                f"this OpenCV ({cv2.__version__}) has no FaceDetectorYN; install OpenCV >= 4.8"
            )
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(path), "", (320, 240), score_threshold, nms_threshold, 5000
            )
            self._net.detect(np.zeros((240, 320, 3), np.uint8))  # fail here, not on the first frame
        except cv2.error as exc:
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise FerEdgeError(f"OpenCV cannot run this YuNet model ({first})", path=path) from None
        self._size: tuple[int, int] = (320, 240)
        self.min_face = min_face
        self.detect_width = detect_width

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        image, factor = _downscale(frame_bgr, self.detect_width)
        h, w = image.shape[:2]
        if (w, h) != self._size:
            self._net.setInputSize((w, h))
            self._size = (w, h)
        _, faces = self._net.detect(image)
        if faces is None or len(faces) == 0:
            return Detections()
        boxes = faces[:, :4].astype(np.float32) * factor
        scores = faces[:, 14].astype(np.float32)
        keep = np.minimum(boxes[:, 2], boxes[:, 3]) >= self.min_face
        return Detections(boxes[keep], scores[keep])


def haar_cascade_path(cv2: Any) -> Path:
    """The frontal-face cascade that opencv-python ships, or a clear error saying what to do."""
    advice = (
        "install OpenCV 4 (pip install 'opencv-python-headless<5', or 'fer-edge[opencv]'; JetPack's "
        "OpenCV has them) or pass --detector-model face_detection_yunet_2023mar.onnx (OpenCV Zoo)"
    )
    if not hasattr(cv2, "CascadeClassifier"):
        raise FerEdgeError(
            f"the default Haar face detector is not in OpenCV {cv2.__version__} "
            f"(OpenCV 5 dropped Haar cascades); {advice}"
        )
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    candidates = [Path(folder) / HAAR_FILE] if folder else []
    candidates += [
        Path(p) / HAAR_FILE
        for p in (
            "/usr/share/opencv4/haarcascades",
            "/usr/share/opencv/haarcascades",
            "/usr/local/share/opencv4/haarcascades",
        )
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FerEdgeError(f"OpenCV {cv2.__version__} ships no {HAAR_FILE}; {advice}")


class HaarDetector:
    name = "haar"

    def __init__(
        self,
        cascade_path: str | Path | None = None,
        min_face: int = 40,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        detect_width: int | None = None,
    ) -> None:
        cv2 = import_cv2()
        path = Path(cascade_path) if cascade_path else haar_cascade_path(cv2)
        if not hasattr(cv2, "CascadeClassifier"):
            haar_cascade_path(cv2)  # raises the explanatory error
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise FerEdgeError("not a readable Haar cascade", path=path)
        self.min_face = min_face
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.detect_width = detect_width

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        cv2 = import_cv2()
        image, factor = _downscale(frame_bgr, self.detect_width)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        min_side = max(1, int(round(self.min_face / factor)))
        found = self._cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_side, min_side)
        )
        if len(found) == 0:
            return Detections()
        boxes = np.asarray(found, dtype=np.float32).reshape(-1, 4) * factor
        return Detections(boxes, np.ones(len(boxes), np.float32))


def make_detector(
    model_path: str | Path | None, min_face: int = 40, detect_width: int | None = None
) -> FaceDetector:
    """YuNet when an ONNX file is given, a Haar cascade for an .xml file, else OpenCV's shipped cascade."""
    if model_path is None:
        return HaarDetector(min_face=min_face, detect_width=detect_width)
    path = Path(model_path)
    if not path.is_file():
        raise FerEdgeError("detector model not found", path=path)
    if path.suffix.lower() == ".xml":
        return HaarDetector(path, min_face=min_face, detect_width=detect_width)
    return YuNetDetector(path, min_face=min_face, detect_width=detect_width)

"""Face detectors: YuNet (on ONNX Runtime or a TensorRT engine, decoded by ``yunet.py``; or
through ``cv2.FaceDetectorYN``) and OpenCV's Haar cascade.

All return boxes in frame pixels as float32 ``[N, 4]`` (x, y, w, h) plus scores. The box each
detector draws around a face differs, so each has its own crop rule (see ``crop.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fer_edge.core.errors import FerEdgeError
from fer_edge.core.optional import import_cv2
from fer_edge.core.paths import require_file
from fer_edge.runtime.detector_yunet import YuNetRunner, check_outputs, check_yunet_file, decode, to_blob

HAAR_FILE = "haarcascade_frontalface_default.xml"
DETECTOR_DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "tensorrt", "opencv")


def _no_landmarks(n: int) -> np.ndarray:
    return np.full((n, 5, 2), np.nan, np.float32)


@dataclass
class Detections:
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # x, y, w, h
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    # [N, 5, 2] YuNet's eyes, nose, mouth corners; NaN where the detector gives none (Haar).
    landmarks: np.ndarray = field(default_factory=lambda: _no_landmarks(0))

    def __post_init__(self) -> None:
        if len(self.landmarks) != len(self.boxes):
            self.landmarks = _no_landmarks(len(self.boxes))

    def __len__(self) -> int:
        return len(self.boxes)

    def select(self, keep: np.ndarray) -> Detections:
        return Detections(self.boxes[keep], self.scores[keep], self.landmarks[keep])

    def scaled(self, factor: float) -> Detections:
        return Detections(self.boxes * factor, self.scores, self.landmarks * factor)


# The detections of a frame with no detector pass: one shared value, never changed (a frame's work
# would otherwise build three empty arrays; a tenth of the loop's thread at a few hundred frames/s).
NO_DETECTIONS = Detections()


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


def _min_face(found: Detections, min_face: int) -> Detections:
    return found.select(np.minimum(found.boxes[:, 2], found.boxes[:, 3]) >= min_face)


class YuNetDetector:
    """YuNet through a fer-edge runner (ONNX Runtime or a TensorRT engine), decoded in numpy."""

    name = "yunet"

    def __init__(
        self,
        runner: YuNetRunner,
        min_face: int = 40,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        detect_width: int | None = None,
    ) -> None:
        self.runner = runner
        self.backend = runner.name
        self.min_face = min_face
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.detect_width = detect_width
        self._checked: tuple[int, ...] | None = None

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        image, factor = _downscale(frame_bgr, self.detect_width)
        blob = to_blob(image)
        outputs = self.runner.run(blob)
        if self._checked != blob.shape:  # once per input size: the layout cannot change in between
            check_outputs(outputs, blob.shape, self.runner.path)
            self._checked = blob.shape
        faces = decode(outputs, (blob.shape[3], blob.shape[2]), self.score_threshold, self.nms_threshold)
        found = Detections(faces.boxes, faces.scores, faces.landmarks).scaled(factor)
        return _min_face(found, self.min_face)


class OpenCVYuNetDetector:
    """YuNet through OpenCV DNN (``cv2.FaceDetectorYN``) on the CPU: the reference decoder."""

    name = "yunet"
    backend = "opencv"

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
        found = Detections(
            faces[:, :4].astype(np.float32),
            faces[:, 14].astype(np.float32),
            faces[:, 4:14].reshape(-1, 5, 2).astype(np.float32),
        ).scaled(factor)
        return _min_face(found, self.min_face)


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
        try:
            self._cascade = cv2.CascadeClassifier(str(path))
        except (cv2.error, SystemError):  # a malformed .xml: OpenCV's parser raises through the constructor
            self._cascade = None
        if self._cascade is None or self._cascade.empty():
            raise FerEdgeError("not a readable Haar cascade (OpenCV cannot load this .xml)", path=path)
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
    model_path: str | Path | None,
    min_face: int = 40,
    detect_width: int | None = None,
    device: str = "auto",
    threads: int | None = None,
) -> FaceDetector:
    """The detector for a file: YuNet ``.onnx`` (ONNX Runtime on ``device``, or OpenCV DNN with
    ``device="opencv"``), a YuNet TensorRT ``.engine`` (its profile checked against each frame
    size), a Haar ``.xml``; no file: OpenCV's shipped Haar cascade."""
    if device not in DETECTOR_DEVICES:
        raise FerEdgeError(f"--detector-device {device!r}: choose one of {', '.join(DETECTOR_DEVICES)}")
    if model_path is None:
        return HaarDetector(min_face=min_face, detect_width=detect_width)
    path = Path(model_path)
    require_file(path, "detector model")
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return HaarDetector(path, min_face=min_face, detect_width=detect_width)
    if suffix == ".engine":
        from fer_edge.runtime.detector_yunet_trt import open_yunet_engine

        return YuNetDetector(open_yunet_engine(path), min_face=min_face, detect_width=detect_width)
    if device == "opencv":
        return OpenCVYuNetDetector(path, min_face=min_face, detect_width=detect_width)
    from fer_edge.runtime.detector_yunet import OrtYuNet

    return YuNetDetector(OrtYuNet(path, device=device, threads=threads), min_face=min_face,
                         detect_width=detect_width)

"""Several cameras' detector passes at once: a CPU detector's passes of one step run on worker
threads (a core each), the windows are those of the passes in turn, a detector's error still ends
the run, and a detector that cannot be shared (a TensorRT engine, OpenCV) keeps one pass at a time."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_camera_helpers import FakeClassifier, ListSource
from test_multicam import BRIGHT, DARK, ShapeDetector

from fer_edge.camera.capture import DirectCapture
from fer_edge.camera.crop import CropRule
from fer_edge.camera.detection import Detections
from fer_edge.camera.metrics import CameraMetrics
from fer_edge.camera.multiloop import Feed, MultiCameraLoop, detect_workers
from fer_edge.camera.options import TUNED
from fer_edge.camera.pipeline import CameraLoop
from fer_edge.model.labels import FER2013_LABELS
from fer_edge.moodlog.writer import MoodLog

pytest.importorskip("cv2")


class MeetingDetector(ShapeDetector):
    """Its first passes wait (at most 2 s) until the barrier's parties are all in it at once:
    passes run in turn never meet."""

    def __init__(self, boxes: list[tuple[float, float, float, float]], meet: threading.Barrier) -> None:
        super().__init__(boxes)
        self.meet = meet
        self.met = 0
        self.threads: set[str] = set()

    def detect(self, frame: np.ndarray) -> Detections:
        self.threads.add(threading.current_thread().name)
        if self.met < self.meet.parties:
            try:
                self.meet.wait(2.0)
                self.met += 1
            except threading.BrokenBarrierError:
                pass
        return super().detect(frame)


def loops(tmp_path: Path, detector: object, classifier: FakeClassifier) -> dict[str, CameraLoop]:
    options = replace(TUNED, window_s=1.0, media_fps=10.0, views=1)
    videos = {"entrance": [BRIGHT] * 30, "checkout": [DARK] * 20, "aisle": [BRIGHT] * 25}
    return {
        name: CameraLoop(ListSource(frames), detector, classifier, CropRule(1.0),  # type: ignore[arg-type]
                         MoodLog(tmp_path / f"{name}.db", FER2013_LABELS), options,
                         metrics=CameraMetrics(name, FER2013_LABELS), echo=lambda s: None)
        for name, frames in videos.items()
    }


def served(tmp_path: Path, detector: object, workers: int) -> tuple[dict[str, list[tuple[int, dict[str, int]]]], int]:
    """Each camera's windows (faces, counts) and the faces classified."""
    classifier = FakeClassifier()
    cameras = loops(tmp_path, detector, classifier)
    feeds = [Feed(name, DirectCapture(loop.source), loop) for name, loop in cameras.items()]
    multi = MultiCameraLoop(feeds, classifier, echo=lambda s: None, detect_workers=workers)
    multi.run()
    for loop in cameras.values():
        loop.log.close()  # type: ignore[attr-defined]
    windows = {name: [(w.faces, dict(w.counts)) for w in loop.stats.windows] for name, loop in cameras.items()}
    return windows, sum(classifier.calls)


def test_the_passes_of_a_step_run_at_once_and_count_as_in_turn(tmp_path: Path) -> None:
    boxes = [(10.0, 10.0, 40.0, 40.0), (90.0, 10.0, 40.0, 40.0)]
    together = MeetingDetector(boxes, threading.Barrier(3))
    at_once, faces = served(tmp_path / "a", together, workers=3)
    # The first frame's three passes met: they ran on three threads at the same time.
    assert together.met == 3 and {"detect_0", "detect_1", "detect_2"} <= together.threads
    (tmp_path / "b").mkdir()
    in_turn, in_turn_faces = served(tmp_path / "b", ShapeDetector(boxes), workers=1)
    # Out of step, the faces go in more, smaller calls: the same faces, the same windows.
    assert at_once == in_turn and faces == in_turn_faces
    assert [faces for faces, _ in at_once["entrance"]] == [2, 2, 2] and at_once["checkout"][0][1]["sad"] == 2


def test_one_worker_runs_every_pass_on_the_loops_thread(tmp_path: Path) -> None:
    lonely = MeetingDetector([(10.0, 10.0, 40.0, 40.0)], threading.Barrier(2, timeout=0.05))
    served(tmp_path, lonely, workers=1)
    assert lonely.met == 0 and lonely.threads == {threading.current_thread().name}


def test_a_detectors_error_on_a_worker_ends_the_run(tmp_path: Path) -> None:
    class Broken(ShapeDetector):
        def detect(self, frame: np.ndarray) -> Detections:
            raise RuntimeError("detector failed on frame")

    with pytest.raises(RuntimeError, match="detector failed"):
        served(tmp_path, Broken([]), workers=3)


@pytest.mark.parametrize(
    ("cameras", "backend", "threads", "cores", "workers"),
    [
        (1, "onnxruntime-cpu", 1, 2, 1),  # one camera: its pass on the loop's thread
        (3, "onnxruntime-cpu", 1, 2, 3),  # a pass per camera, up to two per core
        (8, "onnxruntime-cpu", 1, 2, 4),
        (8, "onnxruntime-cpu", 2, 8, 8),
        (3, "onnxruntime-cpu", 4, 2, 1),  # --threads 4 on two cores: one pass fills them
        (3, "tensorrt", 1, 8, 1),  # one execution context, one set of buffers
        (3, "onnxruntime-cuda", 1, 8, 1),
        (3, "opencv", 1, 8, 1),
    ],
)
def test_how_many_passes_run_at_once(cameras: int, backend: str, threads: int, cores: int, workers: int) -> None:
    assert detect_workers(cameras, backend, threads, cores) == workers


def test_a_cameras_calls_take_one_thread_unless_told() -> None:
    from fer_edge.camera.settings import CameraSettings, camera_settings

    assert CameraSettings().threads == 1  # not ONNX Runtime's default (a spinning thread per core)
    options = dict(model=None, device="cpu", detector_model=None, detector_device="auto", min_face=40,
                   detect_width=None, window=60.0, views=6, all_views=False, detect_every=3, adaptive=True,
                   reinfer_every=3, reinfer_iou=0.5, align=False, track_iou=0.3, max_missed=10, min_hits=3)
    assert camera_settings(threads=None, **options).threads == 1  # type: ignore[arg-type]
    assert camera_settings(threads=2, **options).threads == 2  # type: ignore[arg-type]  # --threads wins


# -- out of step: the classifier on its own thread, a call for every frame waiting -------------------


class SlowClassifier(FakeClassifier):
    """Its first call waits until ``release`` is set (at most 2 s): the frames the other cameras
    finish meanwhile wait for the next call. Records the thread of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.threads: set[str] = set()
        self.in_first_call = threading.Event()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.threads.add(threading.current_thread().name)
        if not self.calls:
            self.in_first_call.set()
            self.release.wait(2.0)
        return super().infer(batch)


def test_a_call_takes_the_faces_of_every_camera_waiting_for_it(tmp_path: Path) -> None:
    classifier = SlowClassifier()
    cameras = loops(tmp_path, ShapeDetector([(10.0, 10.0, 40.0, 40.0)]), classifier)
    feeds = [Feed(name, DirectCapture(loop.source), loop) for name, loop in cameras.items()]
    multi = MultiCameraLoop(feeds, classifier, echo=lambda s: None, detect_workers=3)
    threading.Thread(target=lambda: classifier.in_first_call.wait(2.0) and (time.sleep(0.2), classifier.release.set()),
                     daemon=True).start()
    multi.run()
    for loop in cameras.values():
        loop.log.close()  # type: ignore[attr-defined]
    # The call after the slow one carried faces of the cameras whose frames had waited for it.
    assert max(multi.cameras_per_batch) >= 2
    assert sum(classifier.calls) == sum(multi.batch_sizes)
    assert classifier.threads == {"classify_0"}  # never the loop's thread
    (tmp_path / "b").mkdir()
    in_turn, _ = served(tmp_path / "b", ShapeDetector([(10.0, 10.0, 40.0, 40.0)]), workers=1)
    assert {name: [(w.faces, dict(w.counts)) for w in loop.stats.windows] for name, loop in cameras.items()} == in_turn


def test_a_stop_finishes_the_frames_in_flight(tmp_path: Path) -> None:
    classifier = SlowClassifier()
    cameras = loops(tmp_path, ShapeDetector([(10.0, 10.0, 40.0, 40.0)]), classifier)
    begun = {name: 0 for name in cameras}
    for name, loop in cameras.items():
        def counting(*args: object, _name: str = name, _begin=loop.begin_frame) -> object:  # type: ignore[no-untyped-def]
            begun[_name] += 1
            return _begin(*args)
        loop.begin_frame = counting  # type: ignore[method-assign]
    stop = threading.Event()
    feeds = [Feed(name, DirectCapture(loop.source), loop) for name, loop in cameras.items()]
    multi = MultiCameraLoop(feeds, classifier, stop=stop, echo=lambda s: None, detect_workers=3)

    def stop_in_the_first_call() -> None:
        classifier.in_first_call.wait(2.0)
        stop.set()
        classifier.release.set()

    threading.Thread(target=stop_in_the_first_call, daemon=True).start()
    multi.run()
    # The frames begun when the stop came were finished: each one counted, its classified face too.
    assert all(begun[name] == loop.stats.total.frames > 0 for name, loop in cameras.items()), begun
    assert all(loop.stats.stopped_by == "signal" for loop in cameras.values())
    assert sum(classifier.calls) == sum(multi.batch_sizes) >= 1
    assert all(t.classifications for loop in cameras.values() for t in loop.tracker.tracks)


def test_a_classifier_error_on_its_thread_ends_the_run(tmp_path: Path) -> None:
    class Broken(FakeClassifier):
        def infer(self, batch: np.ndarray) -> np.ndarray:
            raise RuntimeError("classifier failed")

    classifier = Broken()
    cameras = loops(tmp_path, ShapeDetector([(10.0, 10.0, 40.0, 40.0)]), classifier)
    feeds = [Feed(name, DirectCapture(loop.source), loop) for name, loop in cameras.items()]
    with pytest.raises(RuntimeError, match="classifier failed"):
        MultiCameraLoop(feeds, classifier, echo=lambda s: None, detect_workers=2).run()

"""Detect less, track more: YuNet on ONNX Runtime against OpenCV's decoder, getting YuNet,
the constant-velocity tracker, the re-inference interval, alignment, and the options' bad input."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_camera_helpers import (
    YUNET_NAME,
    FakeClassifier,
    ListSource,
    face_video,
    numbered_frames,
    real_faces,
    tiny_fer_model,
)
from typer.testing import CliRunner

from fer_edge.camera.crop import CropRule, one_view
from fer_edge.camera.detection import Detections
from fer_edge.camera.options import LoopOptions
from fer_edge.camera.pipeline import run_loop
from fer_edge.camera.tracking import IouTracker
from fer_edge.cli import app
from fer_edge.core.errors import FerEdgeError
from fer_edge.model.labels import FER2013_LABELS
from fer_edge.moodlog.writer import MoodLog

cv2 = pytest.importorskip("cv2")


@pytest.fixture
def cached_yunet(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test copy of YuNet, installed in a private cache dir the way fetch-detector installs it."""
    from fer_edge.camera.detector_file import find_detector, install_yunet

    source = shared_data / YUNET_NAME
    if not source.exists():
        pytest.skip(f"{YUNET_NAME} not present in {shared_data}")
    monkeypatch.setenv("FER_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    installed = install_yunet(from_file=source)
    assert find_detector(None) == installed and installed.parent == tmp_path / "cache"
    return installed


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


# --- YuNet on fer-edge's backends --------------------------------------------------------------


def test_yunet_on_onnxruntime_matches_opencv(cached_yunet: Path, real_slice_csv: Path) -> None:
    from scenes import scene_with_faces

    from fer_edge.camera.detection import YuNetDetector, make_detector

    ours = make_detector(cached_yunet, device="cpu")
    reference = make_detector(cached_yunet, device="opencv")
    assert isinstance(ours, YuNetDetector) and ours.backend == "onnxruntime-cpu"
    faces, _ = real_faces(real_slice_csv, 30)
    rng = np.random.default_rng(0)
    compared = 0
    for i in range(10):
        # 630x470: not a multiple of 32, so the padding is exercised too.
        frame, _ = scene_with_faces(faces[3 * i : 3 * i + 3], 630, 470, [150, 130, 170], rng, tilts=[0, 15, -15])
        a, b = ours.detect(frame), reference.detect(frame)
        assert len(a) == len(b)
        order_a, order_b = np.argsort(a.boxes[:, 0]), np.argsort(b.boxes[:, 0])
        np.testing.assert_allclose(a.boxes[order_a], b.boxes[order_b], atol=2.0)
        np.testing.assert_allclose(a.landmarks[order_a], b.landmarks[order_b], atol=2.0)
        np.testing.assert_allclose(a.scores[order_a], b.scores[order_b], atol=0.02)
        compared += len(a)
    assert compared >= 15  # most of the 30 pasted faces were found and compared
    assert len(ours.detect(np.full((480, 640, 3), 128, np.uint8))) == 0


def test_decoder_refuses_another_output_layout() -> None:
    from fer_edge.runtime.detector_yunet import OUTPUT_NAMES, check_outputs

    blob_shape = (1, 3, 64, 96)
    good = {n: np.zeros((1, (64 // int(n.split("_")[1])) * (96 // int(n.split("_")[1])), 1)) for n in OUTPUT_NAMES}
    for name in OUTPUT_NAMES:
        if name.startswith("bbox"):
            good[name] = np.zeros((1, good[name].shape[1], 4))
        if name.startswith("kps"):
            good[name] = np.zeros((1, good[name].shape[1], 10))
    check_outputs(good, blob_shape, "yunet.onnx")
    wrong = dict(good, kps_8=np.zeros((1, 96, 14)))  # a release with 7 landmarks
    with pytest.raises(FerEdgeError, match=r"yunet.onnx: YuNet output kps_8 .* expected \[1, 96, 10\]"):
        check_outputs(wrong, blob_shape, "yunet.onnx")
    missing = {k: v for k, v in good.items() if k != "obj_16"}
    with pytest.raises(FerEdgeError, match="lack \\['obj_16'\\]"):
        check_outputs(missing, blob_shape, "yunet.onnx")


def test_classifier_given_as_detector_is_refused_on_every_backend(tmp_path: Path) -> None:
    from fer_edge.camera.detection import make_detector

    model = tiny_fer_model(tmp_path / "fer.onnx")
    for device in ("cpu", "opencv"):
        with pytest.raises(FerEdgeError, match="not a YuNet face detector"):
            make_detector(model, device=device)
    with pytest.raises(FerEdgeError, match="--detector-device 'gpu'"):
        make_detector(model, device="gpu")


# --- getting YuNet -------------------------------------------------------------------------------


def test_fetch_refuses_a_file_whose_hash_does_not_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fer_edge.camera.detector_file import YUNET_URL, cached_yunet, install_yunet

    monkeypatch.setenv("FER_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    fake = tmp_path / "yunet.onnx"
    fake.write_bytes(b"not the pinned file")
    with pytest.raises(FerEdgeError, match="SHA-256 .* is not the pinned YuNet's"):
        install_yunet(from_file=fake)
    # A download with the wrong bytes (a changed upstream, a captive portal) is refused the same way.
    with pytest.raises(FerEdgeError, match=f"{YUNET_URL}: SHA-256"):
        install_yunet(opener=lambda url: io.BytesIO(b"<html>login</html>"))
    assert not cached_yunet().exists()
    assert not list((tmp_path / "cache").glob("*"))  # no temp file left behind either
    code, output = cli("fetch-detector", "--from-file", str(fake))
    assert code == 2 and output.count("\n") == 1 and "SHA-256" in output


def test_fetch_installs_the_pinned_file_into_the_cache(cached_yunet: Path) -> None:
    from fer_edge.camera.detector_file import YUNET_SHA256, install_yunet
    from fer_edge.core.files import file_sha256

    assert file_sha256(cached_yunet) == YUNET_SHA256
    calls: list[str] = []
    assert install_yunet(opener=lambda url: calls.append(url)) == cached_yunet  # already there: no download
    assert calls == []


def test_run_without_yunet_says_how_many_faces_haar_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not hasattr(cv2, "CascadeClassifier"):
        pytest.skip("this OpenCV has no Haar cascades")
    monkeypatch.setenv("FER_EDGE_CACHE_DIR", str(tmp_path / "empty-cache"))
    video = face_video(tmp_path / "v.avi", np.full((1, 48, 48), 120, np.uint8), n_frames=3)
    model = tiny_fer_model(tmp_path / "tiny.onnx")
    code, output = cli("run", "--source", str(video), "--model", str(model), "--log", str(tmp_path / "m.db"))
    assert code == 0, output
    hint = next(line for line in output.splitlines() if "Haar" in line)
    assert "misses about 1 face in 4" in hint and "fer-edge fetch-detector" in hint


# --- the tracker ---------------------------------------------------------------------------------


def test_tracker_keeps_ids_through_frames_without_detection_and_follows_motion() -> None:
    tracker = IouTracker(max_missed=10, min_hits=1)
    probs = np.eye(7)[3]
    ids = []
    for frame in range(0, 40):
        box = np.array([[10 + 6 * frame, 50, 40, 40]], float)  # 6 px a frame: 30 px between detections
        if frame % 5 == 0 or frame == 1:  # a new track is looked at again at once (as --adaptive does)
            (track,) = tracker.match(box, float(frame), frame)
            tracker.set_probs(track, probs, frame)
        else:
            tracker.predict(frame)
            np.testing.assert_allclose(tracker.tracks[0].box, box[0], atol=1e-6)  # moved on, not stuck
        ids += [t.id for t in tracker.accumulate()]
    assert ids == [1] * 40  # one id, counted on every frame
    # Without velocity the box would overlap its next detection by IoU 0.14 (< 0.3): a new id each time.
    from fer_edge.camera.tracking import iou_matrix

    assert iou_matrix(np.array([[10, 50, 40, 40]]), np.array([[40, 50, 40, 40]]))[0, 0] < 0.3


def test_tracker_ends_a_track_that_left() -> None:
    tracker = IouTracker(max_missed=6, min_hits=1)
    for frame in (0, 3):
        (track,) = tracker.match(np.array([[100, 100, 50, 50]]), float(frame), frame)
        tracker.set_probs(track, np.eye(7)[0], frame)
        tracker.accumulate()
    for frame in (6, 9):  # the face has gone: detector passes find nothing
        assert tracker.match(np.zeros((0, 4)), float(frame), frame) == []
        assert [t.id for t in tracker.tracks] == [1]  # missed 6 frames at most: kept
    tracker.match(np.zeros((0, 4)), 10.0, 10)
    assert tracker.tracks == [] and [t.id for t in tracker.ended] == [1]
    assert [t.id for t in tracker.close_window()] == [1]  # it still counts in the window it was seen in
    (new,) = tracker.match(np.array([[100, 100, 50, 50]]), 11.0, 11)
    assert new.id == 2  # a face coming back later is a new track


# --- the loop: detection interval and re-inference -------------------------------------------------


class CountingDetector:
    """One face, moving 1 px a frame, detected wherever it is asked; counts the calls."""

    name = "counting"

    def __init__(self, jump_at: int | None = None) -> None:
        self.frame = 0
        self.calls = 0
        self.jump_at = jump_at

    def detect(self, frame: np.ndarray) -> Detections:
        self.calls += 1
        x = 20.0 + float(frame[0, 0, 0])  # the frame carries its own index
        if self.jump_at is not None and frame[0, 0, 0] >= self.jump_at:
            x += 25.0  # the box changes a lot (IoU with the classified box < 0.5)
        return Detections(np.array([[x, 40, 60, 60]], np.float32), np.ones(1, np.float32))


AT_PASSES: dict[str, Any] = {"settle": 0, "classify_between": False}  # classify only at detector passes


def run_counting(tmp_path: Path, options: LoopOptions, detector: CountingDetector, n: int = 30) -> FakeClassifier:
    classifier = FakeClassifier()
    log = MoodLog(tmp_path / f"m{id(options)}.db", FER2013_LABELS)
    stats = run_loop(ListSource(numbered_frames(n)), detector, classifier, CropRule(1.0), log, options,
                     echo=lambda s: None, tracker=IouTracker(min_hits=1))
    log.close()
    assert [w.faces for w in stats.windows] == [1]  # one face, one track, counted once
    assert stats.total.detector_runs == detector.calls
    return classifier


def test_detector_interval_and_reinference_interval_are_honoured(tmp_path: Path) -> None:
    # Classification only at detector passes, no settling: the interval mechanics alone.
    options = LoopOptions(media_fps=10.0, views=1, detect_every=3, reinfer_every=6, **AT_PASSES)
    detector = CountingDetector()
    classifier = run_counting(tmp_path, options, detector)
    assert detector.calls == 10  # frames 0, 3, ..., 27
    assert classifier.calls == [1] * 5  # classified at frames 0, 6, 12, 18, 24: one face per batch
    every_frame = run_counting(tmp_path, LoopOptions(media_fps=10.0, views=1), det := CountingDetector())
    assert det.calls == 30 and every_frame.calls == [1] * 30


def test_a_box_that_changes_a_lot_is_classified_again_early(tmp_path: Path) -> None:
    options = LoopOptions(media_fps=10.0, views=1, detect_every=2, reinfer_every=20, reinfer_iou=0.5, **AT_PASSES)
    classifier = run_counting(tmp_path, options, CountingDetector(jump_at=8), n=20)
    assert classifier.calls == [1, 1]  # frame 0, then frame 8 (the jump), not at 20
    no_early = LoopOptions(media_fps=10.0, views=1, detect_every=2, reinfer_every=20, **AT_PASSES)
    assert run_counting(tmp_path, no_early, CountingDetector(jump_at=8), n=20).calls == [1]


def test_all_faces_due_go_in_one_batch(tmp_path: Path) -> None:
    class TwoFaces(CountingDetector):
        def detect(self, frame: np.ndarray) -> Detections:
            self.calls += 1
            return Detections(np.array([[10, 10, 50, 50], [120, 60, 50, 50]], np.float32), np.ones(2, np.float32))

    classifier = FakeClassifier()
    log = MoodLog(tmp_path / "two.db", FER2013_LABELS)
    run_loop(ListSource(numbered_frames(12)), TwoFaces(), classifier, CropRule(1.0), log,
             LoopOptions(media_fps=10.0, views=1, detect_every=4, reinfer_every=8, **AT_PASSES), echo=lambda s: None)
    log.close()
    assert classifier.calls == [2, 2]  # frames 0 and 8: both faces in one call each time


@pytest.mark.parametrize(
    "args, named",
    [
        (["--detect-every", "0"], "--detect-every"),
        (["--reinfer-every", "-1"], "--reinfer-every"),
        (["--reinfer-iou", "1.5"], "--reinfer-iou"),
        (["--track-iou", "0"], "--track-iou"),
        (["--max-missed", "-2"], "--max-missed"),
        (["--min-hits", "0"], "--min-hits"),
        (["--detector-device", "npu"], "--detector-device"),
    ],
)
def test_tracker_options_out_of_range_are_one_line(tmp_path: Path, args: list[str], named: str) -> None:
    model = tiny_fer_model(tmp_path / "tiny.onnx")
    video = face_video(tmp_path / "v.avi", np.full((1, 48, 48), 120, np.uint8), n_frames=2)
    code, output = cli("run", "--source", str(video), "--model", str(model), "--log", str(tmp_path / "m.db"), *args)
    assert code == 2 and named in output
    assert "Traceback" not in output and len([ln for ln in output.splitlines() if ln.startswith("error")]) == 1
    assert not (tmp_path / "m.db").exists()  # refused before anything was opened


# --- alignment -----------------------------------------------------------------------------------


def synthetic_face() -> tuple[np.ndarray, np.ndarray]:
    """A 48x48 'face' with dark eyes at (16, 18) and (32, 18), a mouth, and a lit left half, so an
    upside-down, mirrored or tilted copy all differ from it; and its 5 landmarks."""
    face = np.full((48, 48), 170, np.uint8)
    face[:, :24] = 200
    cv2.circle(face, (16, 18), 4, 30, -1)
    cv2.circle(face, (32, 18), 4, 30, -1)
    cv2.line(face, (17, 36), (31, 36), 40, 3)
    cv2.line(face, (24, 22), (24, 29), 90, 2)
    marks = np.array([[16, 18], [32, 18], [24, 28], [18, 36], [30, 36]], np.float64)
    return face, marks


@pytest.mark.parametrize("tilt", [20.0, -20.0, 12.0])
def test_alignment_turns_a_tilted_face_upright(tilt: float) -> None:
    from scenes import paste_face

    from fer_edge.camera.align import aligned_views, eye_angles, rotate_points

    face, marks = synthetic_face()
    frame = np.full((300, 300, 3), 90, np.uint8)
    x, y, side = 70, 60, 144  # 3x upscale
    paste_face(frame, face, x, y, side, tilt=tilt)
    centre = np.array([[x + side / 2, y + side / 2]])
    # The landmarks as a detector would report them on the tilted face (turned about its centre).
    scaled = (marks + 0.5) * 3 + np.array([x, y])
    tilted = rotate_points(scaled[None], centre, np.array([-tilt]))
    assert eye_angles(tilted)[0] == pytest.approx(tilt, abs=0.5)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    box = np.array([[x, y, side, side]], float)

    def corr(a: np.ndarray) -> float:
        return float(np.corrcoef(a.astype(float).ravel(), face.astype(float).ravel())[0, 1])

    upright = aligned_views(gray, box, tilted, CropRule(1.0), 1, 0)[0]
    plain = one_view(gray, box, CropRule(1.0), 1, 0)[0]
    assert corr(upright) > 0.9 > corr(plain) + 0.1
    nothing = aligned_views(gray, box, np.full((1, 5, 2), np.nan), CropRule(1.0), 1, 0)[0]
    assert np.array_equal(nothing, plain)  # no landmarks (Haar): the plain crop


# --- the detector engine's profile ------------------------------------------------------------------


def test_detector_profile_from_the_camera_resolution() -> None:
    from fer_edge.runtime.detector_profile import check_frame_size, parse_detector_size

    static = parse_detector_size("640x480")
    assert str(static) == "640x480:640x480:640x480"
    assert static.shapes()["opt"] == [1, 3, 480, 640]
    assert str(parse_detector_size("1280x720")) == "1280x736:1280x736:1280x736"  # padded to 32
    ranged = parse_detector_size("320x240:640x480:1280x720")
    assert ranged.accepts(640, 480) and ranged.accepts(320, 256) and not ranged.accepts(1920, 1088)
    with pytest.raises(FerEdgeError, match=r"frames pad to 1280x736 .* --detector 1280x736"):
        check_frame_size(static, 1280, 736, "yunet.engine")
    for bad in ("640", "640x480:1280x720", "axb", "1280x720:640x480:640x480", "0x480"):
        with pytest.raises(FerEdgeError, match="--detector"):
            parse_detector_size(bad)


def test_engine_runner_refuses_frames_outside_its_profile_and_classifier_engines(tmp_path: Path) -> None:
    from fer_edge.model.engine_sidecar import Sidecar
    from fer_edge.runtime.detector_profile import DETECTOR_KIND, parse_detector_size
    from fer_edge.runtime.detector_yunet_trt import TrtYuNet, check_detector_sidecar

    def sidecar(dataset: str) -> Sidecar:
        return Sidecar("10.3", "Orin", "8.7", "fp16", parse_detector_size("640x480").shapes(), "y.onnx", "0" * 64,
                       ["face"], dataset, "0" * 64, 1, "cmd", "now", 1.0)

    with pytest.raises(FerEdgeError, match="is a classifier"):
        check_detector_sidecar(sidecar("fer2013"), tmp_path / "m.engine")
    runner = TrtYuNet(tmp_path / "yunet.engine", sidecar(DETECTOR_KIND))
    # The frame is checked before TensorRT or CUDA is touched (neither is here).
    with pytest.raises(FerEdgeError, match="frames pad to 1280x736"):
        runner.run(np.zeros((1, 3, 736, 1280), np.float32))


# --- end to end: counts on a generated video, with run's defaults ------------------------------------


def test_run_defaults_count_the_same_faces_as_every_frame(
    tmp_path: Path, cached_yunet: Path, real_slice_csv: Path
) -> None:
    from test_camera_helpers import detectable_faces

    from fer_edge.camera.crop import crop_rule_for
    from fer_edge.camera.detection import make_detector
    from fer_edge.camera.options import TUNED
    from fer_edge.camera.sources import FrameSource, parse_source

    faces = detectable_faces(real_slice_csv, 2, cached_yunet)
    video = face_video(tmp_path / "store.avi", faces, n_frames=60, fps=30.0)
    model = tiny_fer_model(tmp_path / "tiny.onnx")
    from fer_edge.runtime.classifier import load_backend

    results = {}
    with load_backend(model, device="cpu") as backend:
        for name, options in (("tuned", TUNED), ("every frame", LoopOptions())):
            log = MoodLog(tmp_path / f"{name}.db", backend.labels)
            detector = make_detector(cached_yunet, device="cpu" if name == "tuned" else "opencv")
            with FrameSource(parse_source(str(video))) as frames:
                from dataclasses import replace

                stats = run_loop(frames, detector, backend, crop_rule_for("yunet"), log,
                                 replace(options, window_s=1.0, media_fps=30.0), echo=lambda s: None)
            log.close()
            results[name] = stats
    tuned, every = results["tuned"], results["every frame"]
    assert [w.faces for w in tuned.windows] == [w.faces for w in every.windows] == [2, 2]
    assert [w.frames for w in tuned.windows] == [30, 30]
    assert tuned.total.detector_runs < every.total.detector_runs / 2  # it really detected less
    for w in tuned.windows:
        assert sum(w.counts.values()) == w.faces == w.positive + w.neutral + w.negative
    # The default run is the tuned loop with YuNet from the cache dir (no --detector-model).
    code, output = cli("run", "--source", str(video), "--model", str(model), "--log", str(tmp_path / "cli.db"),
                       "--window", "1")
    assert code == 0, output
    assert "detector yunet (onnxruntime" in output and "2 faces" in output


def test_bench_camera_writes_table_json_and_markdown(tmp_path: Path, cached_yunet: Path) -> None:
    import json

    video = face_video(tmp_path / "v.avi", np.full((1, 48, 48), 120, np.uint8), n_frames=12, fps=30.0)
    model = tiny_fer_model(tmp_path / "tiny.onnx")
    code, output = cli("bench", "--camera", str(video), "--models", str(model), "--detector-device", "cpu",
                       "--json", str(tmp_path / "c.json"), "--markdown", str(tmp_path / "c.md"))
    assert code == 0, output
    report = json.loads((tmp_path / "c.json").read_text())
    rows = {r["config"]: r for r in report["rows"]}
    assert set(rows) == {"tuned (run's default)", "every frame"}
    for row in rows.values():
        assert row["frames"] == 12 and row["fps_median"] > 0
        assert set(row["mean_ms"]) == {"capture", "detect", "track", "classify", "log", "other"}
        assert row["detector"] == "yunet (onnxruntime-cpu)"
    assert rows["every frame"]["detector_runs"] == 12 > rows["tuned (run's default)"]["detector_runs"]
    md = (tmp_path / "c.md").read_text()
    assert "| every frame |" in md and "detect ms" in md and report["machine"]["cpu"] in md
    code, output = cli("bench", "--camera", str(video), "--json", str(video))
    assert code == 2 and "is the input --camera" in output and "never overwrites an input" in output



def test_adaptive_detection_looks_again_at_unconfirmed_and_drifting_faces() -> None:
    from fer_edge.camera.pipeline import detection_due

    options = LoopOptions(detect_every=5, adaptive=True)
    tracker = IouTracker(min_hits=3)
    assert detection_due(options, tracker, 0, None)  # the first frame
    tracker.match(np.array([[100, 100, 50, 50]]), 0.0, 0)
    assert detection_due(options, tracker, 1, 0)  # new: looked at on every frame
    tracker.match(np.zeros((0, 4)), 1.0, 1)  # a hard face the detector missed once
    assert detection_due(options, tracker, 2, 1)  # still unconfirmed: keeps looking
    for frame in (2, 3, 4):
        tracker.match(np.array([[100, 100, 50, 50]]), float(frame), frame)
    assert not detection_due(options, tracker, 5, 4)  # confirmed and still: every 5 frames
    assert detection_due(options, tracker, 9, 4)
    assert not detection_due(LoopOptions(detect_every=5), IouTracker(), 3, 0)  # not adaptive
    walker = IouTracker(min_hits=1)
    for frame in (0, 1):
        walker.match(np.array([[100 + 10 * frame, 100, 50, 50]]), float(frame), frame)
    assert not detection_due(options, walker, 2, 1)  # 10 px since the last detection: < a quarter of 50
    assert detection_due(options, walker, 3, 1)  # 20 px: a fresh look before the box slides off


@pytest.mark.parametrize("shape", [(480, 640, 3), (470, 630, 3), (100, 90), (64, 64, 3)])
def test_yunets_input_is_the_frame_in_planes_zero_padded_to_32(shape: tuple[int, ...]) -> None:
    """to_blob (OpenCV's blobFromImage) gives exactly the planes of the frame's BGR values, padded
    at the right and bottom to a multiple of 32; a grayscale frame as three equal planes."""
    pytest.importorskip("cv2")
    from fer_edge.runtime.detector_yunet import to_blob

    frame = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    bgr = np.repeat(frame[:, :, None], 3, axis=2) if frame.ndim == 2 else frame
    h, w = bgr.shape[:2]
    expected = np.zeros((1, 3, -(-h // 32) * 32, -(-w // 32) * 32), np.float32)
    expected[0, :, :h, :w] = bgr.transpose(2, 0, 1)
    blob = to_blob(frame)
    assert blob.dtype == np.float32 and blob.shape == expected.shape
    assert np.array_equal(blob, expected)

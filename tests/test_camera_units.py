"""Unit tests of the camera parts: sources, crop rule, tracking, mood log, loop (fakes, no data)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from test_camera_helpers import FakeClassifier, ListSource, ScriptedDetector, tiny_fer_model

from fer_edge.camera.crop import CropRule, crop_faces, crop_rule_for
from fer_edge.camera.pipeline import LoopOptions, run_loop
from fer_edge.camera.sources import OUTAGE, FrameSource, SourceSpec, csi_pipeline, parse_source, redact
from fer_edge.camera.tracking import IouTracker, iou_matrix
from fer_edge.core.errors import FerEdgeError
from fer_edge.model.labels import FER2013_LABELS, FERPLUS_LABELS
from fer_edge.moodlog.windows import polarity, satisfaction_index, summarize_window
from fer_edge.moodlog.writer import MoodLog

cv2 = pytest.importorskip("cv2")


# --- sources -------------------------------------------------------------------------------------


def test_parse_source_kinds(tmp_path: Path) -> None:
    video = tmp_path / "v.avi"
    video.write_bytes(b"x")
    assert parse_source("0").target == 0 and parse_source("0").kind == "usb"
    assert parse_source("/dev/video2").kind == "device"
    assert parse_source(str(video)).kind == "file" and not parse_source(str(video)).live
    url = parse_source("rtsp://admin:secret@cam.local/stream")
    assert url.kind == "url" and url.target == "rtsp://admin:secret@cam.local/stream"
    assert "secret" not in url.text and url.text == "rtsp://admin:***@cam.local/stream"
    csi = parse_source("csi://1", width=640, height=480, fps=15)
    assert csi.kind == "csi" and "sensor-id=1" in str(csi.target) and "width=(int)640" in str(csi.target)
    assert "framerate=(fraction)15/1" in csi_pipeline(0, 640, 480, 15.0)
    assert redact("http://u:p@h:8080/x?y=1") == "http://u:***@h:8080/x?y=1"


def test_parse_source_errors(tmp_path: Path) -> None:
    with pytest.raises(FerEdgeError, match="not found"):
        parse_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(FerEdgeError, match="csi://N"):
        parse_source("csi://front")


def test_csi_without_gstreamer_says_use_jetpack_opencv() -> None:
    from fer_edge.camera.sources import has_gstreamer, open_capture

    if has_gstreamer(cv2):
        pytest.skip("this OpenCV has GStreamer")
    with pytest.raises(FerEdgeError, match="JetPack's OpenCV") as err:
        open_capture(parse_source("csi://0"))
    assert "\n" not in str(err.value)


def test_unopenable_file_is_a_user_error(tmp_path: Path) -> None:
    bogus = tmp_path / "video.avi"
    bogus.write_text("not a video")
    with pytest.raises(FerEdgeError, match="cannot open"):
        FrameSource(parse_source(str(bogus)))


class FlakyCapture:
    def __init__(self, frames: int) -> None:
        self.left = frames

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.left <= 0:
            return False, None
        self.left -= 1
        return True, np.zeros((4, 4, 3), np.uint8)

    def release(self) -> None:
        pass


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_live_source_reconnects_with_exponential_backoff_and_reports_outage() -> None:
    opened: list[int] = []
    failures = iter([False, True, True, True, False])  # first open ok, then 3 failed reopens, then ok
    t = FakeTime()

    def opener(spec: SourceSpec) -> FlakyCapture:
        if next(failures):
            raise FerEdgeError("cannot open video source")
        opened.append(1)
        return FlakyCapture(2)

    src = FrameSource(SourceSpec("0", "usb", 0), opener=opener, backoff_s=0.5, sleep=t.sleep, clock=t.clock)
    got: list[object] = []
    while sum(isinstance(f, np.ndarray) for f in got) < 4:
        got.append(src.read())
        assert len(got) < 200
    assert src.reconnects == 1 and len(opened) == 2
    # the drop, then tries at 0.5, 1.5, 3.5 (failed, the wait doubling) and 7.5 s (back)
    assert t.now == pytest.approx(7.5)
    kinds = ["frame" if isinstance(f, np.ndarray) else f for f in got]
    assert kinds[:3] == ["frame", "frame", OUTAGE] and kinds[-2:] == ["frame", "frame"]
    assert all(k is OUTAGE for k in kinds[2:-2])
    assert max(t.sleeps) <= 0.25  # never asleep longer than poll_s: windows close, a stop is seen


def test_stop_during_an_outage_is_seen_within_a_poll() -> None:
    t = FakeTime()
    stop = {"now": False}

    def opener(spec: SourceSpec) -> FlakyCapture:
        if opener.calls:  # type: ignore[attr-defined]
            raise FerEdgeError("cannot open video source")
        opener.calls += 1  # type: ignore[attr-defined]
        return FlakyCapture(1)

    opener.calls = 0  # type: ignore[attr-defined]
    src = FrameSource(
        SourceSpec("0", "usb", 0), opener=opener, max_backoff_s=30.0, sleep=t.sleep, clock=t.clock,
        should_stop=lambda: stop["now"],
    )
    assert isinstance(src.read(), np.ndarray)
    while t.now < 100:  # well into the 30-s waits
        assert src.read() is OUTAGE
    stop["now"] = True
    before = t.now
    assert src.read() is None and t.now - before <= 0.25


def test_a_camera_not_there_at_the_start_is_awaited_unless_fail_fast() -> None:
    t = FakeTime()
    events: list[str] = []
    ready = {"at": 3.0}

    def opener(spec: SourceSpec) -> FlakyCapture:
        if t.now < ready["at"]:
            raise FerEdgeError("cannot open video source", path=spec.text)
        return FlakyCapture(100)

    with pytest.raises(FerEdgeError, match="cannot open video source"):
        FrameSource(SourceSpec("0", "usb", 0), opener=opener, fail_fast=True)
    src = FrameSource(SourceSpec("0", "usb", 0), opener=opener, sleep=t.sleep, clock=t.clock, on_event=events.append)
    assert src.down and "--fail-fast" in events[0]
    frames = [src.read() for _ in range(40)]
    first = next(i for i, f in enumerate(frames) if isinstance(f, np.ndarray))
    assert all(f is OUTAGE for f in frames[:first]) and src.reconnects == 1 and t.now >= 3.0
    ready["at"] = float("inf")
    with pytest.raises(FerEdgeError):  # a file is never awaited
        FrameSource(SourceSpec("v.avi", "file", "v.avi"), opener=opener)


def test_file_source_ends_without_reconnecting() -> None:
    src = FrameSource(
        SourceSpec("v.avi", "file", "v.avi"),
        opener=lambda s: FlakyCapture(1),
        sleep=lambda s: pytest.fail("a file must not be reopened"),
    )
    assert src.read() is not None
    assert src.read() is None


# --- crop rule ----------------------------------------------------------------------------------


def test_crop_rule_geometry() -> None:
    rule = CropRule(scale=1.2, dx=0.1, dy=-0.05, width_weight=1.0)
    cx, cy, side = rule.regions(np.array([[100, 50, 80, 100]]))[0]
    assert cx == pytest.approx(100 + 40 + 8) and cy == pytest.approx(50 + 50 - 5)
    assert side == pytest.approx(96.0)  # follows the width only
    geo = CropRule(scale=1.0, width_weight=0.5).regions(np.array([[0, 0, 4, 9]]))[0]
    assert geo[2] == pytest.approx(6.0)
    assert crop_rule_for("yunet").scale > 0.95 and crop_rule_for("haar").scale > 0.95


def test_crop_faces_recovers_a_pasted_face_and_pads_at_the_edge() -> None:
    rng = np.random.default_rng(0)
    face = rng.integers(0, 255, (48, 48), dtype=np.uint8)
    frame = np.zeros((300, 300), np.uint8)
    frame[50:194, 60:204] = cv2.resize(face, (144, 144), interpolation=cv2.INTER_NEAREST)
    crops = crop_faces(frame, np.array([[60 + 72, 50 + 72, 144], [5, 5, 100]], dtype=np.float64))
    assert crops.shape == (2, 48, 48) and crops.dtype == np.uint8
    assert np.abs(crops[0].astype(int) - face).mean() < 12  # same framing -> same face


# --- tracking -----------------------------------------------------------------------------------


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5]])
    assert iou_matrix(a, b)[0] == pytest.approx([1.0, 50 / 150, 0.0])


def test_tracker_keeps_ids_and_smooths_one_frame_flicker() -> None:
    tracker = IouTracker(alpha=0.3, min_hits=3)
    happy, sad = np.eye(7)[3], np.eye(7)[4]
    ids = []
    for i in range(10):
        boxes = np.array([[10 + 2 * i, 10, 50, 50], [200 - 2 * i, 40, 60, 60]])
        probs = np.stack([sad if i == 5 else happy, sad])  # face 1 flickers to sad in one frame
        tracks = tracker.update(boxes, probs, now=float(i))
        ids.append([t.id for t in tracks])
        if i == 5:
            assert tracks[0].emotion == 3  # smoothing held 'happy'
    assert all(row == [1, 2] for row in ids)
    counted = tracker.close_window()
    assert sorted(t.id for t in counted) == [1, 2]
    assert [int(np.argmax(t.window_sum)) for t in sorted(counted, key=lambda t: t.id)] == [3, 4]
    assert tracker.close_window() == []  # nothing seen since: a track counts once per window


def test_tracker_drops_lost_tracks_and_ignores_one_frame_detections() -> None:
    tracker = IouTracker(max_missed=2, min_hits=3, max_missed_unconfirmed=None)
    tracker.update(np.array([[0, 0, 10, 10]]), np.eye(7)[:1], 0.0)  # a one-frame false detection
    for i in range(5):
        tracker.update(np.zeros((0, 4)), np.zeros((0, 7)), float(i + 1))
    assert tracker.tracks == []
    assert tracker.close_window() == []
    # By default an unconfirmed track is kept longer (45 frames), and still never counted.
    waiting = IouTracker(max_missed=2, min_hits=3)
    waiting.update(np.array([[0, 0, 10, 10]]), np.eye(7)[:1], 0.0)
    for i in range(5):
        waiting.update(np.zeros((0, 4)), np.zeros((0, 7)), float(i + 1))
    assert len(waiting.tracks) == 1 and waiting.close_window() == []


# --- mood log -----------------------------------------------------------------------------------


def test_polarity_covers_both_datasets() -> None:
    for label in (*FER2013_LABELS, *FERPLUS_LABELS):
        assert polarity(label) in ("positive", "neutral", "negative")
    assert polarity("happy") == polarity("happiness") == "positive"
    assert polarity("surprise") == "neutral" and polarity("contempt") == "negative"
    assert satisfaction_index(3, 1, 5) == pytest.approx(0.4)
    assert satisfaction_index(0, 0, 0) is None


def test_mood_log_is_wal_and_commits_each_window(tmp_path: Path) -> None:
    db = tmp_path / "mood.db"
    log = MoodLog(db, FER2013_LABELS, dataset="fer2013", window_s=60)
    tracker = IouTracker(min_hits=1)
    tracker.update(np.array([[0, 0, 10, 10], [50, 0, 10, 10]]), np.stack([np.eye(7)[3], np.eye(7)[0]]), 100.0)
    counted = tracker.close_window()
    log.write_window(summarize_window(FER2013_LABELS, counted, 100.0, 160.0, frames=1), counted)
    # Another connection sees the window before the log is closed: it is committed.
    other = sqlite3.connect(db)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = other.execute("SELECT faces, positive, neutral, negative, satisfaction FROM windows").fetchone()
    assert row == (2, 1, 0, 1, 0.0)
    assert other.execute("SELECT SUM(count) FROM window_counts").fetchone()[0] == 2
    assert other.execute("SELECT COUNT(*) FROM tracks").fetchone()[0] == 2
    other.close()
    log.close()


def test_unwritable_log_path_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FerEdgeError, match="cannot open the mood log"):
        MoodLog(blocker / "mood.db", FER2013_LABELS)
    with pytest.raises(FerEdgeError, match="not a SQLite database"):
        MoodLog(blocker, FER2013_LABELS)  # an existing file that is not SQLite
    assert blocker.read_text() == "x"  # and it was left alone


# --- the loop with fake parts -------------------------------------------------------------------


def test_loop_windows_add_up_and_tracks_count_once(tmp_path: Path) -> None:
    frame_bright = np.full((240, 320, 3), 220, np.uint8)
    frames, boxes = [], []
    for i in range(25):  # 2.5 s at 10 fps; windows of 1 s
        frames.append(frame_bright)
        face_boxes = [(10 + i, 20, 60, 60)]
        if i < 12:
            face_boxes.append((200, 100, 50, 50))  # a second face leaves after 1.2 s
        boxes.append(face_boxes)
    classifier = FakeClassifier()
    log = MoodLog(tmp_path / "mood.db", classifier.labels)
    stats = run_loop(
        ListSource(frames),
        ScriptedDetector(boxes),
        classifier,
        CropRule(1.2),
        log,
        LoopOptions(window_s=1.0, media_fps=10.0, views=1),
        echo=lambda s: None,
    )
    log.close()
    assert classifier.calls[:12] == [2] * 12 and classifier.calls[12:] == [1] * 13  # one batch per frame
    assert [w.faces for w in stats.windows] == [2, 2, 1]
    assert [w.frames for w in stats.windows] == [10, 10, 5]
    assert [w.partial for w in stats.windows] == [False, False, True]
    for w in stats.windows:
        assert sum(w.counts.values()) == w.faces == w.positive + w.neutral + w.negative
        assert w.counts["happy"] == w.faces and w.satisfaction == 1.0
    assert stats.tracks_seen == 2


def test_loop_flushes_the_window_when_stopped(tmp_path: Path) -> None:
    frames = [np.zeros((100, 100, 3), np.uint8)] * 50
    calls = {"n": 0}

    def stop_after_7() -> bool:
        calls["n"] += 1
        return calls["n"] > 7

    log = MoodLog(tmp_path / "mood.db", FER2013_LABELS)
    stats = run_loop(
        ListSource(frames),
        ScriptedDetector([[(10, 10, 30, 30)]] * 50),
        FakeClassifier(),
        CropRule(1.0),
        log,
        LoopOptions(window_s=60.0, media_fps=10.0),
        should_stop=stop_after_7,
        echo=lambda s: None,
    )
    log.close()
    assert stats.stopped_by == "signal" and len(stats.windows) == 1
    assert stats.windows[0].partial and stats.windows[0].frames == 7 and stats.windows[0].faces == 1
    assert stats.windows[0].counts["sad"] == 1


def test_all_views_of_all_faces_go_in_one_batch(tmp_path: Path) -> None:
    from fer_edge.camera.crop import average_views, face_views

    gray = np.random.default_rng(0).integers(0, 255, (200, 300), dtype=np.uint8)
    boxes = np.array([[10, 10, 60, 70], [150, 50, 80, 90]], dtype=np.float32)
    batch = face_views(gray, boxes, CropRule(1.0), views=6)
    assert batch.shape == (12, 48, 48)
    assert np.array_equal(batch[1], batch[0][:, ::-1])  # each view is followed by its mirror
    probs = np.zeros((12, 7))
    probs[:6, 3] = 1.0
    probs[6:, 4] = 1.0
    assert np.argmax(average_views(probs, 6), axis=1).tolist() == [3, 4]
    from fer_edge.camera.crop import one_view

    for k in range(6):  # the rotating single view k is view k of the full set
        assert np.array_equal(one_view(gray, boxes, CropRule(1.0), 6, k), batch.reshape(2, 6, 48, 48)[:, k])
    for rotate, expected in ((False, [12, 12, 12]), (True, [2, 2, 2])):
        classifier = FakeClassifier()
        log = MoodLog(tmp_path / f"mood{rotate}.db", FER2013_LABELS)
        run_loop(
            ListSource([np.zeros((200, 300, 3), np.uint8)] * 3),
            ScriptedDetector([boxes.tolist()] * 3),
            classifier,
            CropRule(1.0),
            log,
            LoopOptions(media_fps=10.0, views=6, rotate_views=rotate),
            echo=lambda s: None,
        )
        log.close()
        assert classifier.calls == expected  # one call per frame: 2 faces x (6 views | 1 rotating view)


# --- detectors ----------------------------------------------------------------------------------


def test_fer_model_given_as_detector_is_rejected(tmp_path: Path) -> None:
    from fer_edge.camera.detection import make_detector

    with pytest.raises(FerEdgeError, match="not a YuNet face detector"):
        make_detector(tiny_fer_model(tmp_path / "fer.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(FerEdgeError, match="not a readable ONNX"):
        make_detector(junk)


def test_haar_default_works_or_says_what_to_do() -> None:
    from fer_edge.camera.detection import HaarDetector

    if hasattr(cv2, "CascadeClassifier"):
        det = HaarDetector()
        assert len(det.detect(np.zeros((120, 160, 3), np.uint8))) == 0
    else:
        with pytest.raises(FerEdgeError, match=r"opencv-python-headless<5.*--detector-model"):
            HaarDetector()

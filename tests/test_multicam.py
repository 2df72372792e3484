"""Many cameras, one process: one loop serves every camera's own loop from its capture, the faces
due on all cameras go through the classifier in one batched call, exclusion zones keep faces out,
a capture keeps only the newest frame of a live source and counts the rest as dropped."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from test_camera_helpers import FakeClassifier, ListSource

from fer_edge.camera.capture import NOTHING, Captured, DirectCapture, ThreadedCapture
from fer_edge.camera.crop import CropRule
from fer_edge.camera.detection import Detections
from fer_edge.camera.metrics import CameraMetrics
from fer_edge.camera.multiloop import Feed, MultiCameraLoop
from fer_edge.camera.options import LoopOptions
from fer_edge.camera.pipeline import CameraLoop
from fer_edge.camera.sources import OUTAGE
from fer_edge.camera.zones import Zone, drop_in_zones
from fer_edge.model.labels import FER2013_LABELS
from fer_edge.moodlog.writer import MoodLog

pytest.importorskip("cv2")

BRIGHT = np.full((120, 160, 3), 220, np.uint8)  # FakeClassifier: bright faces are happy
DARK = np.full((120, 160, 3), 30, np.uint8)  # ... dark ones sad


class ShapeDetector:
    """The same boxes on every frame; an empty frame (all zero) has none."""

    name = "scripted"

    def __init__(self, boxes: list[tuple[float, float, float, float]]) -> None:
        self.boxes = np.array(boxes, np.float32).reshape(-1, 4)

    def detect(self, frame: np.ndarray) -> Detections:
        if not frame.any():
            return Detections()
        return Detections(self.boxes, np.ones(len(self.boxes), np.float32))


def camera_loop(
    name: str, frames: list[object], log: MoodLog, classifier: FakeClassifier, detector: object,
    zones: tuple[Zone, ...] = (), fps: float = 10.0,
) -> CameraLoop:
    options = LoopOptions(window_s=1.0, media_fps=fps, views=1)
    return CameraLoop(
        ListSource(frames), detector, classifier, CropRule(1.0), log, options,  # type: ignore[arg-type]
        metrics=CameraMetrics(name, FER2013_LABELS), echo=lambda s: None, zones=zones,
    )


# 1: the cameras in steps, every call on the loop's thread; 3: out of step (camera.outofstep), the
# passes on workers and the classifier on its own thread, as run serves YuNet on ONNX Runtime's CPU.
SCHEDULES = pytest.mark.parametrize("workers", [1, 3], ids=["in-steps", "out-of-step"])


def serve(loops: dict[str, CameraLoop], classifier: FakeClassifier, workers: int = 1) -> MultiCameraLoop:
    feeds = [Feed(name, DirectCapture(loop.source), loop) for name, loop in loops.items()]
    multi = MultiCameraLoop(feeds, classifier, echo=lambda s: None, detect_workers=workers)
    multi.run()
    return multi


@SCHEDULES
def test_three_cameras_keep_their_own_windows_and_share_one_batched_call(tmp_path: Path, workers: int) -> None:
    classifier = FakeClassifier()
    logs = [MoodLog(tmp_path / "mood.db", FER2013_LABELS) for _ in range(3)]  # a run per camera, as run makes
    empty = np.zeros_like(BRIGHT)
    log = logs[0]
    loops = {
        # 3 s of two happy faces
        "entrance": camera_loop("entrance", [BRIGHT] * 30, log, classifier, ShapeDetector([(10, 10, 40, 40),
                                                                                          (90, 10, 40, 40)])),
        # a gap: 1 s of faces, 1 s of nothing, 1 s of faces again (a new track each time)
        "checkout": camera_loop("checkout", [DARK] * 10 + [empty] * 10 + [DARK] * 10, logs[1], classifier,
                                ShapeDetector([(30, 30, 50, 50)])),
        # ends early: 1.5 s
        "aisle": camera_loop("aisle", [BRIGHT] * 15, logs[2], classifier, ShapeDetector([(50, 50, 40, 40)])),
    }
    multi = serve(loops, classifier, workers)
    for one in logs:
        one.close()
    faces = {name: [w.faces for w in loop.stats.windows] for name, loop in loops.items()}
    assert faces == {"entrance": [2, 2, 2], "checkout": [1, 0, 1], "aisle": [1, 1]}
    import sqlite3

    rows = sqlite3.connect(tmp_path / "mood.db").execute(
        "SELECT run_id, count(*), sum(faces) FROM windows GROUP BY run_id ORDER BY run_id").fetchall()
    assert [r[1:] for r in rows] == [(3, 6), (3, 2), (2, 2)]  # every camera's windows in the one log
    assert [w.counts["sad"] for w in loops["checkout"].stats.windows] == [1, 0, 1]
    assert loops["aisle"].stats.windows[-1].partial and loops["aisle"].stats.total.frames == 15
    assert {name: loop.stats.total.frames for name, loop in loops.items()} == {
        "entrance": 30, "checkout": 30, "aisle": 15}
    assert classifier.calls == multi.batch_sizes  # every call's faces, counted
    if workers == 1:
        # The first frame's four new faces, of three cameras, went through the classifier in ONE call.
        assert classifier.calls[0] == 4 and multi.cameras_per_batch[0] == 3
    assert set(multi.metrics_by_camera()) == {"entrance", "checkout", "aisle"}


@SCHEDULES
def test_a_stalled_camera_does_not_hold_the_others(tmp_path: Path, workers: int) -> None:
    classifier = FakeClassifier()
    log = MoodLog(tmp_path / "mood.db", FER2013_LABELS)
    fast = camera_loop("fast", [BRIGHT] * 20, log, classifier, ShapeDetector([(10, 10, 40, 40)]))
    stalled = camera_loop("stalled", [], MoodLog(tmp_path / "mood.db", FER2013_LABELS), classifier, ShapeDetector([]))

    class Stalled:
        dropped = 0

        def start(self, wake: object = None) -> Stalled:
            return self

        def take(self) -> object:
            return NOTHING  # never a frame, never an end

        def close(self) -> None:
            pass

    stop = threading.Event()
    feeds = [Feed("fast", DirectCapture(fast.source), fast), Feed("stalled", Stalled(), stalled, live=True)]
    multi = MultiCameraLoop(feeds, classifier, stop=stop, echo=lambda s: None, detect_workers=workers)

    def stop_when_done() -> None:
        deadline = time.monotonic() + 10
        while fast.metrics.snapshot().frames < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()

    thread = threading.Thread(target=stop_when_done)
    thread.start()
    t0 = time.monotonic()
    multi.run()
    thread.join(10)
    log.close()
    assert time.monotonic() - t0 < 5
    assert fast.stats.total.frames == 20 and [w.faces for w in fast.stats.windows] == [1, 1]


def test_zones_drop_the_faces_whose_centre_is_inside(tmp_path: Path) -> None:
    boxes = [(10, 10, 40, 40), (100, 60, 40, 40), (60, 10, 20, 20)]  # centres (30,30), (120,80), (70,20)
    staff = Zone.rect(90, 50, 160, 120)
    door = Zone(((60, 0), (90, 0), (75, 40)))  # a triangle around (70, 20)
    dets = Detections(np.array(boxes, np.float32), np.ones(3, np.float32))
    kept = drop_in_zones(dets, [staff, door])
    assert kept.boxes.tolist() == [[10, 10, 40, 40]]
    classifier = FakeClassifier()
    log = MoodLog(tmp_path / "mood.db", FER2013_LABELS)
    loop = camera_loop("checkout", [BRIGHT] * 10, log, classifier, ShapeDetector(boxes), zones=(staff, door))
    serve({"checkout": loop}, classifier)
    log.close()
    assert [w.faces for w in loop.stats.windows] == [1] and classifier.calls[0] == 1


class Paced:
    """A live source: a frame every ``period`` seconds, ``n`` of them, then the end."""

    def __init__(self, n: int, period: float) -> None:
        self.n, self.period, self.given = n, period, 0

    def read(self) -> object:
        if self.given == self.n:
            return None
        time.sleep(self.period)
        self.given += 1
        return np.full((4, 4, 3), self.given, np.uint8)


def test_the_newest_frame_wins_and_the_rest_are_counted_as_dropped() -> None:
    capture = ThreadedCapture(Paced(20, 0.005)).start()
    time.sleep(0.5)  # the pipeline took nothing while 20 frames came
    item = capture.take()
    assert isinstance(item, Captured) and item.position == 19 and int(item.frame[0, 0, 0]) == 20
    assert capture.dropped == 19 and capture.take() is None  # the end, after the newest
    capture.close()


def test_realtime_plays_a_file_at_its_fps_and_a_direct_capture_drops_nothing() -> None:
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(10)]
    capture = ThreadedCapture(ListSource(list(frames)), pace_fps=20.0).start()
    t0 = time.monotonic()
    positions = []
    while True:
        item = capture.take()
        if item is None:
            break
        if isinstance(item, Captured):
            positions.append(item.position)
        time.sleep(0.001)
    took = time.monotonic() - t0
    capture.close()
    assert 0.4 <= took < 2.0  # 10 frames at 20 fps: about 0.45 s, not as fast as the reads go
    assert positions == sorted(positions) and positions[-1] == 9 and capture.dropped == 10 - len(positions)
    direct = DirectCapture(ListSource(list(frames)))
    taken = [direct.take() for _ in range(11)]
    assert [t.position for t in taken[:10]] == list(range(10)) and taken[10] is None  # type: ignore[union-attr]
    assert direct.dropped == 0


def test_an_outage_is_passed_on_and_never_hides_a_frame() -> None:
    class Source:
        items: list[object] = [OUTAGE, np.zeros((4, 4, 3), np.uint8), OUTAGE]

        def read(self) -> object:
            return self.items.pop(0) if self.items else None

    capture = ThreadedCapture(Source()).start()
    time.sleep(0.2)
    assert isinstance(capture.take(), Captured)  # the frame, not the outage that came after it
    assert capture.take() is None
    capture.close()


# --- the cameras of a run: --source NAME=URL, --cameras FILE, and what is wrong with them ------------


def run_cli(*args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from fer_edge.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def video(tmp_path: Path) -> Path:
    from scenes import write_video

    return write_video(tmp_path / "v.avi", [BRIGHT] * 3, fps=10.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[camera]]\nname = "a"\nsource = "{v}"\n[[camera]]\nname = "a"\nsource = "{v}"\n',
         "camera name 'a' is given twice"),
        ('[[camera]]\nname = "a"\nsource = "{v}"\nzoom = 2\n', "camera 'a': unknown key 'zoom'"),
        ('[[camera]]\nname = "a"\nsource = "{v}"\nwidth = 160\nheight = 120\nzones = [{{rect = [0, 0, 200, 50]}}]\n',
         "camera 'a': zone 1 reaches outside the 160x120 frame"),
        ('[[camera]]\nname = "a"\nsource = "{v}"\nzones = [{{polygon = [[0, 0], [5, 5]]}}]\n',
         "camera 'a': a polygon needs at least three points, got 2"),
        ('cameras = [1, 2\n', "not a TOML cameras file"),
        ('[camera]\nname = "a"\n', "no cameras"),
        ('[[camera]]\nsource = "{v}"\n', "camera 1: name is required"),
        ('[[camera]]\nname = "a"\nsource = "{v}"\nfps = -3\n', "camera 'a': fps must be a number above 0"),
    ],
)
def test_a_wrong_cameras_file_is_one_line_naming_it(tmp_path: Path, video: Path, text: str, message: str) -> None:
    path = tmp_path / "cameras.toml"
    path.write_text(text.format(v=video))
    code, output = run_cli("run", "--cameras", str(path), "--log", str(tmp_path / "m.db"))
    assert code != 0 and "Traceback" not in output, output
    assert output.count("\n") == 1 and str(path) in output and message in output, output
    assert not (tmp_path / "m.db").exists()


def test_a_zone_outside_the_frame_is_found_on_the_first_frame(tmp_path: Path, video: Path) -> None:
    path = tmp_path / "cameras.toml"
    path.write_text(f'[[camera]]\nname = "a"\nsource = "{video}"\nzones = [{{rect = [100, 0, 170, 50]}}]\n')
    code, output = run_cli("run", "--cameras", str(path), "--log", str(tmp_path / "m.db"))
    assert code != 0 and "Traceback" not in output
    assert "camera 'a': zone 1 reaches outside the 160x120 frame" in output.splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "a={v}", "--source", "a={v}"], "--source: camera name 'a' is given twice"),
        (["--source", "{v}", "--source", "b={v}"], "--source: with several cameras each needs a name"),
        ([], "--source or --cameras is required"),
    ],
)
def test_wrong_sources_are_one_line(tmp_path: Path, video: Path, args: list[str], message: str) -> None:
    code, output = run_cli("run", *[a.format(v=video) for a in args], "--log", str(tmp_path / "m.db"))
    assert code != 0 and "Traceback" not in output and message in output, output


def test_a_bare_source_is_cam0_and_a_named_one_keeps_its_name(video: Path) -> None:
    from fer_edge.camera.cameras import cameras_from_sources, split_named

    assert [c.name for c in cameras_from_sources([str(video)], None, None, None)] == ["cam0"]
    assert split_named("rtsp://host/s?channel=1") == (None, "rtsp://host/s?channel=1")
    assert split_named("entrance=rtsp://u:p@host/s?a=b") == ("entrance", "rtsp://u:p@host/s?a=b")
    named = cameras_from_sources([f"door={video}", f"till={video}"], None, None, None)
    assert [(c.name, c.source.kind) for c in named] == [("door", "file"), ("till", "file")]


# --- bench --camera --streams ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "two", "65"])
def test_a_wrong_streams_is_one_line(tmp_path: Path, video: Path, value: str) -> None:
    code, output = run_cli("bench", "--camera", str(video), "--streams", value)
    assert code != 0 and "Traceback" not in output
    assert "--streams must be a whole number from 1 to 64, or auto" in output, output
    code, output = run_cli("bench", "--streams", "2")
    assert code != 0 and "--streams needs --camera" in output


def test_streams_plays_copies_as_live_cameras_and_reports_each(tmp_path: Path) -> None:
    import json

    from scenes import write_video
    from test_camera_helpers import tiny_fer_model

    frames = [np.full((120, 160, 3), 90, np.uint8)] * 12
    clip = write_video(tmp_path / "clip.avi", frames, fps=20.0)
    model = tiny_fer_model(tmp_path / "tiny.onnx")
    code, output = run_cli("bench", "--camera", str(clip), "--models", str(model), "--streams", "2",
                           "--detector-device", "cpu", "--window", "1", "--json", str(tmp_path / "s.json"),
                           "--markdown", str(tmp_path / "s.md"))
    assert code == 0, output
    report = json.loads((tmp_path / "s.json").read_text())
    (trial,) = report["trials"]
    assert trial["streams"] == 2 and [r["stream"] for r in trial["rows"]] == ["stream0", "stream1"]
    for row in trial["rows"]:
        assert row["frames"] + row["dropped"] == 12  # every frame of the copy taken or counted as dropped
        assert 0 < row["fps"] <= 25 and row["delay_ms_p99"] >= row["delay_ms_p50"] >= 0
        assert set(row["mean_ms"]) == {"capture", "detect", "track", "classify", "log", "other"}
    assert trial["seconds"] >= 0.5  # 12 frames at 20 fps: played in real time, not as fast as possible
    assert report["line"].startswith("this device ") and "of 160x120 at 20 fps" in report["line"]
    assert report["line"] in output and report["line"] in (tmp_path / "s.md").read_text()


def test_auto_keeps_the_largest_n_sustained_with_counts_intact(monkeypatch: pytest.MonkeyPatch) -> None:
    from fer_edge.bench import streams as mod

    def fake_trial(video: object, settings: object, n: int, tmp: object) -> mod.StreamsTrial:
        dropped = 0.0 if n <= 3 else 0.05
        faces = 100 if n != 3 else 97  # 3: faces lost
        rows = [{"dropped_share": dropped, "fps": 30.0, "faces": faces, "counts": {"happy": 50, "sad": faces - 50}}
                for _ in range(n)]
        return mod.StreamsTrial(n, rows, 1.0, 1.0, 1.0)

    monkeypatch.setattr(mod, "run_streams", fake_trial)
    trials, sustained, best = mod.find_capacity(Path("v"), None, None)  # type: ignore[arg-type]
    assert [t.streams for t in trials] == [1, 2, 3] and sustained == [True, True, False] and best == 2
    capped, _, best_capped = mod.find_capacity(Path("v"), None, None, most=1)  # type: ignore[arg-type]
    assert [t.streams for t in capped] == [1] and best_capped == 1  # the search stops at ``most``
    assert mod.quotable(best, 640, 480, 30.0) == "this device runs 2 cameras of 640x480 at 30 fps"
    assert mod.quotable(1, 640, 480, 30.0) == "this device runs one camera of 640x480 at 30 fps"
    refused = "this device does not run 3 cameras of 640x480 at 30 fps in real time"
    assert mod.quotable(0, 640, 480, 30.0, tried=3) == refused
    assert trials[1].rows[0]["emotion_share_points"] == 0.0 and trials[2].rows[0]["emotion_share_points"] > 1.0
    assert mod.share_points({"faces": 100, "counts": {"happy": 52, "sad": 48}},
                            {"faces": 100, "counts": {"happy": 50, "sad": 50}}) == pytest.approx(2.0)


@SCHEDULES
def test_q_in_one_cameras_window_ends_the_run(tmp_path: Path, workers: int) -> None:
    class Closing:
        shown = 0

        def show(self, frame: np.ndarray, tracks: list[object], labels: tuple[str, ...]) -> bool:
            self.shown += 1
            return self.shown < 3

    classifier = FakeClassifier()
    logs = [MoodLog(tmp_path / "mood.db", FER2013_LABELS) for _ in range(2)]
    shown = camera_loop("door", [BRIGHT] * 20, logs[0], classifier, ShapeDetector([]))
    shown._sinks = [Closing()]  # type: ignore[list-item]
    other = camera_loop("till", [BRIGHT] * 20, logs[1], classifier, ShapeDetector([]))
    serve({"door": shown, "till": other}, classifier, workers)
    for log in logs:
        log.close()
    assert shown.stats.stopped_by == other.stats.stopped_by == "display closed"
    assert shown.stats.total.frames == 3 and other.stats.total.frames <= 4


def test_the_status_line_and_the_journal_show_each_cameras_fps_faces_and_drops() -> None:
    import io

    from fer_edge.camera.status import StatusLine, cameras_text

    door, till = CameraMetrics("door", FER2013_LABELS), CameraMetrics("till", FER2013_LABELS)
    door.frame({"capture": 1.0}, 2, 0.05, True)  # 20 fps, 2 faces
    door.source_state(0, dropped_frames=7)
    till.frame({"capture": 1.0}, 0, 0.1, True)
    till.camera_down(0.0)
    door.log_state(written=3, held=0)
    till.log_state(written=2, held=1)
    line = cameras_text([door.snapshot(), till.snapshot()])
    assert line.startswith("door 20.0 fps, 2 faces, 7 dropped | till down since ")
    assert line.endswith("| windows 5 written, 1 held")
    journal = io.StringIO()
    StatusLine(journal, is_tty=False).report_cameras({"door": door, "till": till})
    first, second = journal.getvalue().splitlines()
    assert first.startswith("door: 20.0 fps | faces now 2 | 7 frames dropped | windows 3 written")
    assert second.startswith("till: no camera since ")
    alone = io.StringIO()
    StatusLine(alone, is_tty=False).report_cameras({"cam0": door}, named=False)
    assert alone.getvalue().startswith("20.0 fps | faces now 2 |")  # one camera: the line as before


def test_a_file_read_ahead_loses_no_frame_however_slow_the_pipeline() -> None:
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(8)]
    capture = ThreadedCapture(ListSource(list(frames)), keep_all=True).start()
    seen = []
    while True:
        item = capture.take()
        if item is None:
            break
        if isinstance(item, Captured):
            seen.append(int(item.frame[0, 0, 0]))
            time.sleep(0.02)  # a slow pipeline: the reader waits for it
    capture.close()
    assert seen == list(range(8)) and capture.dropped == 0


@SCHEDULES
def test_a_stop_is_a_signal_not_the_end_of_a_live_source(tmp_path: Path, workers: int) -> None:
    stop = threading.Event()

    class Live:
        def read(self) -> object:  # as FrameSource: None once a stop was asked
            time.sleep(0.01)
            return None if stop.is_set() else BRIGHT

    log = MoodLog(tmp_path / "mood.db", FER2013_LABELS)
    loop = camera_loop("door", [], log, FakeClassifier(), ShapeDetector([]))
    loop.options.media_fps = None
    multi = MultiCameraLoop([Feed("door", ThreadedCapture(Live()), loop, live=True, paced=True)], FakeClassifier(),
                            stop=stop, echo=lambda s: None, detect_workers=workers)

    def stop_after_frames() -> None:  # a stop once the loop serves frames (however slow its start)
        deadline = time.monotonic() + 10
        while loop.metrics.snapshot().frames <= 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()

    threading.Thread(target=stop_after_frames, daemon=True).start()
    stats = multi.run()["door"]
    log.close()
    assert stats.stopped_by == "signal" and stats.total.frames > 5


def test_dropped_frames_pass_on_the_cameras_clock(tmp_path: Path) -> None:
    """A camera that drops frames under load schedules and tracks on its own clock: a face moving
    4 px a frame keeps a velocity of 4 px a frame when every other frame is dropped, and the detector
    every 3 frames runs on the first frame delivered 3 or more frames after its last pass."""
    from dataclasses import replace

    from fer_edge.camera.options import TUNED

    class Moving:
        name = "scripted"

        def detect(self, frame: np.ndarray) -> Detections:
            x = float(frame[0, 0, 0])  # the face's x, written into the frame
            return Detections(np.array([[x, 20.0, 40.0, 40.0]], np.float32), np.ones(1, np.float32))

    classifier = FakeClassifier()
    log = MoodLog(tmp_path / "mood.db", FER2013_LABELS)
    options = replace(TUNED, window_s=10.0, media_fps=30.0, views=1, adaptive=False)
    loop = CameraLoop(ListSource([]), Moving(), classifier, CropRule(1.0), log, options,  # type: ignore[arg-type]
                      metrics=CameraMetrics("door", FER2013_LABELS), echo=lambda s: None)
    detected = []
    for position in range(0, 20, 2):  # frames 1, 3, 5, ... were dropped
        frame = np.full((120, 160, 3), 200, np.uint8)
        frame[0, 0, 0] = 10 + 4 * position
        work = loop.begin_frame(frame, 100.0 + position / 30.0, time.perf_counter(), 0.0, position)
        loop.detect(work)
        loop.track(work)
        p = None if work.batch is None else classifier.infer(work.batch)
        loop.finish_frame(work, p)
        detected.append(work.detected)
    log.close()
    (track,) = loop.tracker.tracks
    assert track.velocity[0] == pytest.approx(4.0)  # per frame of the camera, not per frame processed
    # detect every 3 frames: positions 0, 4 (3 frames after 0; 2 was too soon), 8, 12, 16
    assert [pos for pos, d in zip(range(0, 20, 2), detected) if d] == [0, 4, 8, 12, 16]
    assert loop.metrics.total.frames == 10  # ten frames processed, on a clock of twenty

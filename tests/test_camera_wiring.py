"""One wiring of the camera pipeline: ``run`` and ``bench --camera`` build it from the same options and
agree on a video; the loop's metrics object and open-window bookkeeping; the status line reads the
metrics; the loop stops on an event."""

from __future__ import annotations

import inspect
import io
import json
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_camera_helpers import (
    YUNET_NAME,
    FakeClassifier,
    ListSource,
    ScriptedDetector,
    detectable_faces,
    tiny_fer_model,
)
from typer.testing import CliRunner

from fer_edge.camera.crop import CropRule
from fer_edge.camera.metrics import CameraMetrics
from fer_edge.camera.options import TUNED, LoopOptions, TrackerOptions
from fer_edge.camera.pipeline import CameraLoop, run_loop
from fer_edge.camera.settings import CameraSettings, camera_settings
from fer_edge.camera.sources import OUTAGE
from fer_edge.camera.status import StatusLine, status_text
from fer_edge.camera.windows import OpenWindow
from fer_edge.cli import COMMANDS, app
from fer_edge.core.errors import FerEdgeError
from fer_edge.model.labels import FER2013_LABELS
from fer_edge.moodlog.writer import MoodLog

cv2 = pytest.importorskip("cv2")

CAMERA_OPTIONS = (
    "window", "detector_model", "detector_device", "min_face", "detect_width", "views", "all_views",
    "detect_every", "adaptive", "reinfer_every", "reinfer_iou", "align", "track_iou", "max_missed", "min_hits",
    "settle", "classify_between", "chase", "drift", "small_face", "keep_passes", "max_missed_new",
)


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


# --- run and bench --camera: one wiring --------------------------------------------------------------


def two_sizes_video(path: Path, big: np.ndarray, small: np.ndarray, n_frames: int, fps: float) -> Path:
    """A 150-px face and a 64-px face drifting apart in their own halves of a 640x480 frame."""
    from scenes import background, paste_face, write_video

    bg = background(640, 480, np.random.default_rng(0))
    frames = []
    for i in range(n_frames):
        frame = bg.copy()
        paste_face(frame, big, 40 + i, 100 + i // 2, 150)
        paste_face(frame, small, 420 - i, 200 + i // 2, 64)
        frames.append(frame)
    return write_video(path, frames, fps=fps)


@pytest.fixture
def yunet_cached(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from fer_edge.camera.detector_file import install_yunet

    source = shared_data / YUNET_NAME
    if not source.exists():
        pytest.skip(f"{YUNET_NAME} not present in {shared_data}")
    monkeypatch.setenv("FER_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    return install_yunet(from_file=source)


def logged_windows(db_path: Path) -> list[dict[str, object]]:
    db = sqlite3.connect(db_path)
    try:
        out = []
        for wid, faces in db.execute("SELECT id, faces FROM windows ORDER BY id").fetchall():
            rows = db.execute("SELECT emotion, count FROM window_counts WHERE window_id=? AND count > 0", (wid,))
            out.append({"faces": faces, "counts": dict(rows.fetchall())})
        return out
    finally:
        db.close()


def test_run_and_bench_camera_give_the_same_windows_with_the_same_options(
    tmp_path: Path, real_slice_csv: Path, yunet_cached: Path
) -> None:
    big = detectable_faces(real_slice_csv, 1, yunet_cached, side=150)[0]
    small = detectable_faces(real_slice_csv, 2, yunet_cached, side=64)[1]
    video = two_sizes_video(tmp_path / "store.avi", big, small, n_frames=40, fps=10.0)
    model = tiny_fer_model(tmp_path / "tiny.onnx")
    # Not run's defaults: an option bench --camera used to drop (--min-face) and the tracker's.
    options = ["--window", "1", "--min-face", "100", "--min-hits", "2", "--detect-every", "3", "--max-missed", "4"]

    code, output = cli("run", "--source", str(video), "--model", str(model), "--log", str(tmp_path / "run.db"),
                       *options)
    assert code == 0, output
    by_run = logged_windows(tmp_path / "run.db")
    code, output = cli("bench", "--camera", str(video), "--models", str(model), "--json", str(tmp_path / "b.json"),
                       *options)
    assert code == 0, output
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert rows[0]["config"] == "as run with these options"
    assert rows[0]["options"]["min_face"] == 100 and rows[0]["options"]["tracker"]["min_hits"] == 2
    assert rows[0]["windows"] == by_run  # the same per-window counts per emotion
    assert [w["faces"] for w in by_run] == [1, 1, 1, 1]  # --min-face 100 kept the 64-px face out
    # ...which run's default counts: the option is what made the difference, in both commands.
    code, output = cli("run", "--source", str(video), "--model", str(model), "--log", str(tmp_path / "all.db"),
                       "--window", "1")
    assert code == 0, output
    assert [w["faces"] for w in logged_windows(tmp_path / "all.db")] == [2, 2, 2, 2]


def test_bench_camera_measures_the_model_run_would_load(tmp_path: Path) -> None:
    from scenes import write_video

    from fer_edge.model.shipped import default_model

    frames = [np.full((120, 160, 3), 90, np.uint8)] * 6
    video = write_video(tmp_path / "v.avi", frames, fps=10.0)
    code, output = cli("bench", "--camera", str(video), "--detector-device", "cpu", "--window", "1",
                       "--json", str(tmp_path / "c.json"))
    assert code == 0, output
    report = json.loads((tmp_path / "c.json").read_text())
    assert Path(report["model"]) == default_model("auto")  # on a CPU: the CPU layout, as run loads
    assert {r["config"] for r in report["rows"]} == {"tuned (run's default)", "every frame"}


def test_bench_takes_every_camera_option_of_run_with_run_defaults() -> None:
    run = inspect.signature(COMMANDS["run"]).parameters
    bench = inspect.signature(COMMANDS["bench"]).parameters
    for name in CAMERA_OPTIONS:
        assert name in bench, name
        assert bench[name].default == run[name].default, name


def test_the_scheduler_flags_reach_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fer_edge.bench.camera as bench_camera

    seen: list[CameraSettings] = []
    monkeypatch.setattr(bench_camera, "bench_camera_command", lambda console, video, models, settings, *rest:
                        seen.append(settings))
    video = tmp_path / "v.avi"
    video.write_bytes(b"not read: the command is replaced")
    code, output = cli("bench", "--camera", str(video), "--settle", "2", "--no-classify-between", "--no-chase",
                       "--drift", "0.1", "--small-face", "64", "--keep-passes", "2", "--max-missed-new", "30")
    assert code == 0, output
    (settings,) = seen
    loop = settings.loop
    assert (loop.settle, loop.classify_between, loop.chase, loop.drift, loop.small_face) == (2, False, False, 0.1, 64)
    assert (settings.tracker.keep_passes, settings.tracker.max_missed_unconfirmed) == (2, 30)
    tracker = settings.new_tracker()
    assert (tracker.keep_passes, tracker.max_missed_unconfirmed) == (2, 30)
    # Without the flags: run's defaults, every scheduler field of TUNED.
    code, output = cli("bench", "--camera", str(video))
    assert code == 0, output
    assert seen[1].loop == replace(TUNED, window_s=seen[1].loop.window_s) and seen[1].tracker == TrackerOptions()
    code, output = cli("bench", "--camera", str(video), "--drift", "0")
    assert code == 2 and "--drift" in output


def test_run_passes_the_scheduler_flags_to_its_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fer_edge.commands.run as run_command

    seen: list[CameraSettings] = []
    monkeypatch.setattr(run_command, "serve", lambda settings, *rest: seen.append(settings) or [])
    video = tmp_path / "v.avi"
    video.write_bytes(b"not read: serve is replaced")
    code, output = cli("run", "--source", str(video), "--log", str(tmp_path / "m.db"), "--settle", "2",
                       "--no-classify-between", "--no-chase", "--drift", "0.1", "--small-face", "64",
                       "--keep-passes", "2", "--max-missed-new", "30")
    assert code == 0, output
    (settings,) = seen
    loop = settings.loop
    assert (loop.settle, loop.classify_between, loop.chase, loop.drift, loop.small_face) == (2, False, False, 0.1, 64)
    assert (settings.tracker.keep_passes, settings.tracker.max_missed_unconfirmed) == (2, 30)


def test_settings_check_options_as_the_cli_names_them() -> None:
    base = dict(model=None, device="cpu", threads=None, detector_model=None, detector_device="auto", min_face=40,
                detect_width=None, window=60.0, views=6, all_views=False, detect_every=TUNED.detect_every,
                adaptive=True, reinfer_every=TUNED.reinfer_every, reinfer_iou=0.5, align=False, track_iou=0.3,
                max_missed=10, min_hits=3)
    settings = camera_settings(**base)  # type: ignore[arg-type]
    assert settings.loop == TUNED and settings.tracker.min_hits == 3
    every = settings.every_frame()
    assert (every.loop.detect_every, every.loop.adaptive, every.loop.reinfer_every) == (1, False, 1)
    assert every.loop.views == settings.loop.views and every.min_face == settings.min_face
    for key, value, flag in (("views", 3, "--views"), ("detect_every", 0, "--detect-every"),
                             ("track_iou", 0.0, "--track-iou"), ("min_hits", 0, "--min-hits")):
        with pytest.raises(FerEdgeError, match=flag):
            camera_settings(**{**base, key: value})  # type: ignore[arg-type]
    tracker = CameraSettings(tracker=settings.tracker).new_tracker()
    assert (tracker.iou_threshold, tracker.max_missed, tracker.min_hits) == (0.3, 10, 3)


# --- the metrics object, the open window, the status line ---------------------------------------------


class DroppingSource(ListSource):
    """A list of frames and OUTAGEs; counts its reconnects as FrameSource does."""

    def __init__(self, items: list[object]) -> None:
        super().__init__(items)  # type: ignore[arg-type]
        self.reconnects = 0
        self._was_down = False

    def read(self) -> object:  # type: ignore[override]
        item = super().read()
        down = item is OUTAGE
        if self._was_down and not down:
            self.reconnects += 1
        self._was_down = down
        return item


def test_the_loop_keeps_its_figures_in_the_metrics_object(tmp_path: Path) -> None:
    frame = np.full((120, 160, 3), 200, np.uint8)
    items: list[object] = [frame] * 12 + [OUTAGE] * 3 + [frame] * 8 + [OUTAGE] + [frame] * 5
    metrics = CameraMetrics("entrance", FER2013_LABELS)
    log = MoodLog(tmp_path / "mood.db", FER2013_LABELS)
    stats = run_loop(
        DroppingSource(items), ScriptedDetector([[(10, 10, 40, 40), (80, 10, 40, 40)]] * 25), FakeClassifier(),
        CropRule(1.0), log, LoopOptions(window_s=1.0, media_fps=10.0, views=1), echo=lambda s: None,
        metrics=metrics,
    )
    log.close()
    snap = metrics.snapshot()
    assert snap.camera == "entrance" and snap.frames == 25 == stats.total.frames
    assert snap.outages == 2 and snap.reconnects == 2 and snap.camera_up
    assert snap.faces_now == 2 and snap.detector_runs == 25
    assert snap.windows_closed == len(stats.windows) == 3 and snap.windows_written == 3 and snap.windows_held == 0
    assert snap.emotions_total["happy"] == sum(w.counts["happy"] for w in stats.windows) == 6
    assert set(snap.stage_ms_total) == {"capture", "detect", "track", "classify", "log", "other"}
    assert snap.interval.frames == 25  # no periodic line yet (stats every 10 s)


def test_a_snapshot_from_another_thread_is_consistent(tmp_path: Path) -> None:
    metrics = CameraMetrics(labels=FER2013_LABELS)
    seen: list[tuple[int, int]] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            snap = metrics.snapshot()
            seen.append((snap.frames, snap.interval.frames))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(3000):
            metrics.frame({"capture": 1.0}, 1, 0.001, True)
    finally:
        done.set()
        thread.join()
    assert seen and all(total == interval for total, interval in seen)  # never half an update
    assert metrics.snapshot().frames == 3000 and metrics.next_interval().frames == 3000
    assert metrics.snapshot().interval.frames == 0


def test_windows_close_on_time_and_split_an_outage() -> None:
    window = OpenWindow(100.0, 10.0)
    assert window.camera_down(105.0) and not window.camera_down(106.0)
    ends = []
    for end in window.due(127.0):  # the camera came back 22 s later: two windows closed on time
        ends.append(end)
        summary = window.close(FER2013_LABELS, [], end, partial=False)
        assert summary.outage_s == pytest.approx(5.0 if end == 110.0 else 10.0)
    assert ends == [110.0, 120.0] and window.start == 120.0
    window.camera_back(127.0)
    window.frames += 1
    last = window.close(FER2013_LABELS, [], 128.0, partial=True)
    assert last.outage_s == pytest.approx(7.0) and last.frames == 1 and last.partial
    assert not window.has_content


def test_the_status_line_is_built_from_the_metrics() -> None:
    metrics = CameraMetrics(labels=FER2013_LABELS, to_sync=lambda: 4)
    metrics.frame({"capture": 2.0, "detect": 4.0}, 3, 0.1, True)
    metrics.log_state(written=7, held=1)
    text = status_text(metrics.snapshot())
    assert text.startswith("10.0 fps | faces now 3 | windows 7 written, 1 held, 4 to sync | capture 2.0 ms")
    assert "detector on 1/1 frames" in text
    metrics.camera_down(0.0)
    down = status_text(metrics.snapshot())
    assert down.startswith("no camera since ") and down.endswith("| windows 7 written, 1 held, 4 to sync")
    out = io.StringIO()
    StatusLine(out, is_tty=False).report(metrics)
    assert out.getvalue() == down + "\n"


# --- stopping ------------------------------------------------------------------------------------------


class ClosingSink:
    def __init__(self, after: int, stop: threading.Event | None = None) -> None:
        self.after, self.shown, self.stop = after, 0, stop

    def show(self, frame: np.ndarray, tracks: list[object], labels: tuple[str, ...]) -> bool:
        self.shown += 1
        if self.stop is not None and self.shown == self.after:
            self.stop.set()  # as the signal handler does, from outside the loop
            return True
        return self.shown < self.after


@pytest.mark.parametrize("by_event", [True, False])
def test_the_loop_stops_on_its_event_or_a_closed_display(tmp_path: Path, by_event: bool) -> None:
    stop = threading.Event()
    sink = ClosingSink(after=4, stop=stop if by_event else None)
    log = MoodLog(tmp_path / "mood.db", FER2013_LABELS)
    loop = CameraLoop(
        ListSource([np.zeros((60, 80, 3), np.uint8)] * 20), ScriptedDetector([[]] * 20), FakeClassifier(),
        CropRule(1.0), log, LoopOptions(window_s=60.0, media_fps=10.0), stop=stop, sinks=[sink],
        echo=lambda s: None,
    )
    stats = loop.run()
    log.close()
    assert stats.total.frames == 4 and len(stats.windows) == 1 and stats.windows[0].partial
    assert stats.stopped_by == ("signal" if by_event else "display closed")

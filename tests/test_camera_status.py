"""The camera's status: one line redrawn in place on a terminal, a line per interval in a log."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from test_camera_helpers import FakeClassifier, ListSource, ScriptedDetector

from fer_edge.camera.crop import CropRule
from fer_edge.camera.pipeline import LoopOptions, run_loop
from fer_edge.camera.status import CLEAR_LINE, StatusLine
from fer_edge.moodlog.writer import MoodLog

pytest.importorskip("cv2")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_on_a_terminal_one_line_is_redrawn_and_messages_go_above_it() -> None:
    out, clock = io.StringIO(), Clock()
    status = StatusLine(out, is_tty=True, refresh_s=0.5, to_sync=lambda: 7, clock=clock)
    built: list[int] = []

    def text() -> str:
        built.append(1)
        return f"{len(built)} fps, " + status.windows(5, 0)

    for _ in range(10):  # ten frames within 0.5 s: drawn once
        status.live(text)
        clock.now += 0.04
    assert len(built) == 1 and out.getvalue() == CLEAR_LINE + "1 fps, windows 5 written, 7 to sync"
    status.message("window A")
    assert out.getvalue().endswith(CLEAR_LINE + "window A\n" + "1 fps, windows 5 written, 7 to sync")
    clock.now += 1
    status.live(text)
    assert out.getvalue().endswith(CLEAR_LINE + "2 fps, windows 5 written, 7 to sync")
    assert "\n2 fps" not in out.getvalue()
    status.close()
    status.message("stopped")
    assert out.getvalue().endswith("7 to sync" + CLEAR_LINE + "stopped\n")


def test_without_a_terminal_a_line_per_interval_and_no_control_characters() -> None:
    out = io.StringIO()
    status = StatusLine(out, is_tty=False, to_sync=lambda: None)
    assert status.windows(3, 2) == "windows 3 written, 2 held"
    status.live(lambda: pytest.fail("not built without a terminal"))  # type: ignore[arg-type,return-value]
    status.periodic("10 frames | 9.9 fps")
    status.message("window B")
    status.close()
    assert out.getvalue() == "10 frames | 9.9 fps\nwindow B\n"


def test_a_status_line_never_wraps(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr("shutil.get_terminal_size", lambda fallback=None: os.terminal_size((40, 24)))
    out = io.StringIO()
    StatusLine(out, is_tty=True).periodic("x" * 100)
    assert len(out.getvalue()) - len(CLEAR_LINE) < 40


def test_the_loop_reports_fps_faces_and_windows_written(tmp_path: Path) -> None:
    out = io.StringIO()
    status = StatusLine(out, is_tty=False)
    log = MoodLog(tmp_path / "mood.db", FakeClassifier.labels)
    run_loop(
        ListSource([np.full((120, 160, 3), 200, np.uint8)] * 30),
        ScriptedDetector([[(10, 10, 40, 40), (80, 10, 40, 40)]] * 30),
        FakeClassifier(),
        CropRule(1.0),
        log,
        LoopOptions(window_s=1.0, media_fps=10.0, stats_every_s=0.0, views=1),
        echo=status.message,
        status=status,
    )
    log.close()
    lines = out.getvalue().splitlines()
    periodic = [line for line in lines if " fps |" in line and "faces now" in line]
    assert periodic and "faces now 2" in periodic[-1]
    assert "windows 2 written" in periodic[-1]  # two 1-s windows closed before the last frame

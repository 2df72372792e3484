"""The camera loop's scheduler (when the detector and the classifier run) counts as the loop that
detects and classifies every frame: a face that left is not counted in the next window, a brief
face is classified on its first frames, a track the detector misses once survives a few passes.
The end-to-end checks on generated videos of three kinds are in test_camera_counts.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from test_camera_helpers import FakeClassifier, ListSource, numbered_frames

from fer_edge.camera.crop import CropRule
from fer_edge.camera.detection import Detections
from fer_edge.camera.options import TRACKER, TUNED, LoopOptions
from fer_edge.camera.pipeline import RunStats, run_loop
from fer_edge.camera.tracking import IouTracker, detection_due, needs_classification
from fer_edge.model.labels import FER2013_LABELS
from fer_edge.moodlog.writer import MoodLog


class PresentDetector:
    """One still face, found on the frames in ``present``; counts the calls and the frames asked."""

    name = "present"

    def __init__(self, present: range) -> None:
        self.present = present
        self.asked: list[int] = []

    def detect(self, frame: np.ndarray) -> Detections:
        index = int(frame[0, 0, 0])
        self.asked.append(index)
        if index not in self.present:
            return Detections()
        return Detections(np.array([[60, 40, 60, 60]], np.float32), np.ones(1, np.float32))


def play(tmp_path: Path, detector: PresentDetector, options: LoopOptions, n: int, tracker: IouTracker,
         classifier: FakeClassifier | None = None) -> RunStats:
    log = MoodLog(tmp_path / f"m{id(options)}{id(tracker)}.db", FER2013_LABELS)
    stats = run_loop(ListSource(numbered_frames(n)), detector, classifier or FakeClassifier(), CropRule(1.0), log,
                     replace(options, media_fps=10.0, window_s=1.0), echo=lambda s: None, tracker=tracker)
    log.close()
    return stats


def test_a_face_that_left_is_not_counted_in_the_next_window(tmp_path: Path) -> None:
    # In view on frames 0-9 (window 0); the detector runs every 3 frames (0, 3, 6, 9, 12), so the
    # tracker carries the face over frames 10 and 11 of window 1, where nobody is.
    options = LoopOptions(detect_every=3, views=1, chase=False)
    carried = play(tmp_path, PresentDetector(range(10)), options, 20, IouTracker(min_hits=1, count_detected=False))
    assert [w.faces for w in carried.windows] == [1, 1]  # the last round's count: one face too many
    stats = play(tmp_path, PresentDetector(range(10)), options, 20, IouTracker(min_hits=1))
    assert [w.faces for w in stats.windows] == [1, 0]
    # The detector's every-frame loop counts the same.
    every = play(tmp_path, PresentDetector(range(10)), LoopOptions(views=1), 20, IouTracker(min_hits=1))
    assert [w.faces for w in every.windows] == [1, 0]


def test_a_new_face_is_classified_on_each_of_its_first_frames(tmp_path: Path) -> None:
    options = LoopOptions(detect_every=5, adaptive=True, reinfer_every=10, views=1, settle=4, chase=False,
                          classify_between=False)
    detector, classifier = PresentDetector(range(20)), FakeClassifier()
    play(tmp_path, detector, options, 20, IouTracker(min_hits=1), classifier)
    # Detected and classified on frames 0-3 (settling), then the detector every 5 frames from
    # frame 3 (8, 13, 18) and the classifier every 10 (13).
    assert detector.asked == [0, 1, 2, 3, 8, 13, 18]
    assert classifier.calls == [1] * 5
    # Without settling: one look at frame 0, the next at frame 10's pass.
    detector, classifier = PresentDetector(range(20)), FakeClassifier()
    play(tmp_path, detector, replace(options, settle=0), 20, IouTracker(min_hits=1), classifier)
    assert detector.asked == [0, 5, 10, 15] and classifier.calls == [1, 1]


def test_settling_between_detector_passes_classifies_the_tracked_box(tmp_path: Path) -> None:
    options = LoopOptions(detect_every=5, adaptive=True, reinfer_every=10, views=1, settle=4, chase=False)
    detector, classifier = PresentDetector(range(20)), FakeClassifier()
    play(tmp_path, detector, options, 20, IouTracker(min_hits=1), classifier)
    assert detector.asked == [0, 5, 10, 15]  # the detector as without settling
    assert classifier.calls == [1] * 5  # frames 0-3 (1-3 on the tracked box), then frame 13 (10 later)


def test_a_track_missed_once_survives_until_several_passes_missed_it() -> None:
    tracker = IouTracker(max_missed=4, min_hits=1, keep_passes=3)
    box = np.array([[100, 100, 50, 50]])
    (track,) = tracker.match(box, 0.0, 0)
    for frame in (5, 10):  # detector passes every 5 frames miss it: past max_missed, 2 passes
        tracker.match(np.zeros((0, 4)), float(frame), frame)
    assert tracker.tracks == [track] and track.missed == 2
    (again,) = tracker.match(box, 15.0, 15)
    assert again is track  # the same person, not a second one in the window
    for frame in (20, 25, 30):
        tracker.match(np.zeros((0, 4)), float(frame), frame)
    assert tracker.tracks == [] and tracker.ended == [track]
    # The last round's rule: gone after max_missed frames, whatever the passes.
    short = IouTracker(max_missed=4, min_hits=1, keep_passes=1)
    short.match(box, 0.0, 0)
    short.match(np.zeros((0, 4)), 5.0, 5)
    assert short.tracks == []


def test_settling_tracks_make_the_detector_look_on_every_frame() -> None:
    options = LoopOptions(detect_every=5, adaptive=True, reinfer_every=10, settle=3, classify_between=False)
    tracker = IouTracker(min_hits=1)
    (track,) = tracker.match(np.array([[100, 100, 50, 50]]), 0.0, 0)
    assert needs_classification(track, options, 0)
    tracker.set_probs(track, np.eye(7)[3], 0)
    assert detection_due(options, tracker, 1, 0)  # classified once of three
    for frame in (1, 2):
        tracker.match(np.array([[100, 100, 50, 50]]), float(frame), frame)
        tracker.set_probs(track, np.eye(7)[3], frame)
    assert not needs_classification(track, options, 3) and not detection_due(options, tracker, 3, 2)
    young = IouTracker(min_hits=1)
    (new,) = young.match(np.array([[100, 100, 50, 50]]), 0.0, 0)
    young.set_probs(new, np.eye(7)[3], 0)
    assert detection_due(options, young, 1, 0)
    assert not detection_due(replace(options, classify_between=True), young, 1, 0)  # classified on the tracked box
    assert needs_classification(new, replace(options, classify_between=True), 1, detected=False)


def test_drift_sets_how_far_a_moving_face_may_slide_before_the_detector_looks_again() -> None:
    # A walker: 5 px a frame, a 40 px face, last detected at frame 1.
    walker = IouTracker(min_hits=1)
    for frame in (0, 1):
        walker.match(np.array([[100 + 5 * frame, 100, 40, 40]]), float(frame), frame)
    options = LoopOptions(detect_every=5, adaptive=True, chase=False)
    assert not detection_due(options, walker, 3, 1)  # 10 px: not over a quarter of 40
    assert detection_due(options, walker, 4, 1)  # 15 px
    assert detection_due(replace(options, drift=0.1), walker, 2, 1)  # 5 px > 4 px: every frame while it walks
    # A face that stays (1 px a frame on 150 px) is not looked at more often at that setting.
    still = IouTracker(min_hits=1)
    for frame in (0, 1):
        still.match(np.array([[100 + frame, 100, 150, 150]]), float(frame), frame)
    assert not detection_due(replace(options, drift=0.1), still, 4, 1)


def test_a_small_face_in_view_makes_the_detector_look_on_every_frame() -> None:
    options = LoopOptions(detect_every=5, adaptive=True, small_face=80)
    tracker = IouTracker(min_hits=1)
    tracker.match(np.array([[100, 100, 60, 60], [300, 100, 150, 150]]), 0.0, 0)  # a passer-by, a shopper
    assert detection_due(options, tracker, 1, 0)
    assert not detection_due(replace(options, small_face=0), tracker, 1, 0)  # off: every 5 frames
    large = IouTracker(min_hits=1)
    large.match(np.array([[300, 100, 150, 150]]), 0.0, 0)
    assert not detection_due(options, large, 1, 0)  # only faces narrower than small_face


def test_an_unconfirmed_face_keeps_its_track_and_the_detector_looking_for_max_missed_unconfirmed() -> None:
    # A hard face: found at frame 0, then from frame 30 on (as YuNet finds a small or half-hidden
    # face now and then). With max_missed 10 its first track ends and the detector goes back to
    # every 3 frames: the face is confirmed (3 detections) at frame 34 instead of 31.
    box = np.array([[100, 100, 50, 50]])
    found = {0, *range(30, 40)}
    options = LoopOptions(detect_every=3, adaptive=True)

    def confirmed_at(tracker: IouTracker) -> tuple[int | None, list[int]]:
        looked, last = [], None
        for frame in range(40):
            if detection_due(options, tracker, frame, last):
                looked.append(frame)
                last = frame
                tracker.match(box if frame in found else np.zeros((0, 4)), float(frame), frame)
            else:
                tracker.predict(frame)
            if any(t.detections >= tracker.min_hits for t in tracker.tracks):
                return frame, looked
        return None, looked

    short, looked = confirmed_at(IouTracker(max_missed=10, max_missed_unconfirmed=None))
    assert short == 34 and looked[:12] == list(range(12)) and looked[12:14] == [14, 17]  # gone at 11
    held, looked = confirmed_at(IouTracker(max_missed=10, max_missed_unconfirmed=45))
    assert held == 31 and looked == list(range(32))  # one track, looked for on every frame
    # A confirmed track still ends after max_missed frames.
    tracker = IouTracker(max_missed=4, min_hits=1, keep_passes=1, max_missed_unconfirmed=45)
    tracker.match(box, 0.0, 0)
    tracker.match(np.zeros((0, 4)), 5.0, 5)
    assert tracker.tracks == []


def test_the_every_frame_loop_is_unchanged_by_the_scheduler(tmp_path: Path) -> None:
    # LoopOptions() is still the old loop: the detector and the classifier on every frame.
    detector, classifier = PresentDetector(range(8)), FakeClassifier()
    play(tmp_path, detector, LoopOptions(views=1), 12, IouTracker(min_hits=1), classifier)
    assert detector.asked == list(range(12)) and classifier.calls == [1] * 8
    # What the measurements chose (benchmarks/camera/counts_by_video.md).
    assert TUNED.settle > 1 and TUNED.classify_between and TUNED.chase and TUNED.detect_every > 1
    assert TRACKER.count_detected and TRACKER.keep_passes > 1 and IouTracker().keep_passes == TRACKER.keep_passes
    assert TUNED.small_face > 0 and (TRACKER.max_missed_unconfirmed or 0) > TRACKER.max_missed
    assert IouTracker().max_missed_unconfirmed == TRACKER.max_missed_unconfirmed

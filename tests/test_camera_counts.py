"""Run's defaults count per window at least as well as detecting and classifying every frame, on
short generated videos of the three kinds (scripts/camera_scenarios.py: brief visits, people
walking and crossing, long stays), with YuNet and the shipped INT8 model; and they detect less."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from test_camera_helpers import YUNET_NAME, real_faces

from fer_edge.camera.options import TRACKER, TUNED, LoopOptions

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import bench_camera_counts as bench  # noqa: E402
import camera_scenarios as scenarios  # noqa: E402
import count_scoring  # noqa: E402

MODEL = REPO / "fer_edge" / "weights" / "fer2013.int8.cpu.onnx"


def test_truth_counts_a_person_once_confirmed_and_not_when_hidden() -> None:
    import numpy as np

    labels = np.arange(20) % 7
    one = scenarios.Scenario("t", 10.0, 1.0, 30, [scenarios.Person(1, 0, 3), scenarios.Person(2, 1, 4)])
    for i in range(8, 14):  # in view on frames 8-13: confirmed on frame 10, so windows 1 only
        one.people[0].path[i] = (100, 100, 60)
    for i in range(0, 30):  # the second hides behind a larger face for all of window 2
        one.people[1].path[i] = (300, 100, 60)
    one.people.append(scenarios.Person(3, 2, 5, {i: (290, 90, 90) for i in range(20, 30)}))
    assert one.truth() == [[2], [1, 2], [3]]
    assert one.labels_of([1, 3]) == [3, 5]
    brief = scenarios.brief(labels, windows=3, seed=1)
    assert brief.n_frames == 90 and all(1 <= len(w) <= 3 for w in brief.truth())
    walking = scenarios.walking(labels, seconds=20, seed=1)
    sides = {s for p in walking.people for (_, _, s) in p.path.values()}
    assert min(sides) >= 44 and max(sides) <= 72
    assert any(x < 0 for p in walking.people for (x, _, _) in p.path.values())  # they walk in at the edges


def flush_to_window_end(scenario: scenarios.Scenario) -> scenarios.Scenario:
    """Each brief visit moved to end on its window's last frame: a face the tracker carries on
    until the next detector pass would then be counted in the next window too."""
    per = scenario.window_frames
    for person in scenario.people:
        frames = sorted(person.path)
        shift = (frames[0] // per + 1) * per - 1 - frames[-1]
        person.path = {f + shift: where for f, where in person.path.items()}
    return scenario


def run_configs(tmp_path: Path, shared_data: Path, real_slice_csv: Path, kind: str, seconds: float,
                seed: int) -> dict[str, dict[str, Any]]:
    from fer_edge.camera.detection import make_detector
    from fer_edge.runtime.classifier import load_backend

    yunet = shared_data / YUNET_NAME
    if not yunet.exists():
        pytest.skip(f"{YUNET_NAME} not present in {shared_data}")
    images, labels = real_faces(real_slice_csv, 300)
    scenario = scenarios.make(kind.split("-")[0], labels, seconds, seed=seed)
    if kind == "brief-flush":
        scenario = flush_to_window_end(scenario)
    video = scenario.write(tmp_path / f"{kind}.avi", images)
    truth, in_view = scenario.truth(), scenario.in_view()
    configs = [
        bench.Config("every frame", LoopOptions(), bench.OLD_TRACKER),
        bench.Config("last round", bench.LAST_ROUND, bench.LAST_ROUND_TRACKER),
        bench.Config("defaults", TUNED, asdict(TRACKER)),
    ]
    out = {}
    with load_backend(MODEL, device="cpu") as backend:
        detector = make_detector(yunet, device="cpu")
        for i, config in enumerate(configs):
            played = bench.play(video, config, detector, backend, scenario.window_s, tmp_path, i)
            stats = played["stats"]
            out[config.name] = {
                **count_scoring.score(stats.windows, truth, scenario, tuple(backend.labels)),
                "per_window": [w.faces for w in stats.windows],
                "switches": count_scoring.identity_switches(count_scoring.matches(played["recorded"], in_view)),
                "detector_runs": stats.total.detector_runs,
            }
    return out


@pytest.mark.parametrize(
    "kind, seconds, seed", [("brief", 6.0, 0), ("brief-flush", 6.0, 0), ("walking", 8.0, 2), ("long", 8.0, 0)]
)
def test_defaults_count_as_well_as_every_frame(
    tmp_path: Path, shared_data: Path, real_slice_csv: Path, kind: str, seconds: float, seed: int
) -> None:
    rows = run_configs(tmp_path, shared_data, real_slice_csv, kind, seconds, seed)
    every, ours = rows["every frame"], rows["defaults"]
    assert ours["true_faces"] > 0 and ours["windows_logged"] == ours["windows"]
    assert ours["count_error"] <= every["count_error"]
    assert ours["right_emotion"] >= every["right_emotion"]
    assert ours["switches"] <= every["switches"]
    # ... and it detects less (walkers' small faces are looked for on every frame while in view).
    share = 1.0 if kind == "walking" else 0.6
    assert ours["detector_runs"] < share * every["detector_runs"]


def test_the_last_rounds_defaults_counted_a_face_that_left_twice(
    tmp_path: Path, shared_data: Path, real_slice_csv: Path
) -> None:
    rows = run_configs(tmp_path, shared_data, real_slice_csv, "brief-flush", 6.0, 0)
    assert rows["last round"]["counted_faces"] > rows["every frame"]["counted_faces"]
    assert rows["defaults"]["per_window"] == rows["every frame"]["per_window"]

"""How well a camera run counted, against the scenario's truth (scripts/camera_scenarios.py): window
totals and right emotions (:func:`score`), and, through which person each track followed,
identity switches, missed and extra people (:func:`matches`, :func:`identity_switches`,
:func:`followed`). Used by scripts/bench_camera_counts.py and tests/test_camera_counts.py."""

from __future__ import annotations

from typing import Any

import camera_scenarios as scenarios
import numpy as np

from fer_edge.camera.tracking import Track, iou_matrix


class TrackRecorder:
    """A frame sink that keeps each frame's visible tracks (id, box), for identity switches."""

    def __init__(self) -> None:
        self.frames: list[list[tuple[int, np.ndarray]]] = []

    def show(self, frame: np.ndarray, tracks: list[Track], labels: tuple[str, ...]) -> bool:
        self.frames.append([(t.id, t.box.copy()) for t in tracks])
        return True


def matches(recorded: list[list[tuple[int, np.ndarray]]], in_view: list[dict[int, tuple[int, int, int, int]]]
            ) -> list[list[tuple[int, int]]]:
    """Per frame: (person id, track id) pairs of the people in view and the visible tracks (IoU >= 0.3,
    best pairs first)."""
    out: list[list[tuple[int, int]]] = []
    for tracks, people in zip(recorded, in_view):
        pairs: list[tuple[int, int]] = []
        if tracks and people:
            pids = list(people)
            ious = iou_matrix(np.array([people[p] for p in pids], np.float64), np.stack([b for _, b in tracks]))
            used_p: set[int] = set()
            used_t: set[int] = set()
            for flat in np.argsort(-ious, axis=None):
                pi, ti = (int(v) for v in np.unravel_index(flat, ious.shape))
                if ious[pi, ti] < 0.3:
                    break
                if pi in used_p or ti in used_t:
                    continue
                used_p.add(pi)
                used_t.add(ti)
                pairs.append((pids[pi], tracks[ti][0]))
        out.append(pairs)
    return out


def identity_switches(pairs: list[list[tuple[int, int]]]) -> int:
    """Times a person in view was matched to another track than before."""
    last: dict[int, int] = {}
    switches = 0
    for frame in pairs:
        for pid, tid in frame:
            if pid in last and last[pid] != tid:
                switches += 1
            last[pid] = tid
    return switches


def followed(pairs: list[list[tuple[int, int]]], counted: list[list[tuple[int, int]]],
             truth: list[list[int]], scenario: scenarios.Scenario) -> dict[str, int]:
    """Over the windows, through which person each counted track followed (most frames): true people
    no counted track followed (missed); counted tracks beyond one per person followed (extra: a
    person counted twice after an identity switch, or a false face); people followed by a counted
    track with their true emotion (right). Unlike the window's totals, an extra count cannot make
    up for a missed person here."""
    votes: dict[int, dict[int, int]] = {}
    for frame in pairs:
        for pid, tid in frame:
            votes.setdefault(tid, {}).setdefault(pid, 0)
            votes[tid][pid] += 1
    owner = {tid: max(v, key=lambda pid: v[pid]) for tid, v in votes.items()}
    label = {p.id: p.label for p in scenario.people}
    missed = extra = right = 0
    for tracks, people in zip(counted, truth):
        covered = {owner[t] for t, _ in tracks if t in owner} & set(people)
        missed += len(set(people) - covered)
        extra += len(tracks) - len(covered)
        right += len({owner[t] for t, emotion in tracks if t in owner and owner[t] in covered
                      and emotion == label[owner[t]]})
    return {"missed": missed, "extra": extra, "right_followed": right}


def score(windows: list[Any], truth: list[list[int]], scenario: scenarios.Scenario,
          names: tuple[str, ...]) -> dict[str, Any]:
    true_total = sum(len(t) for t in truth)
    counted = right = error = 0
    for w, ids in zip(windows, truth):
        true = scenario.labels_of(ids)
        counted += w.faces
        error += abs(w.faces - len(true))
        right += sum(min(w.counts.get(names[k], 0), true.count(k)) for k in set(true))
    return {
        "true_faces": true_total,
        "counted_faces": counted,
        "count_error": round(error / max(true_total, 1), 4),
        "right_emotion": round(right / max(true_total, 1), 4),
        "windows": len(truth),
        "windows_logged": len(windows),
    }

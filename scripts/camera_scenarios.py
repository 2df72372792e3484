"""Test videos of three kinds, with the truth per mood-log window (which people were in view, and
their true emotion), to measure the camera loop's counts (scripts/bench_camera_counts.py, tests).

Real FER2013 faces (the caller's images and labels) are pasted into a fixed background:

- ``brief``: groups of 1-3 faces (130-170 px) in view for about one second (15 frames at 15 fps),
  drifting slowly, between empty frames; one group per 2 s window.
- ``walking``: people walking across a 640x480 frame (faces 44-72 px, 3-6 px a frame), entering
  and leaving at the sides, two or three at a time crossing each other (the nearer, larger face
  hides the farther one); 4 s windows.
- ``long``: faces that stay 6-20 s (110-170 px, drifting), up to three at a time, coming and
  going at random; 4 s windows.

The truth follows what the mood log can know: a person is in view on a frame when at least
``VISIBLE`` of their face is inside the frame and not hidden by another face, and counts in a
window when in view on one of its frames and in view on at least ``CONFIRM`` frames by then (a
track needs a few detections before it counts: one glimpse of a face is not a person).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
from scenes import background, paste_face

from fer_edge.core.optional import import_cv2

VISIBLE = 0.75  # share of the face square in the frame and unhidden for the person to be in view
CONFIRM = 3  # frames in view before a person counts (the tracker's min_hits at one detection a frame)
KINDS = ("brief", "walking", "long")


@dataclass
class Person:
    id: int
    face: int  # index into the images
    label: int  # true emotion (class index)
    path: Dict[int, Tuple[int, int, int]] = field(default_factory=dict)  # frame -> (x, y, side)


@dataclass
class Scenario:
    kind: str
    fps: float
    window_s: float
    n_frames: int
    people: List[Person]
    width: int = 640
    height: int = 480
    seed: int = 0

    @property
    def window_frames(self) -> int:
        return int(round(self.window_s * self.fps))

    def frames(self, images: np.ndarray) -> Iterator[np.ndarray]:
        """The video's frames (BGR). Smaller (farther) faces are pasted first: nearer ones hide them."""
        bg = background(self.width, self.height, np.random.default_rng(self.seed + 7919))
        for i in range(self.n_frames):
            frame = bg.copy()
            for person, (x, y, side) in self._layers(i):
                paste_face(frame, images[person.face], x, y, side)
            yield frame

    def _layers(self, i: int) -> list[tuple[Person, tuple[int, int, int]]]:
        here = [(p, p.path[i]) for p in self.people if i in p.path]
        return sorted(here, key=lambda pb: (pb[1][2], pb[0].id))

    def in_view(self) -> list[dict[int, tuple[int, int, int, int]]]:
        """Per frame: the box ``(x, y, w, h)`` of each person in view, by person id."""
        out: list[dict[int, tuple[int, int, int, int]]] = []
        owner = np.zeros((self.height, self.width), np.int32)
        for i in range(self.n_frames):
            layers = self._layers(i)
            owner[:] = 0
            for person, (x, y, side) in layers:
                owner[max(y, 0) : max(y + side, 0), max(x, 0) : max(x + side, 0)] = person.id
            seen = {}
            for person, (x, y, side) in layers:
                shown = int(np.count_nonzero(owner[max(y, 0) : max(y + side, 0), max(x, 0) : max(x + side, 0)]
                                             == person.id))
                if shown >= VISIBLE * side * side:
                    seen[person.id] = (x, y, side, side)
            out.append(seen)
        return out

    def truth(self) -> list[list[int]]:
        """Per window: the person ids that count in it (see the module's docstring)."""
        views = self.in_view()
        frames_seen: dict[int, int] = {}
        windows: list[list[int]] = []
        per = self.window_frames
        for start in range(0, self.n_frames, per):
            counted: set[int] = set()
            for i in range(start, min(start + per, self.n_frames)):
                for pid in views[i]:
                    frames_seen[pid] = frames_seen.get(pid, 0) + 1
                    if frames_seen[pid] >= CONFIRM:
                        counted.add(pid)
            windows.append(sorted(counted))
        return windows

    def labels_of(self, ids: list[int]) -> list[int]:
        by_id = {p.id: p.label for p in self.people}
        return [by_id[i] for i in ids]

    def write(self, path: Path, images: np.ndarray) -> Path:
        """MJPG .avi at the scenario's fps (as a camera's file would be played by ``fer-edge run``)."""
        cv2 = import_cv2()
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), self.fps, (self.width, self.height))
        if not writer.isOpened():
            raise RuntimeError(f"cannot write {path}")
        for frame in self.frames(images):
            writer.write(frame)
        writer.release()
        return path


class _Faces:
    """Hands out faces in order (each person a different image), wrapping around the set."""

    def __init__(self, labels: np.ndarray, start: int = 0) -> None:
        self.labels, self.next = labels, start

    def take(self) -> tuple[int, int]:
        index = self.next % len(self.labels)
        self.next += 1
        return index, int(self.labels[index])


def _drift(start: int, step: int, i: int, span: int) -> int:
    """Bounce between 0 and ``span``: a face that sways without leaving its place."""
    if span <= 0:
        return 0
    period = 2 * span
    pos = (start + step * i) % period
    return pos if pos < span else period - pos


def brief(labels: np.ndarray, windows: int = 30, seed: int = 0, fps: float = 15.0, face_frames: int = 15,
          window_s: float = 2.0, first_face: int = 0) -> Scenario:
    """Groups of 1-3 faces in view for ``face_frames`` frames, one group inside each window."""
    rng = np.random.default_rng(seed)
    faces = _Faces(labels, first_face)
    per = int(round(window_s * fps))
    people: list[Person] = []
    for w in range(windows):
        n = int(rng.integers(1, 4))
        offset = int(rng.integers(1, max(per - face_frames, 2)))
        slot = 640 // n
        side = min(int(rng.integers(130, 171)), slot - 4)
        for k in range(n):
            index, label = faces.take()
            x0, y0 = int(rng.integers(0, slot - side)), int(rng.integers(0, 480 - side))
            person = Person(len(people) + 1, index, label)
            for t in range(face_frames):
                x = k * slot + _drift(x0, 2, t, slot - side)
                person.path[w * per + offset + t] = (x, _drift(y0, 1, t, 480 - side), side)
            people.append(person)
    return Scenario("brief", fps, window_s, windows * per, people, seed=seed)


def walking(labels: np.ndarray, seconds: float = 60.0, seed: int = 0, fps: float = 15.0,
            window_s: float = 4.0, first_face: int = 0) -> Scenario:
    """Groups of 1-3 people walking across; in a group of 2-3 they go both ways on near lanes, so
    they cross. A new group every 5-9 s (groups may overlap)."""
    rng = np.random.default_rng(seed)
    faces = _Faces(labels, first_face)
    n_frames = int(round(seconds * fps / (window_s * fps))) * int(round(window_s * fps))
    people: list[Person] = []
    start = int(rng.integers(0, int(fps)))
    while start < n_frames:
        n = int(rng.choice([1, 2, 2, 3]))
        lane = int(rng.integers(40, 480 - 72 - 40))
        first_way = 1 if rng.integers(0, 2) else -1
        for k in range(n):
            index, label = faces.take()
            side = int(rng.integers(44, 73))
            speed = float(rng.uniform(3.0, 6.0))
            direction = first_way if k % 2 == 0 else -first_way  # both ways: they cross
            y0 = lane + int(rng.integers(-20, 21))
            climb = float(rng.uniform(-0.4, 0.4))
            x0 = -side if direction > 0 else 640
            begin = start + int(rng.integers(0, int(fps)))  # not quite together: crossings differ
            person = Person(len(people) + 1, index, label)
            t = 0
            while begin + t < n_frames:
                x = int(round(x0 + direction * speed * t))
                if x > 640 or x < -side:
                    break
                y = int(np.clip(round(y0 + climb * t), 0, 480 - side))
                person.path[begin + t] = (x, y, side)
                t += 1
            people.append(person)
        start += int(rng.integers(int(5 * fps), int(9 * fps)))
    return Scenario("walking", fps, window_s, n_frames, people, seed=seed)


def long_stays(labels: np.ndarray, seconds: float = 60.0, seed: int = 0, fps: float = 15.0,
               window_s: float = 4.0, first_face: int = 0) -> Scenario:
    """Three places (columns); each hosts one person at a time for 6-20 s, with 0.5-4 s between."""
    rng = np.random.default_rng(seed)
    faces = _Faces(labels, first_face)
    n_frames = int(round(seconds / window_s)) * int(round(window_s * fps))
    people: list[Person] = []
    slot = 640 // 3
    for column in range(3):
        t = int(rng.integers(0, int(4 * fps)))
        while t < n_frames:
            stay = int(rng.uniform(6, 20) * fps)
            side = min(int(rng.integers(110, 171)), slot - 4)
            index, label = faces.take()
            x0, y0 = int(rng.integers(0, slot - side)), int(rng.integers(0, 480 - side))
            step = int(rng.integers(1, 3))
            person = Person(len(people) + 1, index, label)
            for u in range(min(stay, n_frames - t)):
                x = column * slot + _drift(x0, step, u, slot - side)
                person.path[t + u] = (x, _drift(y0, 1, u // 2, 480 - side), side)
            people.append(person)
            t += stay + int(rng.uniform(0.5, 4.0) * fps)
    people.sort(key=lambda p: min(p.path))
    for i, person in enumerate(people):
        person.id = i + 1
    return Scenario("long", fps, window_s, n_frames, people, seed=seed)


def make(kind: str, labels: np.ndarray, seconds: float = 60.0, seed: int = 0, first_face: int = 0) -> Scenario:
    if kind == "brief":
        return brief(labels, windows=max(int(seconds / 2.0), 1), seed=seed, first_face=first_face)
    if kind == "walking":
        return walking(labels, seconds, seed=seed, first_face=first_face)
    if kind == "long":
        return long_stays(labels, seconds, seed=seed, first_face=first_face)
    raise ValueError(f"unknown video kind {kind!r}; choose from {', '.join(KINDS)}")


def describe(kind: str, seconds: float, seeds: list[int]) -> str:
    """One line on the videos of a kind, for a benchmark's report."""
    what = {
        "brief": "groups of 1-3 faces (130-170 px) in view for 15 frames, drifting 2 px/frame, between empty "
                 "frames; one group per 2 s window",
        "walking": "people walking across (faces 44-72 px, 3-6 px/frame), entering and leaving at the sides, "
                   "groups of 1-3 going both ways on near lanes so they cross; 4 s windows",
        "long": "up to three faces (110-170 px, drifting 1-2 px/frame) staying 6-20 s each, coming and going; "
                "4 s windows",
    }[kind]
    return f"640x480 MJPG at 15 fps, {seconds:g} s per video, seeds {seeds}: {what}"

"""The store camera before and after detect-less/track-more, side by side, on videos of real faces.

Builds 640x480 videos of real FER2013 PrivateTest faces (1-3 at a time, drifting, 1.5 s each,
then 0.5 s of empty frames; one group per 2 s mood-log window) - upright, and tilted by up to
+-20 degrees - and runs every configuration, wired as ``fer-edge run`` wires it, on the same
files, interleaved and repeated (a shared machine's load hits all alike). Accuracy: per window,
the faces whose true emotion the window's counts got right (sum over emotions of min(counted,
true)), over all true faces; and the face-count error. Writes JSON + Markdown to benchmarks/camera/.

    nice python scripts/bench_camera.py --data fer2013.csv.gz \
        --detector-model face_detection_yunet.onnx --model fer_edge/weights/fer2013.int8.onnx
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from scenes import background, moving_faces_frames

from fer_edge.bench.camera import (
    CameraBench,
    CameraConfig,
    camera_markdown,
    camera_report,
    run_camera_bench,
    write_camera_json,
)
from fer_edge.bench.machine import machine_info
from fer_edge.camera.options import TUNED, LoopOptions
from fer_edge.camera.settings import CameraSettings
from fer_edge.core.atomic import write_text_atomic
from fer_edge.core.optional import import_cv2

FPS = 30.0
WINDOW_S = 2.0
FACE_FRAMES, EMPTY_FRAMES = 45, 15  # one group per window


def make_video(path: Path, images: np.ndarray, labels: np.ndarray, groups: int, tilt: float, seed: int
               ) -> list[list[int]]:
    """Write the video; return the true labels of the faces in each window."""
    cv2 = import_cv2()
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (640, 480))
    truth, used = [], 0
    for g in range(groups):
        n = int(rng.integers(1, 4))
        pick = np.arange(used, used + n) % len(images)
        used += n
        tilts = [float(t) for t in rng.uniform(-tilt, tilt, n)] if tilt else None
        side = int(rng.integers(130, 171))
        for frame, _ in moving_faces_frames(images[pick], FACE_FRAMES, 640, 480, side=side, seed=seed * 1000 + g,
                                            tilts=tilts):
            writer.write(frame)
        empty = background(640, 480, rng)
        for _ in range(EMPTY_FRAMES):
            writer.write(empty)
        truth.append([int(labels[i]) for i in pick])
    writer.release()
    return truth


def score(windows: list[dict[str, Any]], truth: list[list[int]], names: tuple[str, ...]) -> dict[str, float]:
    right = count_err = 0
    total = sum(len(t) for t in truth)
    for w, true in zip(windows, truth):
        true_counts = {names[k]: true.count(k) for k in set(true)}
        right += sum(min(w["counts"].get(name, 0), c) for name, c in true_counts.items())
        count_err += abs(w["faces"] - len(true))
    return {"right_emotion": round(right / total, 4), "count_error": round(count_err / total, 4),
            "true_faces": total, "windows": len(truth), "windows_scored": min(len(windows), len(truth))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="fer2013.csv(.gz): real faces with labels")
    ap.add_argument("--detector-model", type=Path, required=True, help="YuNet ONNX")
    ap.add_argument("--groups", type=int, default=24, help="windows (face groups) in the upright video")
    ap.add_argument("--tilt-groups", type=int, default=40, help="windows in the tilted video")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--tilt-repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--variants", action="store_true", help="also the variants that chose the defaults")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/camera"))
    ap.add_argument("--tag", default="")
    args = ap.parse_args()

    from fer_edge.data import load_dataset
    from fer_edge.model.labels import FER2013_LABELS

    test = load_dataset(args.data, dataset="fer2013").split("PrivateTest")
    # Every row: the given classifier on the CPU, YuNet from --detector-model, run's other options.
    base = CameraSettings(model=args.model, device="cpu", threads=args.threads, detector_model=args.detector_model,
                          loop=replace(TUNED, window_s=WINDOW_S))

    def config(name: str, loop: LoopOptions, detector_device: str) -> CameraConfig:
        return CameraConfig(name, replace(base, loop=replace(loop, window_s=WINDOW_S), detector_device=detector_device))

    today = config("today: OpenCV YuNet, every frame, 6 views", LoopOptions(), "opencv")
    tuned = config("new default", TUNED, "cpu")
    aligned = config("new default + --align", replace(TUNED, align=True), "cpu")
    configs = [today, config("ORT YuNet, every frame, 6 views", LoopOptions(), "cpu"), tuned, aligned]
    if args.variants:
        configs += [
            config("new default, 1 view", replace(TUNED, views=1), "cpu"),
            config("new default, detect every 3", replace(TUNED, detect_every=3), "cpu"),
            config("new default, detect every 10", replace(TUNED, detect_every=10), "cpu"),
            config("new default, re-classify every 30", replace(TUNED, reinfer_every=30), "cpu"),
            config("new default, not adaptive", replace(TUNED, adaptive=False), "cpu"),
        ]
    tilt_configs = [today, tuned, aligned]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, groups, tilt, cfgs, repeats in (
            ("upright", args.groups, 0.0, configs, args.repeats),
            ("tilted", args.tilt_groups, 20.0, tilt_configs, args.tilt_repeats),
        ):
            video = Path(tmp) / f"{name}.avi"
            truth = make_video(video, test.images, test.labels, groups, tilt, seed=1 if tilt else 0)
            bench = CameraBench(video, base, repeats=repeats, configs=cfgs)
            rows = run_camera_bench(bench, on_row=lambda r: print(r["config"], r["fps_median"], flush=True))
            for row in rows:
                row["accuracy"] = score(row["windows"], truth, FER2013_LABELS)
                print(name, row["config"], row["fps_median"], row["accuracy"], flush=True)
            report = camera_report(bench, rows, machine_info())
            report["video"] = (f"{name}: 640x480 MJPG at {FPS:g} fps, {groups} groups of 1-3 PrivateTest faces "
                               f"(130-170 px, drifting{', tilted up to +-20 deg' if tilt else ''}), "
                               f"{FACE_FRAMES} frames each + {EMPTY_FRAMES} empty; {WINDOW_S:g} s windows")
            results[name] = report
    stem = "bench_camera_tracking" + (f"_{args.tag}" if args.tag else "")
    combined = {"command": machine_info()["command"], "videos": results}
    write_camera_json(combined, args.out / f"{stem}.json")
    write_text_atomic(args.out / f"{stem}.md", markdown(results))
    print(f"wrote {args.out}/{stem}.json and .md")


def markdown(results: dict[str, dict[str, Any]]) -> str:
    parts = []
    for name, report in results.items():
        table = camera_markdown(report).rstrip("\n").split("\n")
        header_at = next(i for i, line in enumerate(table) if line.startswith("| config"))
        table[header_at] += " right emotion | face-count error |"
        table[header_at + 1] += "---|---|"
        for i, row in enumerate(report["rows"]):
            acc = row["accuracy"]
            table[header_at + 2 + i] += f" {acc['right_emotion']:.1%} | {acc['count_error']:.1%} |"
        parts.append(f"## {name}\n\n" + "\n".join(table[2:]) + "\n")
    return "# Camera pipeline before and after (this CPU, shared)\n\n" + "\n".join(parts)


if __name__ == "__main__":
    main()

"""End-to-end camera benchmark: a 640x480 video with up to three faces through ``run_loop``.

Measures frames/s and per-stage times (capture = video decode, detect, classify = crop + one
batched inference, other = tracking + log) for each detector, on this CPU. Writes JSON + Markdown.

    python scripts/bench_camera.py --data ../shared/data/fer2013.csv.gz \
        --detector-model ../shared/data/face_detection_yunet.onnx --model fer_edge/weights/fer2013.int8.onnx
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fer_edge.atomic import write_text_atomic
from fer_edge.bench.machine import cpu_model  # noqa: E402
from fer_edge.camera.crop import crop_rule_for
from fer_edge.camera.detection import FaceDetector, make_detector
from fer_edge.camera.moodlog import MoodLog
from fer_edge.camera.pipeline import LoopOptions, run_loop
from fer_edge.camera.scenes import moving_faces_frames, write_video
from fer_edge.camera.sources import FrameSource, import_cv2, parse_source
from fer_edge.errors import FerEdgeError


def make_video(path: Path, data: Path | None, frames: int, faces: int) -> None:
    if data is not None:
        from fer_edge.data import load_dataset

        test = load_dataset(data, dataset="fer2013").split("PrivateTest")
        images = test.images[[0, 5, 9, 1, 2][:faces]]
    else:  # generated stand-ins: the timing of detection does not need real faces to be found
        images = np.random.default_rng(0).integers(0, 255, (faces, 48, 48), dtype=np.uint8)
    # Faces come and go: 3 faces for the first half, then 2, then 1 ("up to three faces").
    third = frames // 3
    out = []
    for k, n in ((0, faces), (1, max(faces - 1, 1)), (2, 1)):
        count = third if k < 2 else frames - 2 * third
        out += [f for f, _ in moving_faces_frames(images[:n], count, 640, 480, side=150, seed=k)]
    write_video(path, out, fps=30.0)


def bench_one(
    video: Path, model: Path, detector: FaceDetector, threads: int | None, repeats: int, views: int
) -> dict:  # type: ignore[type-arg]
    from fer_edge.backends import load_backend

    best: dict | None = None  # type: ignore[type-arg]
    with load_backend(model, device="cpu", threads=threads) as backend, tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            log = MoodLog(Path(tmp) / "mood.db", backend.labels)
            with FrameSource(parse_source(str(video))) as src:
                stats = run_loop(
                    src,
                    detector,
                    backend,
                    crop_rule_for(detector.name),
                    log,
                    LoopOptions(window_s=10.0, media_fps=30.0, stats_every_s=1e9, views=views),
                    echo=lambda s: None,
                )
            log.close()
            result = stats.to_dict()
            if best is None or result["timing"]["fps"] > best["timing"]["fps"]:
                best = result
        assert best is not None
        best["backend"] = f"{backend.name} {backend.precision}"
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, help="fer2013.csv(.gz) for real faces (else generated content)")
    ap.add_argument("--detector-model", type=Path, help="YuNet ONNX; Haar is also run where OpenCV has it")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--faces", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/camera"))
    ap.add_argument("--tag", default="", help="suffix of the result files, e.g. opencv4")
    ap.add_argument("--views", type=int, default=6)
    args = ap.parse_args()
    cv2 = import_cv2()

    configs: list[tuple[str, Path | None, int | None]] = []
    if args.detector_model:
        configs += [("yunet", args.detector_model, None), ("yunet", args.detector_model, 320)]
    configs += [("haar", None, None), ("haar", None, 320)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "bench.avi"
        make_video(video, args.data, args.frames, args.faces)
        for name, det_model, width in configs:
            try:
                detector = make_detector(det_model, min_face=40, detect_width=width)
            except FerEdgeError as exc:
                rows.append({"detector": name, "detect_width": width, "skipped": str(exc)})
                print(f"{name}: skipped ({exc})")
                continue
            r = bench_one(video, args.model, detector, args.threads, args.repeats, args.views)
            r.update({"detector": name, "detect_width": width or 640})
            rows.append(r)
            t = r["timing"]
            print(
                f"{name} detect@{width or 640}: {t['fps']:.1f} fps, {t['mean_ms']}, "
                f"{t['faces'] / t['frames']:.2f} faces/frame"
            )
    import onnxruntime

    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "processor": cpu_model(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "opencv": cv2.__version__,
            "onnxruntime": onnxruntime.__version__,
            "load_avg_at_end": os.getloadavg(),
        },
        "video": {
            "size": [640, 480],
            "frames": args.frames,
            "faces": f"up to {args.faces}",
            "content": "FER2013 PrivateTest faces" if args.data else "generated",
        },
        "model": args.model.name,
        "views": args.views,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "rows": rows,
    }
    stem = "bench_camera" + (f"_{args.tag}" if args.tag else "")
    write_text_atomic(args.out / f"{stem}.json", json.dumps(result, indent=2) + "\n")
    write_text_atomic(args.out / f"{stem}.md", markdown(result))
    print(f"wrote {args.out}/{stem}.json and .md")


def markdown(r: dict) -> str:  # type: ignore[type-arg]
    lines = [
        "# Camera pipeline, end to end (this CPU)",
        "",
        f"Command: `{r['command']}`",
        "",
        f"Machine: {r['machine']}",
        "",
        f"Video: {r['video']}; model {r['model']}, {r['views']} views per face in rotation (one crop per "
        f"face per frame); {r['when']}",
        "",
        "| detector | detect at | fps | capture ms | detect ms | classify ms | other ms | faces/frame | "
        "detect share |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        if "skipped" in row:
            lines.append(
                f"| {row['detector']} | {row['detect_width'] or 640} | skipped: {row['skipped']} "
                "| | | | | | |"
            )
            continue
        t, m = row["timing"], row["timing"]["mean_ms"]
        total = sum(m.values())
        lines.append(
            f"| {row['detector']} | {row['detect_width']} px | {t['fps']:.1f} | {m['capture']:.2f} | "
            f"{m['detect']:.2f} | {m['classify']:.2f} | {m['other']:.2f} | "
            f"{t['faces'] / t['frames']:.2f} | {m['detect'] / total:.0%} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

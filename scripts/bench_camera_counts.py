"""Per-window counts of the camera loop against the truth, on three kinds of video, for the old
loop (detect and classify every frame), the last round's defaults and today's defaults.

Each configuration plays the same files through ``run_loop`` as ``fer-edge run`` plays a file
(OpenCV decode, YuNet on ONNX Runtime, the tracker, crop + classify, a SQLite mood log), with the
kinds and configurations interleaved and repeated. Per kind and configuration it reports:
people counted against the truth (per-window count error: sum of |counted - true| over windows,
over the true faces), faces counted with the right emotion (sum over windows and emotions of
min(counted, true), over the true faces), identity switches (a person in view matched to another
track than before) and frames/s. The videos and their truth come from scripts/camera_scenarios.py.

    nice -n 19 python scripts/bench_camera_counts.py --data fer2013.csv.gz \
        --detector-model face_detection_yunet.onnx \
        --model fer_edge/weights/fer2013.int8.cpu.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import camera_scenarios as scenarios  # noqa: E402
from count_scoring import TrackRecorder, followed, identity_switches, matches, score  # noqa: E402

from fer_edge.bench.machine import machine_info  # noqa: E402
from fer_edge.camera.detection import Detections  # noqa: E402
from fer_edge.camera.options import TRACKER, TUNED, LoopOptions  # noqa: E402
from fer_edge.camera.tracking import IouTracker, Track  # noqa: E402
from fer_edge.core.atomic import write_text_atomic  # noqa: E402

# The last round's defaults, frozen here so they stay comparable after the defaults change.
LAST_ROUND = LoopOptions(detect_every=5, adaptive=True, reinfer_every=10, reinfer_iou=0.5, settle=0,
                         classify_between=False, chase=False)
LAST_ROUND_TRACKER: Dict[str, Any] = {"max_missed": 10, "min_hits": 3, "keep_passes": 1, "count_detected": False,
                                      "max_missed_unconfirmed": None}
OLD_TRACKER: Dict[str, Any] = dict(LAST_ROUND_TRACKER)


@dataclass
class Config:
    name: str
    options: LoopOptions
    tracker: Dict[str, Any] = field(default_factory=dict)


def standard_configs() -> list[Config]:
    return [
        Config("every frame (old)", LoopOptions(), OLD_TRACKER),
        Config("last round's defaults", LAST_ROUND, LAST_ROUND_TRACKER),
        Config("new defaults", TUNED, asdict(TRACKER)),
    ]


class CachedDetector:
    """The detector, remembering its answer per frame content (the loop's counts do not depend on
    how long a detection took, so tuning runs can replay them; the fps then mean nothing)."""

    def __init__(self, detector: Any, cache: dict[bytes, Detections]) -> None:
        self.detector, self.cache = detector, cache
        self.name = detector.name
        self.backend = getattr(detector, "backend", "opencv")

    def detect(self, frame: np.ndarray) -> Detections:
        key = hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16).digest()
        if key not in self.cache:
            self.cache[key] = self.detector.detect(frame)
        return self.cache[key]


class CountingClassifier:
    """The classifier, counting the faces it was given."""

    def __init__(self, backend: Any) -> None:
        self.backend, self.labels, self.faces = backend, backend.labels, 0

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.faces += len(batch)
        return self.backend.infer(batch)


class RecordingLog:
    """The mood log, keeping the ids of the tracks counted in each window."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.counted: list[list[tuple[int, int]]] = []  # per window: (track id, emotion counted)

    @property
    def windows_written(self) -> int:
        return int(self.log.windows_written)

    @property
    def waiting(self) -> int:
        return int(self.log.waiting)

    def write_window(self, summary: Any, tracks: list[Track]) -> object:
        self.counted.append([(t.id, int(np.argmax(t.window_sum))) for t in tracks])
        return self.log.write_window(summary, tracks)

    def poll(self) -> None:
        self.log.poll()


def play(video: Path, config: Config, detector: Any, backend: Any, window_s: float, tmp: Path,
         index: int) -> dict[str, Any]:
    """One pass of the video through ``run_loop``, as ``fer-edge run`` plays a file."""
    from fer_edge.camera.crop import crop_rule_for
    from fer_edge.camera.pipeline import run_loop
    from fer_edge.camera.sources import FrameSource, parse_source
    from fer_edge.moodlog.writer import MoodLog

    classifier = CountingClassifier(backend)
    recorder = TrackRecorder()
    log = MoodLog(tmp / f"mood{index}.db", backend.labels)
    recording = RecordingLog(log)
    try:
        with FrameSource(parse_source(str(video))) as frames:
            options = replace(config.options, window_s=window_s, media_fps=frames.fps or 15.0, stats_every_s=1e9)
            stats = run_loop(frames, detector, classifier, crop_rule_for(detector.name), recording, options,
                             echo=lambda s: None, sinks=[recorder], tracker=IouTracker(**config.tracker))
    finally:
        log.close()
    return {"stats": stats, "recorded": recorder.frames, "classified": classifier.faces,
            "counted": recording.counted}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="fer2013.csv(.gz): real faces with labels")
    ap.add_argument("--detector-model", type=Path, required=True, help="YuNet ONNX")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each video")
    ap.add_argument("--kinds", default=",".join(scenarios.KINDS))
    ap.add_argument("--seeds", default="0", help="comma-separated: one video per kind and seed")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--config", action="append", default=[], metavar="NAME=JSON",
                    help='an extra configuration: {"loop": {...LoopOptions}, "tracker": {...IouTracker}} '
                         "over the new defaults")
    ap.add_argument("--only-extra", action="store_true", help="only the --config ones (and the old loop)")
    ap.add_argument("--replay-detections", action="store_true",
                    help="detect each frame once and replay (counts exact, fps meaningless): for tuning")
    ap.add_argument("--out", type=Path, default=None, help="write <out>.json and <out>.md")
    args = ap.parse_args()

    from fer_edge.camera.detection import make_detector
    from fer_edge.data import load_dataset
    from fer_edge.runtime.classifier import load_backend

    test = load_dataset(args.data, dataset="fer2013").split("PrivateTest")
    configs = standard_configs()
    if args.only_extra:
        configs = configs[:1]
    for spec in args.config:
        name, _, text = spec.partition("=")
        extra = json.loads(text)
        configs.append(Config(name, replace(TUNED, **extra.get("loop", {})),
                              {**asdict(TRACKER), **extra.get("tracker", {})}))
    kinds = [k for k in args.kinds.split(",") if k]
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="fer-edge-counts-") as tmp_name, \
            load_backend(args.model, device="cpu", threads=args.threads) as backend:
        tmp = Path(tmp_name)
        videos = []
        for k, kind in enumerate(kinds):
            for seed in seeds:
                scenario = scenarios.make(kind, test.labels, args.seconds, seed=seed, first_face=1000 * k + 97 * seed)
                path = scenario.write(tmp / f"{kind}{seed}.avi", test.images)
                videos.append((kind, seed, scenario, path, scenario.truth(), scenario.in_view()))
        detector = make_detector(args.detector_model, device="cpu", threads=args.threads)
        cache: dict[bytes, Detections] = {}
        if args.replay_detections:
            detector = CachedDetector(detector, cache)
        runs = 0
        for repeat in range(args.repeats):
            for kind, seed, scenario, path, truth, in_view in videos:
                for step in range(len(configs)):
                    config = configs[(step + repeat + seed) % len(configs)]  # rotate: drifting load hits all
                    out = play(path, config, detector, backend, scenario.window_s, tmp, runs)
                    runs += 1
                    stats = out["stats"]
                    pairs = matches(out["recorded"], in_view)
                    row = {
                        "seed": seed,
                        "repeat": repeat,
                        **score(stats.windows, truth, scenario, tuple(backend.labels)),
                        **followed(pairs, out["counted"], truth, scenario),
                        "identity_switches": identity_switches(pairs),
                        "people": len(scenario.people),
                        "frames": stats.total.frames,
                        "fps": round(stats.total.fps, 2),
                        "detector_runs": stats.total.detector_runs,
                        "classified_faces": out["classified"],
                    }
                    results.setdefault(kind, {}).setdefault(config.name, []).append(row)
                    print(kind, seed, repeat, config.name, json.dumps({k: v for k, v in row.items()
                                                                       if k not in ("seed", "repeat")}), flush=True)
    summary = summarize(results, configs, kinds)
    print(markdown_table(summary))
    if args.out is not None:
        machine = machine_info()
        from fer_edge.core.optional import import_cv2

        machine["opencv"] = import_cv2().__version__
        report = {
            "command": machine["command"],
            "machine": machine,
            "model": str(args.model),
            "detector_model": str(args.detector_model),
            "replayed_detections": args.replay_detections,
            "videos": {kind: scenarios.describe(kind, args.seconds, seeds) for kind in kinds},
            "configs": {c.name: {"loop": {k: v for k, v in asdict(c.options).items()
                                          if k not in ("window_s", "max_frames", "stats_every_s", "media_fps")},
                                 "tracker": c.tracker} for c in configs},
            "summary": summary,
            "runs": results,
        }
        write_text_atomic(args.out.with_suffix(".json"), json.dumps(report, indent=2) + "\n")
        write_text_atomic(args.out.with_suffix(".md"), report_markdown(report))
        print(f"wrote {args.out.with_suffix('.json')} and .md")


def summarize(results: dict[str, dict[str, list[dict[str, Any]]]], configs: list[Config], kinds: list[str]
              ) -> Dict[str, List[Dict[str, Any]]]:
    """Per kind and configuration: counts summed over the videos (of the first repeat: counts do
    not depend on load), fps as the median over the repeats of frames / seconds."""
    out: Dict[str, List[Dict[str, Any]]] = {}
    for kind in kinds:
        rows = []
        for config in configs:
            runs = results.get(kind, {}).get(config.name, [])
            first = [r for r in runs if r["repeat"] == 0]
            if not first:
                continue
            true = sum(r["true_faces"] for r in first)
            rows.append({
                "config": config.name,
                "true_faces": true,
                "counted_faces": sum(r["counted_faces"] for r in first),
                "count_error": round(sum(r["count_error"] * r["true_faces"] for r in first) / true, 4),
                "right_emotion": round(sum(r["right_emotion"] * r["true_faces"] for r in first) / true, 4),
                "missed": sum(r["missed"] for r in first),
                "extra": sum(r["extra"] for r in first),
                "count_errors": round(sum(r["missed"] + r["extra"] for r in first) / true, 4),
                "right_followed": round(sum(r["right_followed"] for r in first) / true, 4),
                "identity_switches": sum(r["identity_switches"] for r in first),
                "fps": round(statistics.median(r["fps"] for r in runs), 2),
                "detector_share": round(sum(r["detector_runs"] for r in first) / sum(r["frames"] for r in first), 3),
                "classified_per_frame": round(sum(r["classified_faces"] for r in first)
                                              / sum(r["frames"] for r in first), 3),
                "counts_same_every_repeat": len({(r["seed"], r["counted_faces"], r["right_emotion"]) for r in runs})
                == len(first),
            })
        out[kind] = rows
    return out


HEADER = ("| video | configuration | people counted / true | count error | right emotion | missed / extra "
          "| missed + extra | right emotion, per person | identity switches | fps | detector on "
          "| faces classified / frame |")


def markdown_table(summary: Dict[str, List[Dict[str, Any]]]) -> str:
    lines = [HEADER, "|" + "---|" * 12]
    for kind, rows in summary.items():
        for r in rows:
            lines.append(
                f"| {kind} | {r['config']} | {r['counted_faces']} / {r['true_faces']} | {r['count_error']:.1%} | "
                f"{r['right_emotion']:.1%} | {r['missed']} / {r['extra']} | {r['count_errors']:.1%} | "
                f"{r['right_followed']:.1%} | {r['identity_switches']} | "
                f"{r['fps']:.1f} | "
                f"{r['detector_share']:.0%} | {r['classified_per_frame']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def report_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    flags = " ".join(m.get("cpu_flags") or [])
    parts = [
        "# Camera counts by kind of video: every frame, the last round's defaults, the new defaults",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Machine: {m.get('cpu')} ({m.get('cores')} cores, shared; run under `nice -n 19`), flags: {flags}; "
        f"load average {m.get('load_average')}; Python {m.get('python')}, packages {m.get('packages')}, "
        f"OpenCV {m.get('opencv')}",
        "",
        f"Classifier {report['model']} (ONNX Runtime CPU), detector {report['detector_model']} (YuNet on ONNX "
        "Runtime CPU). fps: indicative only (a shared machine; compare within this run)."
        + (" Detections were replayed: fps are meaningless here." if report["replayed_detections"] else ""),
        "",
        "Videos:",
        "",
        *(f"- {kind}: {text}" for kind, text in report["videos"].items()),
        "",
        "Count error: sum over windows of |counted - true| over the true faces. Right emotion: sum over "
        "windows and emotions of min(counted, true) over the true faces. Each counted track is tied to the "
        "person it followed on most frames (IoU >= 0.3): missed = true people in a window that no counted "
        "track followed; extra = counted tracks beyond one per person followed (a person counted twice "
        "after an identity switch, or a false face); missed + extra over the true faces; right emotion, "
        "per person = people followed by a counted track with their true emotion, over the true faces "
        "(an extra count cannot make up for a missed person there, as it can in the window totals). "
        "Identity switches: a person in view matched to another track than before.",
        "",
        markdown_table(report["summary"]),
        "Configurations:",
        "",
        *(f"- {name}: `{json.dumps(c)}`" for name, c in report["configs"].items()),
        "",
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    main()

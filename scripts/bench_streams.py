"""How many cameras one process serves, and what one process saves over a process per camera.

1. ``bench --camera VIDEO --streams auto`` in-process: copies of a 640x480 30-fps video of real
   FER2013 PrivateTest faces (scripts/bench_camera.py's) played as live cameras, the largest N
   sustained (at most 1 % dropped on any stream, counts intact).
2. Side by side on the same N copies, each as fast as it goes (no --realtime): one ``fer-edge run``
   serving N cameras, then N separate ``fer-edge run`` processes at once; aggregate frames/s (all
   frames over the wall time) and RSS while serving (the one process; the N processes summed).

Writes benchmarks/camera/streams.json and .md.

    python scripts/bench_streams.py --data fer2013.csv.gz \
        --detector-model face_detection_yunet.onnx --model fer_edge/weights/fer2013.int8.onnx
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_camera import FPS, make_video  # noqa: E402

from fer_edge.bench.machine import machine_info  # noqa: E402
from fer_edge.bench.streams import find_capacity, quotable, streams_markdown, streams_report  # noqa: E402
from fer_edge.camera.options import TUNED  # noqa: E402
from fer_edge.camera.settings import CameraSettings  # noqa: E402
from fer_edge.core.atomic import write_text_atomic  # noqa: E402
from fer_edge.core.markdown import markdown_table  # noqa: E402


def vm_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's ended children so far: a command's is the
    difference across it."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_processes(commands: List[List[str]]) -> Dict[str, Any]:
    """Run the commands at once; wall seconds, CPU seconds (all of them, model loading included) and
    each one's RSS while serving (its last sample, every 0.2 s: the cameras running, model loading's
    transient peak apart), MiB."""
    cpu_before = children_cpu_s()
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in commands]
    serving = [0.0] * len(procs)
    while any(p.poll() is None for p in procs):
        time.sleep(0.2)
        serving = [(vm_rss_mib(p.pid) or s) if p.poll() is None else s for s, p in zip(serving, procs)]
    for p, command in zip(procs, commands):
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {p.stderr.read() if p.stderr else ''}")
    seconds = time.perf_counter() - t0
    cpu = children_cpu_s() - cpu_before
    return {"seconds": seconds, "cpu_s": round(cpu, 2), "rss_mib": [round(r, 1) for r in serving]}


def side_by_side(video: Path, frames: int, n: int, common: List[str], tmp: Path) -> Dict[str, Any]:
    """One ``fer-edge run`` serving n copies against n separate ones as a user starts them (one
    thread per inference call, run's default) and with ``--threads <cores>`` (ONNX Runtime's own
    default, a spinning thread per core: what run did before)."""
    fer_edge = [sys.executable, "-m", "fer_edge", "run"]
    sources = [arg for i in range(n) for arg in ("--source", f"cam{i}={video}")] if n > 1 else ["--source", str(video)]
    one = run_processes([[*fer_edge, *sources, "--log", str(tmp / f"one{n}.db"), *common]])
    row: Dict[str, Any] = {"streams": n}
    one_fps = n * frames / one["seconds"]
    row["one_process"] = {"seconds": round(one["seconds"], 2), "aggregate_fps": round(one_fps, 1),
                          "cpu_s": one["cpu_s"], "rss_mib": one["rss_mib"][0]}
    all_cores = ["--threads", str(os.cpu_count() or 1)]
    for key, extra in (("separate_processes", []), ("separate_processes_all_cores", all_cores)):
        many = run_processes([[*fer_edge, "--source", str(video), "--log", str(tmp / f"{key}{n}_{i}.db"), *common,
                               *extra] for i in range(n)])
        many_fps = n * frames / many["seconds"]
        row[key] = {"seconds": round(many["seconds"], 2), "aggregate_fps": round(many_fps, 1),
                    "cpu_s": many["cpu_s"], "rss_mib_each": many["rss_mib"], "rss_mib": round(sum(many["rss_mib"]), 1),
                    "speedup": round(one_fps / many_fps, 2)}
    row["speedup"] = row["separate_processes"]["speedup"]
    return row


def live_cpu(video: Path, common: List[str], tmp: Path, frames: int = 900) -> Dict[str, Any]:
    """CPU seconds of one ``fer-edge run --realtime`` camera (the video played at its fps, as a live
    camera delivers it) over ``frames`` frames: run's default against a thread per core."""
    out: Dict[str, Any] = {"frames": frames}
    all_cores = ["--threads", str(os.cpu_count() or 1)]
    for key, extra in (("default", []), ("all_cores", all_cores)):
        cpu_before = children_cpu_s()
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fer_edge", "run", "--source", str(video), "--realtime", "--max-frames",
                        str(frames), "--log", str(tmp / f"live_{key}.db"), *common, *extra],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu = children_cpu_s() - cpu_before
        wall = time.perf_counter() - t0
        out[key] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "cores_busy": round(cpu / wall, 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--detector-model", type=Path, required=True)
    ap.add_argument("--groups", type=int, default=15, help="2-s face groups in the video (its length / 2 s)")
    ap.add_argument("--most-streams", type=int, default=8,
                    help="stop the auto search here (each trial plays the whole video in real time)")
    ap.add_argument("--side-by-side", default="2,3", help="stream counts for the one-vs-many comparison")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/camera"))
    args = ap.parse_args()

    from fer_edge.data import load_dataset

    load_before = [round(v, 2) for v in os.getloadavg()]  # a shared machine: say how busy it was before
    test = load_dataset(args.data, dataset="fer2013").split("PrivateTest")
    settings = CameraSettings(model=args.model, device="cpu", detector_model=args.detector_model,
                              detector_device="cpu", loop=replace(TUNED, window_s=2.0))
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        video = tmp / "store.avi"
        make_video(video, test.images, test.labels, args.groups, 0.0, seed=0)
        frames = args.groups * 60
        trials, sustained, best = find_capacity(
            video, settings, None, most=args.most_streams,
            on_trial=lambda t, ok: print(f"{t.streams} streams: worst dropped {t.worst_dropped:.2%}, "
                                         f"{'sustained' if ok else 'not sustained'}", flush=True))
        line = quotable(best, 640, 480, FPS)
        print(line, flush=True)
        report = streams_report(video, settings, trials, sustained, best, line, machine_info())
        report["machine"]["load_average_before"] = load_before
        common = ["--model", str(args.model), "--detector-model", str(args.detector_model), "--detector-device",
                  "cpu", "--device", "cpu", "--window", "2", "--stats-every", "1000"]
        report["live_one_camera"] = live_cpu(video, common, tmp)
        print(json.dumps(report["live_one_camera"]), flush=True)
        report["side_by_side"] = []
        for n in (int(v) for v in args.side_by_side.split(",")):
            row = side_by_side(video, frames, n, common, tmp)
            print(json.dumps(row), flush=True)
            report["side_by_side"].append(row)
    report["video"] = (f"640x480 MJPG at {FPS:g} fps, {args.groups} groups of 1-3 PrivateTest faces (130-170 px, "
                       "drifting), 45 frames each + 15 empty (scripts/bench_camera.py)")
    write_report(report, args.out)
    print(f"wrote {args.out}/streams.json and .md")


def write_report(report: Dict[str, Any], out: Path) -> None:
    write_text_atomic(out / "streams.json", json.dumps(report, indent=2) + "\n")
    md = streams_markdown(report).replace(
        "\nVideo ", f"\nLoad average before the run: {report['machine'].get('load_average_before')} (a shared "
        "machine: other processes' load shows up as dropped frames).\n\nVideo ", 1)
    md += "\n## One process for N cameras vs N processes (each as fast as it goes)\n\n"
    md += ("N processes: N `fer-edge run` started at once, as a user starts them (one thread per inference call), "
           "and with `--threads` set to the cores (ONNX Runtime's own default, a spinning thread per core: what "
           "`run` did before). One process: `fer-edge run` with N `--source`s (one thread per inference call, "
           "the cameras out of step: detector passes on worker threads, the classifier on its own). CPU s: "
           "every process's CPU seconds, model loading included.\n\n")
    headers = ["streams", "one process fps", "N processes fps", "ratio", "N processes, all cores each fps", "ratio",
               "one process CPU s", "N processes CPU s", "one process RSS MiB", "N processes RSS MiB"]
    rows = []
    for r in report["side_by_side"]:
        many, lean = r["separate_processes"], r.get("separate_processes_all_cores", {})
        rows.append([r["streams"], r["one_process"]["aggregate_fps"], many["aggregate_fps"], r["speedup"],
                     lean.get("aggregate_fps", "-"), lean.get("speedup", "-"), r["one_process"].get("cpu_s", "-"),
                     many.get("cpu_s", "-"), r["one_process"]["rss_mib"], many["rss_mib"]])
    md += markdown_table(headers, rows, "r" * len(headers)) + "\n"
    live = report.get("live_one_camera")
    if live:
        md += (f"\n## One live camera: CPU used\n\n`fer-edge run --realtime --max-frames {live['frames']}` on the "
               "same video (played at its 30 fps, as a camera delivers it), CPU seconds of the process:\n\n")
        md += markdown_table(["threads per call", "wall s", "CPU s", "cores busy"], [
            [name, live[key]["wall_s"], live[key]["cpu_s"], live[key]["cores_busy"]]
            for key, name in (("default", "1 (run's default)"), ("all_cores", f"{os.cpu_count()} (a spinning thread "
                                                                                 "per core, ONNX Runtime's default)"))
        ], "lrrr") + "\n"
    write_text_atomic(out / "streams.md", md)


if __name__ == "__main__":
    main()

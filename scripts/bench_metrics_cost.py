"""What ``run --metrics`` costs the camera loop: frames/s with and without the endpoint, side by side.

Runs ``fer-edge run`` (the real command, in a subprocess) on one generated video, alternating a run
without ``--metrics`` and a run with it while a scraper fetches ``/metrics`` once a second (as a
Prometheus with ``scrape_interval: 1s`` would), ``--rounds`` times each. The loop's frames/s is the
run's own ``total:`` line. Interleaving puts the neighbours' load on both sides alike; the result is
the ratio of the medians. Writes JSON + Markdown to benchmarks/camera/. Run it on a quiet machine:

    nice python scripts/bench_metrics_cost.py --rounds 5 --frames 1500
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
from scenes import background, write_video

from fer_edge.bench.machine import machine_info
from fer_edge.core.atomic import write_text_atomic

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "camera"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scraper(url: str, stop: threading.Event, scrapes: List[float]) -> None:
    """One GET of /metrics a second until ``stop``; records each scrape's seconds."""
    while not stop.is_set():
        t = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                response.read()
            scrapes.append(time.perf_counter() - t)
        except OSError:
            pass  # not listening yet, or already gone
        stop.wait(max(0.0, 1.0 - (time.perf_counter() - t)))


def one_run(video: Path, model: Optional[Path], folder: Path, metrics: bool, extra: List[str]) -> Dict[str, Any]:
    port = free_port()
    args = [sys.executable, "-m", "fer_edge", "run", "--source", str(video), "--log", str(folder / "mood.db"),
            "--window", "10", "--stats-every", "3600", *extra]  # fmt: skip
    if model is not None:
        args += ["--model", str(model)]
    if metrics:
        args += ["--metrics", f"127.0.0.1:{port}"]
    stop, scrapes = threading.Event(), []  # type: threading.Event, List[float]
    thread = threading.Thread(target=scraper, args=(f"http://127.0.0.1:{port}/metrics", stop, scrapes), daemon=True)
    if metrics:
        thread.start()
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    stop.set()
    if metrics:
        thread.join(timeout=5)
    total = [line for line in done.stdout.splitlines() if line.startswith("total: ")]
    if done.returncode != 0 or not total:
        raise SystemExit(f"run failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")
    fields = total[-1][len("total: "):].split(" | ")
    return {"metrics": metrics, "frames": int(fields[0].split()[0]), "fps": float(fields[1].split()[0]),
            "scrapes": len(scrapes),
            "scrape_ms_median": round(statistics.median(scrapes) * 1000, 2) if scrapes else None}  # fmt: skip


def render_ms(repeat: int = 500) -> float:
    """In-process: milliseconds to render one camera's families (as a scrape does), median of ``repeat``."""
    from prometheus_client import CollectorRegistry, generate_latest

    from fer_edge.camera.metrics import CameraMetrics
    from fer_edge.camera.prometheus_metrics import BuildInfo, RunCollector
    from fer_edge.model.labels import FER2013_LABELS

    camera = CameraMetrics("cam0", labels=FER2013_LABELS, to_sync=lambda: 0)
    for i in range(1000):
        camera.frame({"capture": 1.0 + i % 7, "detect": 8.0, "track": 0.1, "classify": 3.0, "log": 0.1, "other": 0.2},
                     faces=2, seconds=0.02, detected=i % 5 == 0)  # fmt: skip
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunCollector([camera], BuildInfo("x", "m.onnx", "0" * 64, "yunet", "ort", "int8"),
                                   sync_errors=lambda: 0))  # fmt: skip
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        generate_latest(registry)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=1500, help="video length (the loop runs as fast as it can)")
    parser.add_argument("--model", type=Path, default=None, help="classifier (default: the shipped one)")
    parser.add_argument("--name", default="metrics_cost")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for NAME.json and NAME.md")
    args = parser.parse_args()
    load_before = os.getloadavg()
    runs: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fer-edge-metrics-cost-") as tmp:
        scenes = [background(640, 480, np.random.default_rng(i)) for i in range(16)]
        video = write_video(Path(tmp) / "store.avi", [scenes[i % 16] for i in range(args.frames)], fps=30.0)
        # The detector on every frame: each frame costs what a busy store's frame costs the detector.
        extra = ["--detect-every", "1"]
        for r in range(args.rounds):
            for metrics in ((False, True) if r % 2 == 0 else (True, False)):
                folder = Path(tmp) / f"r{r}-{int(metrics)}"
                folder.mkdir()
                load = round(os.getloadavg()[0], 2)  # the neighbours' load as this run starts
                runs.append({"round": r, "load_1min": load, **one_run(video, args.model, folder, metrics, extra)})
                print(json.dumps(runs[-1]), flush=True)
    render = render_ms()
    without = statistics.median(x["fps"] for x in runs if not x["metrics"])
    with_ = statistics.median(x["fps"] for x in runs if x["metrics"])
    result = {
        "what": "fer-edge run frames/s without --metrics and with it, scraped once a second; median of rounds",
        "command": " ".join(["python", "scripts/bench_metrics_cost.py", *sys.argv[1:]]),
        "fps_without": without, "fps_with": with_, "cost_pct": round(100.0 * (1.0 - with_ / without), 2),
        "render_ms_per_scrape": round(render, 3), "render_pct_of_a_core_at_1_per_s": round(render / 10.0, 3),
        "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
        "machine": machine_info(), "runs": runs,
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / f"{args.name}.json", json.dumps(result, indent=2) + "\n")
    rows = "\n".join(f"| {x['round']} | {x['load_1min']} | {'with' if x['metrics'] else 'without'} | {x['frames']} | "
                     f"{x['fps']:.1f} | "
                     f"{x['scrapes']} | {x['scrape_ms_median'] if x['scrape_ms_median'] is not None else '-'} |"
                     for x in runs)  # fmt: skip
    write_text_atomic(args.out / f"{args.name}.md", (
        f"# What `run --metrics` costs the camera loop\n\n`{result['command']}` on {result['machine']['cpu']} "
        f"({result['machine']['cores']} cores), load average {result['load_before'][0]} before and "
        f"{result['load_after'][0]} after.\n\n"
        f"Median frames/s: **{without:.1f} without, {with_:.1f} with** the endpoint scraped once a second: "
        f"a difference of **{result['cost_pct']:.2f} %** (negative: the runs with the endpoint were faster, "
        "i.e. the cost is below what this side-by-side can resolve).\n\n"
        f"In process, rendering one camera's families (what a scrape costs the run's CPU) takes "
        f"**{render:.2f} ms**: at one scrape a second, {render / 10.0:.3f} % of one core.\n\n"
        "| round | load (1 min) | --metrics | frames | frames/s | scrapes | scrape ms (median) |\n"
        "|---|---|---|---|---|---|---|\n"
        f"{rows}\n"
    ))  # fmt: skip
    print(f"without {without:.1f} fps, with {with_:.1f} fps: cost {result['cost_pct']:.2f} %")


if __name__ == "__main__":
    main()

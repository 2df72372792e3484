"""Training throughput on this machine's CPU: the real `fer-edge train` loop, augmentation included.

    python scripts/bench_train.py --data fer2013.csv.gz [--limit 2048] [--batch-size 128]

Runs one epoch on the first --limit training images in fp32 and in bf16 autocast, reads
images/s and seconds per epoch from each run's history, and writes
benchmarks/training/cpu_throughput.{json,md} with the machine, versions and command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fer_edge.core.markdown import markdown_table

ROOT = Path(__file__).resolve().parents[1]


def run(data: str, limit: int, batch: int, amp: bool, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "fer_edge", "train", "--data", data, "--out", out, "--epochs", "1",
               "--limit", str(limit), "--batch-size", str(batch), "--device", "cpu", "--threads", str(threads),
               "--amp" if amp else "--no-amp", "--seed", "0"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        row = json.loads((Path(out) / "history.json").read_text())[-1]
    return {"precision": "bf16 autocast" if amp else "fp32", "images_per_second": row["images_per_second"],
            "train_seconds": row["epoch_seconds"], "wall_seconds_incl_eval_and_start": round(wall, 1),
            "images": limit, "batch_size": batch}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--limit", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "training")
    args = ap.parse_args()
    import torch

    rows = [run(args.data, args.limit, args.batch_size, amp, args.threads) for amp in (False, True)]
    full_epoch = 28709
    for r in rows:
        r["estimated_seconds_per_full_epoch"] = round(full_epoch / r["images_per_second"], 1)
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(), "os": platform.platform(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "load_average_before": os.getloadavg()},
        "command": " ".join(["python", "scripts/bench_train.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "results": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cpu_throughput.json").write_text(json.dumps(result, indent=1))
    md = ["# Training throughput on the CPU", "",
          f"- Command: `{result['command']}`", f"- Date: {result['date']}",
          f"- Machine: {result['machine']}", "",
          markdown_table(("precision", "images/s", "s per epoch (28709 images, est.)", "batch"),
                         [(r["precision"], f"{r['images_per_second']:.0f}",
                           f"{r['estimated_seconds_per_full_epoch']:.0f}", r["batch_size"]) for r in rows],
                         align="lrrr")]
    (args.out / "cpu_throughput.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()

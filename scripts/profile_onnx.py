"""Where an ONNX model's CPU time goes: ONNX Runtime's per-node profile, summed by operator.

    python scripts/profile_onnx.py fer_edge/weights/fer2013.onnx fer_edge/weights/fer2013.int8.cpu.onnx \
        [--threads 2] [--runs 300]

Each node's time is the 25th percentile of its runs after the first third (warm-up): a quantile
low in the distribution, because on a shared machine noise only ever adds time.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort


def node_times_us(path: Path, threads: int, runs: int) -> dict[tuple[str, str], float]:
    x = np.random.default_rng(0).integers(0, 256, (1, 1, 48, 48)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "profile")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for _ in range(runs):
            session.run(None, {"input": x})
        events = json.loads(Path(session.end_profiling()).read_text())
    per_node: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_node[(event["args"].get("op_name", "?"), event["name"][: -len("_kernel_time")])].append(event["dur"])
    return {key: float(np.percentile(v[len(v) // 3 :], 25)) for key, v in per_node.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--top", type=int, default=12, help="slowest nodes to list")
    args = parser.parse_args()
    print(f"onnxruntime {ort.__version__}, {args.threads} threads, {args.runs} runs, p25 per node (us)")
    for path in args.models:
        times = node_times_us(path, args.threads, args.runs)
        total = sum(times.values())
        print(f"== {path.name}: sum of node times {total:.0f} us")
        by_op: collections.Counter[str] = collections.Counter()
        for (op, _), t in times.items():
            by_op[op] += t
        for op, t in by_op.most_common():
            print(f"  {op:22s} {t:7.0f} us {100 * t / total:5.1f}%")
        for (op, name), t in sorted(times.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"    {t:6.0f} {op} {name}")


if __name__ == "__main__":
    main()
